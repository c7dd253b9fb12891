"""The one exception type users see: it names the file and the record at fault."""

from __future__ import annotations

from pathlib import Path


class XevalError(Exception):
    """A user-facing error. The CLI prints it without a traceback and exits with 2.

    >>> str(XevalError("duplicate doc_id 'd1'", file="corpus.jsonl", record=3))
    "corpus.jsonl, record 3: duplicate doc_id 'd1'"
    """

    def __init__(
        self, message: str, *, file: str | Path | None = None, record: object = None
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.record = record
        where = []
        if self.file:
            where.append(self.file)
        if record is not None:
            where.append(f"record {record}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class SourceNotFoundError(XevalError):
    """A data source is neither given, in $XEVAL_SOURCES, in ../shared/data, nor downloadable."""


def describe_os_error(exc: OSError) -> str:
    """One line for an operating-system error: what failed and on which path.

    >>> describe_os_error(PermissionError(13, "Permission denied", "/ro/out"))
    '/ro/out: Permission denied'
    """
    why = exc.strerror or str(exc) or type(exc).__name__
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {why}" if paths else why
