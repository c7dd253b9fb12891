"""Reading the Python documentation translations (gettext ``.po`` files).

The source is the ``python-docs/`` folder of ``python-docs-{lang}-{commit}.tar.xz``
archives (one per language, top folder ``{lang}/``), a single such archive, or the same
trees unpacked (``{lang}/faq/general.po`` or ``python-docs-{lang}-*/faq/general.po``).
Archives are read in memory with :mod:`tarfile`; nothing is unpacked to disk.

Entries are parsed with ``polib``. The English text is the ``msgid``; a translation is a
non-empty ``msgstr`` of an entry that is neither ``#, fuzzy`` nor obsolete (``#~``).
"""

from __future__ import annotations

import lzma
import re
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from xeval.errors import XevalError

PY_DOCS_LANGS = ("es", "fr", "ja", "ko", "pt_BR", "zh_CN")
_ARCHIVE = re.compile(
    r"^python-docs-([A-Za-z]{2,3}(?:_[A-Za-z]{2,4})?)-([0-9a-f]+)\.tar(\.xz|\.gz|\.bz2)?$"
)
_DIR = re.compile(r"^(?:python-docs-)?([A-Za-z]{2,3}(?:_[A-Za-z]{2,4})?)(?:-[0-9a-f]+)?$")


@dataclass(frozen=True)
class PoEntry:
    """One non-obsolete entry: English ``msgid``, translation or "" , its source line."""

    msgid: str
    msgstr: str
    fuzzy: bool
    line: int  # line in the .rst source of the first reference (0 if none)

    @property
    def translated(self) -> bool:
        return bool(self.msgstr.strip()) and not self.fuzzy


@dataclass(frozen=True)
class PoFile:
    lang: str
    relpath: str  # path inside the language tree, e.g. "faq/general.po"
    origin: str  # archive or folder it came from (for error messages)
    entries: tuple[PoEntry, ...]


def parse_po(text: str, where: str) -> tuple[PoEntry, ...]:
    """Parse one ``.po`` text with polib; a syntax error names the file and line."""
    import polib

    try:
        po = polib.pofile(text)
    except (OSError, ValueError) as exc:  # polib raises OSError for syntax errors
        raise XevalError(f"malformed .po file ({exc})", file=where) from None
    out = []
    for e in po:
        if e.obsolete or not e.msgid:
            continue
        line = 0
        if e.occurrences:
            try:
                line = int(e.occurrences[0][1] or 0)
            except ValueError:
                line = 0
        out.append(PoEntry(e.msgid, e.msgstr, "fuzzy" in e.flags, line))
    return tuple(out)


def _archive_lang(path: Path) -> str | None:
    m = _ARCHIVE.match(path.name)
    return m.group(1) if m else None


def _is_archive(path: Path) -> bool:
    return path.is_file() and (path.name.endswith((".tar", ".tar.xz", ".tar.gz", ".tar.bz2")))


def available_languages(source: Path) -> tuple[str, ...]:
    """Languages present in a source (archive names, or ``LANG/`` folder names), sorted."""
    source = Path(source)
    if _is_archive(source):
        lang = _archive_lang(source)
        if lang:
            return (lang,)
        try:
            with tarfile.open(source) as tar:
                first = next(iter(tar), None)
        except (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error, OSError) as exc:
            raise XevalError(f"unreadable or truncated archive ({exc})", file=source) from None
        return (first.name.lstrip("./").split("/")[0],) if first else ()
    if not source.is_dir():
        return ()
    langs = set()
    for item in source.iterdir():
        if _is_archive(item) and _archive_lang(item):
            langs.add(_archive_lang(item))
        elif item.is_dir() and (m := _DIR.match(item.name)) and any(item.rglob("*.po")):
            langs.add(m.group(1))
    return tuple(sorted(langs))


