"""Where raw data sources come from.

Lookup order for a source named e.g. ``lareqa/xquad-r``:

1. an explicit path (``--source``): a folder, or an archive for builders that accept one;
2. ``$XEVAL_SOURCES/<relpath>`` (or ``$XEVAL_SOURCES`` itself if it already is that folder);
3. ``../shared/data/<relpath>`` seen from the working directory or from the checkout;
4. the user cache (``$XEVAL_CACHE`` or the platform cache dir) filled by an earlier download;
5. the pinned upstream download (URL + SHA-256 per file), into that cache;

and with none reachable a :class:`SourceNotFoundError` saying where to put the files.
"""

from __future__ import annotations

import functools
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xeval.errors import SourceNotFoundError, XevalError
from xeval.provenance import atomic_path, sha256_file


@dataclass(frozen=True)
class RemoteFile:
    """One upstream file pinned by URL and SHA-256."""

    relpath: str
    url: str
    sha256: str


@dataclass(frozen=True)
class SourceSpec:
    """A raw data source: its folder name under a data root and how to fetch it."""

    relpath: str
    licence: str
    upstream: str
    files: Sequence[RemoteFile] = field(default_factory=tuple)
    required: Sequence[str] = field(default_factory=tuple)  # files that must exist locally


def cache_dir() -> Path:
    """User cache for downloaded sources, models and embeddings (``$XEVAL_CACHE``)."""
    env = os.environ.get("XEVAL_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("xeval"))


def data_roots() -> list[Path]:
    """Candidate data roots, in lookup order (without the explicit ``--source``)."""
    roots: list[Path] = []
    env = os.environ.get("XEVAL_SOURCES")
    if env:
        roots.append(Path(env).expanduser())
    roots.append(Path.cwd().parent / "shared" / "data")
    checkout = Path(__file__).resolve().parent.parent
    roots.append(checkout.parent / "shared" / "data")
    roots.append(cache_dir() / "sources")
    seen, out = set(), []
    for r in roots:
        key = str(r.resolve()) if r.exists() else str(r)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def _complete(folder: Path, spec: SourceSpec) -> bool:
    if not folder.is_dir():
        return False
    needed = spec.required or [f.relpath for f in spec.files]
    return all((folder / n).exists() for n in needed)


def resolve_source(
    spec: SourceSpec, source: str | Path | None = None, *, download: bool = True
) -> Path:
    """Return a local path holding ``spec``'s files (see module docstring for the order)."""
    if source is not None:
        path = Path(source).expanduser()
        if not path.exists():
            raise SourceNotFoundError(f"--source {path} does not exist")
        if path.is_dir() and (spec.required or spec.files) and not _complete(path, spec):
            # allow pointing at a data root that contains relpath
            if _complete(path / spec.relpath, spec):
                return path / spec.relpath
            missing = [
                n
                for n in (spec.required or [f.relpath for f in spec.files])
                if not (path / n).exists()
            ]
            raise SourceNotFoundError(
                f"{path} is missing {len(missing)} file(s) of {spec.relpath}: {', '.join(missing[:5])}"
            )
        return path
    for root in data_roots():
        cand = (
            root
            if root.name == Path(spec.relpath).name and _complete(root, spec)
            else root / spec.relpath
        )
        if _complete(cand, spec):
            return cand
    if download and spec.files:
        try:
            return download_source(spec)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = f"download failed ({exc})"
    else:
        reason = "no pinned download"
    where = "\n  ".join(str(r / spec.relpath) for r in data_roots())
    raise SourceNotFoundError(
        f"source '{spec.relpath}' not found and {reason}.\n"
        f"Put the files ({spec.upstream}) in one of:\n  {where}\n"
        "or pass --source PATH, or set XEVAL_SOURCES to a folder that holds "
        f"'{spec.relpath}'."
    )


def download_source(spec: SourceSpec, timeout: float = 30.0) -> Path:
    """Fetch every pinned file of ``spec`` into the cache, checking SHA-256."""
    from tqdm.auto import tqdm

    dest = cache_dir() / "sources" / spec.relpath
    for rf in tqdm(spec.files, desc=f"download {spec.relpath}", unit="file"):
        target = dest / rf.relpath
        if target.exists() and sha256_file(target) == rf.sha256:
            continue
        with atomic_path(target) as tmp:
            with urllib.request.urlopen(rf.url, timeout=timeout) as resp, open(tmp, "wb") as out:
                while block := resp.read(1 << 20):
                    out.write(block)
            got = sha256_file(tmp)
            if got != rf.sha256:
                raise XevalError(
                    f"checksum mismatch for {rf.url}: expected {rf.sha256}, got {got}",
                    file=target,
                )
    return dest


@dataclass(frozen=True)
class SourceCheck:
    """The outcome of checking local files against their pinned SHA-256."""

    pinned: int
    modified: tuple[str, ...] = ()
    accepted_modified: bool = False

    def manifest(self) -> dict[str, object]:
        """The manifest entry: how many files were checked, which differ, whether accepted."""
        return {
            "pinned_files": self.pinned,
            "modified_files": list(self.modified),
            "accepted_modified": self.accepted_modified,
        }


@functools.lru_cache(maxsize=256)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(Path(path))


def file_sha256(path: Path) -> str:
    """SHA-256 of ``path``, hashed once per (path, size, modification time) per process."""
    try:
        st = path.stat()
    except OSError as exc:
        raise XevalError(f"cannot read ({exc.strerror or exc})", file=path) from None
    return _sha256_cached(str(path.resolve()), st.st_size, st.st_mtime_ns)


def verify_pinned(spec: SourceSpec, folder: Path, *, accept_modified: bool = False) -> SourceCheck:
    """Check every pinned file of ``spec`` under ``folder`` against its SHA-256.

    A missing file, or one that differs, is an :class:`XevalError` naming it, unless
    ``accept_modified`` (``--accept-modified-source``), when the differing files are listed
    in the returned check (and so in the manifest).
    """
    modified = []
    for rf in spec.files:
        path = folder / rf.relpath
        if not path.is_file():
            raise XevalError(f"missing file of the published {spec.relpath}", file=path)
        if file_sha256(path) != rf.sha256:
            if not accept_modified:
                raise XevalError(
                    f"SHA-256 differs from the published {spec.relpath} ({spec.upstream}): "
                    "a damaged or modified copy; pass --accept-modified-source to build "
                    "from it anyway (recorded in the manifest)",
                    file=path,
                )
            modified.append(rf.relpath)
    return SourceCheck(len(spec.files), tuple(modified), accept_modified and bool(modified))
