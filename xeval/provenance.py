"""How every result file was made: fingerprints, versions, command; and atomic writes."""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import glob
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from xeval.errors import XevalError

_TRACKED = (
    "xeval",
    "torch",
    "sentence-transformers",
    "transformers",
    "polars",
    "numpy",
    "ranx",
    "usearch",
)


def versions(extra: Iterable[str] = ()) -> dict[str, str]:
    """Installed versions of the packages that shape a result."""
    out = {"python": platform.python_version()}
    for name in (*_TRACKED, *extra):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def command_line() -> str:
    """The command that is running, as a user would retype it."""
    argv = list(sys.argv)
    if argv and argv[0].endswith(("/xeval", "\\xeval")):
        argv[0] = "xeval"
    return " ".join(argv)


def provenance(**fields: Any) -> dict[str, Any]:
    """A provenance record: given fields plus time, versions, command, host."""
    return {
        **fields,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command_line(),
        "versions": versions(),
        "platform": platform.platform(),
    }


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_text(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically (temp file + rename)."""
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def write_text(path: str | Path, text: str) -> None:
    """Write text atomically: readers see the old file or the new one, never half."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _unwritable(path: Path, exc: OSError) -> XevalError:
    why = exc.strerror or type(exc).__name__
    return XevalError(f"cannot write here ({why})", file=path)


def _parent(path: Path) -> Path:
    """Create ``path``'s folder; a read-only or non-folder parent is an :class:`XevalError`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(path.parent, exc) from None
    return path.parent


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary file path beside ``path``; rename onto ``path`` on success.

    Single files (caches, reports inside a folder being written) are replaced: the last
    writer wins, and a reader sees the old file or the new one, never half of one.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=_parent(path), prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _unwritable(path, exc) from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _remove(path: Path) -> None:
    """Delete a file, a link or a folder tree; nothing if it is not there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


def clean_stale(path: Path) -> list[Path]:
    """Remove ``.partial`` folders of ``path`` whose writing process is gone.

    Call with the target's lock held. Also puts back the previous version when a
    replacement was killed between its two renames. Returns what was removed.
    """
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.partial"):
        pid = tmp.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    old = path.with_name(f".{path.name}.old")
    if old.exists() and not path.exists():
        os.replace(old, path)
    elif old.exists():
        _remove(old)
    return removed


@contextlib.contextmanager
def target_lock(path: Path, *, wait: bool) -> Iterator[None]:
    """Hold the writer's lock on ``path`` (a ``.NAME.lock`` file beside it, removed after).

    ``wait=False`` raises :class:`XevalError` at once when another process holds it.
    The lock dies with its process, so kill -9 never leaves ``path`` locked.
    """
    lock = _lock_file(path)
    fd = _acquire(lock, path, wait)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)  # still held: a waiter then finds the file gone and retries
        os.close(fd)


def _lock_file(path: Path) -> Path:
    """The file :func:`target_lock` flocks for ``path``."""
    return path.with_name(f".{path.name}.lock")


def lock_held(path: Path) -> float | None:
    """When another process took :func:`target_lock` on ``path`` (the lock file's mtime),
    or None when nobody holds it. A shared, non-blocking probe: a writer that tries at
    that very instant is told "held" once, as if a peer held it."""
    try:
        fd = os.open(_lock_file(path), os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.fstat(fd).st_mtime
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _acquire(lock: Path, path: Path, wait: bool) -> int:
    """An open, flock-ed descriptor of ``lock`` that is still the file at that name."""
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
        except OSError as exc:
            raise _unwritable(path, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            raise XevalError(
                "another xeval process is writing it; wait for it or pass --overwrite",
                file=path,
            ) from None
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.utime(fd)  # mtime = when it was taken (see lock_held)
            return fd
        os.close(fd)  # the holder removed it as we waited: lock the new one


def _commit(tmp: Path, path: Path, overwrite: bool) -> None:
    """Move the finished ``tmp`` onto ``path`` (lock held)."""
    if path.is_symlink() or path.exists():
        if not overwrite:
            raise XevalError("exists; pass --overwrite to replace it", file=path)
        old = path.with_name(f".{path.name}.old")
        _remove(old)
        os.replace(path, old)
        os.replace(tmp, path)
        _remove(old)
    else:
        os.rename(tmp, path)


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; on success it becomes ``path``.

    The one way xeval writes an output folder. A lock on ``path`` is held from start to
    commit, so of two writers to one path exactly one succeeds: without ``overwrite`` the
    second fails at once with :class:`XevalError` (and so does any writer finding
    ``path`` already there); with ``overwrite`` it waits and then replaces ``path``
    atomically. On any error the temporary directory is removed and ``path`` is
    untouched; ``.partial`` folders of killed writers are cleaned on the next write.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise XevalError("exists; pass --overwrite to replace it", file=path)
    parent = _parent(path)
    with target_lock(path, wait=overwrite):
        clean_stale(path)
        if path.exists() and not overwrite:
            raise XevalError("exists; pass --overwrite to replace it", file=path)
        prefix = f".{path.name}.{os.getpid()}."
        try:
            tmp = Path(tempfile.mkdtemp(dir=parent, prefix=prefix, suffix=".partial"))
        except OSError as exc:
            raise _unwritable(path, exc) from None
        os.chmod(tmp, 0o777 & ~_umask())
        try:
            yield tmp
            _commit(tmp, path, overwrite)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