def iter_po_files(
    source: Path,
    languages: tuple[str, ...] | list[str],
    want: Callable[[str], bool],
) -> Iterator[PoFile]:
    """Yield every ``.po`` file of ``languages`` whose tree-relative path passes ``want``.

    Raises :class:`XevalError` for a missing source, a language absent from it, or a
    truncated / corrupt archive or file.
    """
    source = Path(source)
    if not source.exists():
        raise XevalError("python-docs source does not exist", file=source)
    langs = list(languages)
    found: set[str] = set()
    if _is_archive(source):
        yield from _iter_archive(source, langs, want, found)
    else:
        for item in sorted(source.iterdir()):
            if _is_archive(item):
                lang = _archive_lang(item)
                if lang in langs:
                    yield from _iter_archive(item, [lang], want, found)
            elif item.is_dir():
                m = _DIR.match(item.name)
                if m and m.group(1) in langs and m.group(1) not in found:
                    yield from _iter_folder(item, m.group(1), want, found)
    missing = [x for x in langs if x not in found]
    if missing:
        raise XevalError(
            f"no .po files for language(s) {missing} (expected python-docs-LANG-COMMIT.tar.xz "
            "archives or unpacked LANG/ folders)",
            file=source,
        )


def _iter_archive(
    path: Path, langs: list[str], want: Callable[[str], bool], found: set[str]
) -> Iterator[PoFile]:
    try:
        with tarfile.open(path) as tar:
            for member in tar:
                if not (member.isfile() and member.name.endswith(".po")):
                    continue
                top, _, rel = member.name.lstrip("./").partition("/")
                lang = _archive_lang(path) or top
                if lang not in langs or not want(rel):
                    continue
                fh = tar.extractfile(member)
                raw = fh.read() if fh else b""
                where = f"{path}:{member.name}"
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise XevalError(f"not UTF-8 ({exc})", file=where) from None
                found.add(lang)
                yield PoFile(lang, rel, str(path), parse_po(text, where))
    except (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error, OSError) as exc:
        raise XevalError(f"unreadable or truncated archive ({exc})", file=path) from None


def _iter_folder(
    folder: Path, lang: str, want: Callable[[str], bool], found: set[str]
) -> Iterator[PoFile]:
    for f in sorted(folder.rglob("*.po")):
        rel = f.relative_to(folder).as_posix()
        if not want(rel):
            continue
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise XevalError(f"not UTF-8 ({exc})", file=f) from None
        found.add(lang)
        yield PoFile(lang, rel, str(folder), parse_po(text, str(f)))


# ---- inline reStructuredText -> plain text ------------------------------------------------
_ROLE_TARGET = re.compile(r":[\w:.+-]+:`([^`<]*?)\s*<[^`>]*>`")
_ROLE = re.compile(r":[\w:.+-]+:`([^`]*)`")
_LINK = re.compile(r"`([^`<]+?)\s*<[^`>]*>`__?")
_REF = re.compile(r"`([^`]+)`__?")
_LITERAL = re.compile(r"``(.+?)``")
_STRONG = re.compile(r"\*\*(.+?)\*\*")
_EMPH = re.compile(r"(?<![\w*])\*(?=\S)([^*]+?)(?<=\S)\*(?![\w*])")


def rst_inline_to_text(text: str) -> str:
    """Strip inline reST markup: roles, links, literals, emphasis; keep the words."""
    text = _LITERAL.sub(r"\1", text)
    text = _ROLE_TARGET.sub(r"\1", text)
    text = _ROLE.sub(lambda m: m.group(1).lstrip("~!"), text)
    text = _LINK.sub(r"\1", text)
    text = _REF.sub(r"\1", text)
    text = _STRONG.sub(r"\1", text)
    text = _EMPH.sub(r"\1", text)
    text = text.replace("\\ ", "").replace("\\*", "*").replace("\\`", "`")
    text = " ".join(text.split())
    if text.endswith("::"):  # literal-block marker: "Usage::" -> "Usage:", "Usage ::" -> "Usage"
        text = text[:-2] if text[:-2].endswith(" ") or len(text) == 2 else text[:-1]
    return text.strip()
