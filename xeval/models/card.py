"""A model directory's card (``xeval-model.json``) and its fingerprint.

The card says where a model came from (origin, licence, upstream), how it was made and
its fingerprint: SHA-256 over its weights, configs and tokenizer files, computed from the
files themselves (:func:`fingerprint_dir`), so a copied card cannot vouch for changed
weights. :func:`finish_model_dir` writes the card into a model folder being installed
or saved (the store, the tiny test model and the fine-tuner all do).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from xeval.errors import XevalError
from xeval.provenance import provenance, sha256_file, write_json

CARD = "xeval-model.json"
_VOLATILE_KEYS = {"transformers_version", "__version__", "is_local", "local_files_only"}


def read_card(path: str | Path) -> dict[str, Any] | None:
    """The card of a model directory, or None when it has none."""
    card = Path(path) / CARD
    if not card.is_file():
        return None
    try:
        out = json.loads(card.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise XevalError(f"unreadable model card ({exc}); reinstall the model", file=card) from exc
    if not isinstance(out, dict) or "fingerprint" not in out:
        raise XevalError("model card lacks a fingerprint; reinstall the model", file=card)
    return out


def _model_files(path: Path) -> list[Path]:
    return sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and p.name not in (CARD, "README.md")
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )


def _drop_volatile(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _drop_volatile(v) for k, v in obj.items() if k not in _VOLATILE_KEYS}
    if isinstance(obj, list):
        return [_drop_volatile(v) for v in obj]
    return obj


def _file_digest(f: Path) -> str:
    """sha256 of a file; small JSON configs in canonical form without version keys."""
    import hashlib

    if f.suffix == ".json" and f.stat().st_size < (1 << 20):
        try:
            obj = _drop_volatile(json.loads(f.read_text(encoding="utf-8")))
            return hashlib.sha256(
                json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()
            ).hexdigest()
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
    return sha256_file(f)


def _stat_key(f: Path) -> list[int]:
    """What must be unchanged for a remembered digest to stand: size, mtime, ctime, inode."""
    st = f.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _memo_file(path: Path) -> Path:
    from xeval.provenance import sha256_text
    from xeval.sources import cache_dir

    return cache_dir() / "fingerprints" / f"{sha256_text(str(path))[:32]}.json"


def _read_memo(memo: Path) -> dict[str, Any]:
    try:
        out = json.loads(memo.read_text(encoding="utf-8"))
        return out if isinstance(out, dict) else {}
    except (OSError, ValueError):
        return {}


def fingerprint_dir(path: str | Path, *, remember: bool = True) -> str:
    """SHA-256 over a model directory's weights, configs and tokenizer (the files themselves).

    The card and README are left out; small JSON configs are hashed in canonical form
    without library-version keys, so the same weights fingerprint the same under other
    library versions. With ``remember`` each file's digest is kept in the xeval cache
    (``fingerprints/``) keyed by path, size, mtime, ctime and inode, so an unchanged model
    is fingerprinted from ``stat`` alone and any rewritten file is hashed again.
    """
    import hashlib

    path = Path(path).resolve()
    memo_file = _memo_file(path) if remember else None
    memo = _read_memo(memo_file) if memo_file else {}
    fresh: dict[str, Any] = {}
    h = hashlib.sha256()
    for f in _model_files(path):
        rel = f.relative_to(path).as_posix()
        key = _stat_key(f)
        old = memo.get(rel)
        digest = old[1] if isinstance(old, list) and len(old) == 2 and old[0] == key else None
        digest = digest or _file_digest(f)
        fresh[rel] = [key, digest]
        h.update(rel.encode() + b"\0" + digest.encode() + b"\n")
    if memo_file is not None and fresh != memo:
        with contextlib.suppress(OSError):  # read-only cache: only costs hashing next time
            write_json(memo_file, fresh)
    return h.hexdigest()


def finish_model_dir(
    tmp: Path,
    *,
    name: str,
    label: str,
    origin: str,
    licence: str,
    made: dict[str, Any],
    upstream: str | None = None,
) -> dict[str, Any]:
    """Fix permissions, replace the generic README and write the card into ``tmp``."""
    mask = os.umask(0)
    os.umask(mask)
    for f in tmp.rglob("*"):
        if f.is_file():
            os.chmod(f, 0o666 & ~mask)
    (tmp / "README.md").write_text(
        f"# {label}\n\nInstalled by xeval ({origin}). Licence: {licence}.\n"
        f"See {CARD} for the fingerprint and how it was made.\n",
        encoding="utf-8",
    )
    card = provenance(
        xeval_model_card=1,
        name=name,
        label=label,
        origin=origin,
        licence=licence,
        upstream=upstream,
        fingerprint=fingerprint_dir(tmp, remember=False),
        fingerprint_method="sha256 over weights, configs and tokenizer (xeval.models.fingerprint_dir)",
        prompts=_prompts_of(tmp),
        made=made,
        files={f.relative_to(tmp).as_posix(): f.stat().st_size for f in _model_files(tmp)},
    )
    write_json(tmp / CARD, card)
    return card


def _prompts_of(path: Path) -> dict[str, str]:
    try:
        cfg = json.loads((path / "config_sentence_transformers.json").read_text(encoding="utf-8"))
        return dict(cfg.get("prompts") or {})
    except (OSError, json.JSONDecodeError):
        return {}
