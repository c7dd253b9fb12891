"""Strict JSONL reading: every error names the file and the line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from xeval.errors import XevalError


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)``; blank lines are skipped."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise XevalError("file not found", file=path) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise XevalError(
            f"not UTF-8 (byte {exc.start})", file=path, record=f"line {line}"
        ) from None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise XevalError(f"malformed JSON: {exc.msg}", file=path, record=f"line {n}") from None
        if not isinstance(rec, dict):
            raise XevalError("a record must be a JSON object", file=path, record=f"line {n}")
        yield n, rec


def field(
    rec: dict[str, Any], names: tuple[str, ...], path: Path, n: int, *, required: bool = True
) -> Any:
    """The first of ``names`` present in ``rec`` (a required one must be a non-empty string)."""
    for name in names:
        if name in rec and rec[name] is not None:
            val = rec[name]
            if not isinstance(val, (str, int)):
                raise XevalError(f"field '{name}' must be a string", file=path, record=f"line {n}")
            val = str(val)
            if required and not val.strip():
                raise XevalError(f"field '{name}' is empty", file=path, record=f"line {n}")
            return val
    if required:
        raise XevalError(f"missing field '{names[0]}'", file=path, record=f"line {n}")
    return None
