"""Strict JSONL reading: every error names the file and the line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from xeval.errors import XevalError
from xeval.text import check_lang


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)``; blank lines are skipped.

    Lines end at ``\\n`` only (JSON strings may hold U+2028, U+0085 and the like), so line
    numbers are those of any editor.
    """
    if path.is_dir():
        raise XevalError("expected a file, found a folder", file=path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise XevalError("file not found", file=path) from None
    except OSError as exc:
        raise XevalError(f"cannot read ({exc.strerror or exc})", file=path) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise XevalError(
            f"not UTF-8 (byte {exc.start})", file=path, record=f"line {line}"
        ) from None
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            msg = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            raise XevalError(f"malformed JSON: {msg}", file=path, record=f"line {n}") from None
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
            if isinstance(val, bool) or not isinstance(val, (str, int)):
                raise XevalError(f"field '{name}' must be a string", file=path, record=f"line {n}")
            val = str(val)
            if required and not val.strip():
                raise XevalError(f"field '{name}' is empty", file=path, record=f"line {n}")
            return val
    if required:
        raise XevalError(f"missing field '{names[0]}'", file=path, record=f"line {n}")
    return None


def lang_field(rec: dict[str, Any], path: Path, n: int, default: str | None = None) -> str:
    """The record's ``lang`` (or ``language``), else ``default``, in its one accepted form
    (:func:`xeval.text.check_lang`)."""
    code = field(rec, ("lang", "language"), path, n, required=default is None) or default
    return check_lang(code, path, f"line {n}")
