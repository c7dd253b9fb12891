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
