"""Man pages out of Debian packages: a minimal ``ar`` reader and roff-to-text.

- :func:`read_ar` lists the members of an ``ar`` archive (the ``.deb`` container);
- :func:`iter_deb_manpages` walks ``data.tar.{xz,gz,bz2}`` of a ``.deb`` in memory and
  yields every gzip-compressed page under ``usr/share/man/[LANG/]manN/``;
- :func:`parse_page` turns roff source into sections of plain-text paragraphs: comments,
  macros and escapes are stripped, font macros (``.B``, ``.BR``, ...) keep their words,
  code blocks (``.EX``/``.EE``, ``.nf``/``.fi``) and tables (``.TS``/``.TE``) are marked so
  callers can leave them out. It is not a typesetter; it keeps the words of the page.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from xeval.errors import XevalError

_AR_MAGIC = b"!<arch>\n"
_MAN_PATH = re.compile(r"^(?:\./)?usr/share/man/(?:([^/]+)/)?man(\d\w*)/([^/]+)\.(\d\w*)\.gz$")


def read_ar(data: bytes, where: str | Path) -> dict[str, bytes]:
    """Members of an ``ar`` archive by name (GNU/BSD common format, as ``.deb`` uses)."""
    if not data.startswith(_AR_MAGIC):
        raise XevalError("not an ar archive (bad magic); is this a .deb?", file=where)
    out: dict[str, bytes] = {}
    pos = len(_AR_MAGIC)
    while pos < len(data):
        if data[pos : pos + 1] == b"\n":  # padding
            pos += 1
            continue
        header = data[pos : pos + 60]
        if len(header) < 60 or header[58:60] != b"`\n":
            raise XevalError(f"truncated or corrupt ar header at byte {pos}", file=where)
        name = header[:16].decode("ascii", "replace").strip()
        if name.endswith("/"):
            name = name[:-1]
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise XevalError(f"bad ar member size at byte {pos}", file=where) from None
        start = pos + 60
        body = data[start : start + size]
        if len(body) < size:
            raise XevalError(
                f"truncated ar member {name!r} ({len(body)} of {size} bytes)", file=where
            )
        out[name] = body
        pos = start + size + (size % 2)
    return out


@dataclass(frozen=True)
class ManFile:
    """One compressed man page found in a package."""

    lang: str  # "en" for usr/share/man/manN
    section: str  # "3", "3p", ...
    name: str  # page name without section suffix
    roff: str
    package: str


def iter_deb_manpages(path: Path) -> Iterator[ManFile]:
    """Every regular ``usr/share/man/[LANG/]manN/NAME.N.gz`` page in a ``.deb``.

    Symlinked pages (aliases) are skipped; ``.so`` redirects are returned as they are
    (see :func:`is_redirect`). Truncated or corrupt packages raise :class:`XevalError`.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise XevalError(f"cannot read package ({exc})", file=path) from None
    members = read_ar(raw, path)
    data_name = next((n for n in members if n.startswith("data.tar")), None)
    if data_name is None:
        raise XevalError(f"no data.tar.* member (has {sorted(members)})", file=path)
    blob = members[data_name]
    try:
        if data_name.endswith(".xz"):
            blob = lzma.decompress(blob)
        elif data_name.endswith(".gz"):
            blob = gzip.decompress(blob)
        elif data_name.endswith(".bz2"):
            blob = bz2.decompress(blob)
        elif data_name != "data.tar":
            raise XevalError(f"{data_name} is not supported (xz, gz, bz2 or plain tar)", file=path)
    except (lzma.LZMAError, OSError, EOFError, zlib.error) as exc:
        raise XevalError(f"corrupt or truncated {data_name} ({exc})", file=path) from None
    yield from iter_tar_manpages(io.BytesIO(blob), f"{path}:{data_name}", path.name)


def iter_tar_manpages(
    fileobj: io.BufferedIOBase | io.BytesIO, where: str, package: str
) -> Iterator[ManFile]:
    try:
        with tarfile.open(fileobj=fileobj, mode="r:") as tar:
            for m in tar:
                if not m.isfile():
                    continue
                mt = _MAN_PATH.match(m.name)
                if not mt:
                    continue
                fh = tar.extractfile(m)
                gz = fh.read() if fh else b""
                yield _decode_page(gz, mt, f"{where}:{m.name}", package)
    except (tarfile.TarError, EOFError) as exc:
        raise XevalError(f"corrupt or truncated tar ({exc})", file=where) from None


def iter_folder_manpages(root: Path) -> Iterator[ManFile]:
    """Pages of an unpacked tree (a folder holding ``usr/share/man``)."""
    for f in sorted(root.rglob("*.gz")):
        rel = f.relative_to(root).as_posix()
        i = rel.find("usr/share/man/")
        if i < 0 or f.is_symlink():
            continue
        mt = _MAN_PATH.match(rel[i:])
        if mt:
            yield _decode_page(f.read_bytes(), mt, str(f), rel[:i].strip("/") or root.name)


def _decode_page(gz: bytes, mt: re.Match[str], where: str, package: str) -> ManFile:
    try:
        text = gzip.decompress(gz).decode("utf-8", errors="replace")
    except (OSError, EOFError, zlib.error) as exc:
        raise XevalError(f"corrupt gzip page ({exc})", file=where) from None
    lang = mt.group(1) or "en"
    return ManFile(lang, mt.group(4), mt.group(3), text, package)


def is_redirect(roff: str) -> bool:
    """A ``.so other/page.N`` alias page (no text of its own)."""
    for line in roff.splitlines():
        s = line.strip()
        if not s or s.startswith(('.\\"', "'\\\"", '.\\"')):
            continue
        return s.startswith(".so ")
    return False


# ---- roff -> text ---------------------------------------------------------------------
_NAMED = {
    "em": "—",
    "en": "–",
    "hy": "-",
    "mi": "-",
    "aq": "'",
    "dq": '"',
    "lq": "“",
    "rq": "”",
    "oq": "‘",
    "cq": "’",
    "Fo": "«",
    "Fc": "»",
    "fo": "‹",
    "fc": "›",
    "bu": "•",
    "co": "©",
    "rg": "®",
    "tm": "™",
    "de": "°",
    "+-": "±",
    "mu": "×",
    "di": "÷",
    "<=": "≤",
    ">=": "≥",
    "!=": "≠",
    "->": "→",
    "<-": "←",
    "ti": "~",
    "ha": "^",
    "rs": "\\",
    "ga": "`",
    "aa": "´",
    "dg": "†",
    "sc": "§",
    "ps": "¶",
    "ul": "_",
    "ba": "|",
    "br": "|",
    "lh": "☜",
    "rh": "☞",
    "sq": "□",
    "ci": "○",
    "pl": "+",
    "eq": "=",
    "sl": "/",
    "es": "∅",
    "if": "∞",
    "OK": "✓",
    "R": "®",
    "Tm": "™",
}
_ESCAPES = re.compile(
    r"""\\(?:
      f(?:\[[^\]]*\]|\(..|.)          # font
    | s[+-]?(?:\d+|\(\d\d|\[\d+\]|'\d+')  # size
    | \((..)                          # \(xx named char
    | \[([^\]]*)\]                    # \[name]
    | \*(?:\((..)|\[([^\]]*)\]|(.))   # string
    | n[+-]?(?:\(..|\[[^\]]*\]|.)     # number register
    | [hvwlLDNbxoXZkHSo]'[^']*'       # motions etc. with an argument
    | [&|^%c:!dur{}zp]                # zero-width / ignored
    | e | \\ | - | ~ | 0 | \  | t | '|` | \. | " .* | \# .*
    | .
    )""",
    re.VERBOSE,
)
_FONT_MACROS = {"B", "I", "SM", "SB", "BR", "BI", "IB", "IR", "RB", "RI", "CW", "CB", "CR"}
_BREAKS = {"PP", "LP", "P", "TP", "TQ", "IP", "HP", "sp", "SH", "SS", "RS", "RE", "in", "br", "ti"}


def _escape(m: re.Match[str]) -> str:
    s = m.group(0)
    c = s[1] if len(s) > 1 else ""
    if m.group(1) or m.group(2):
        return _NAMED.get(m.group(1) or m.group(2), "")
    if c == "*":
        name = m.group(3) or m.group(4) or m.group(5) or ""
        return {"lq": "“", "rq": "”", "R": "®", "Tm": "™"}.get(name, "")
    return {
        "e": "\\",
        "\\": "\\",
        "-": "-",
        "~": " ",
        "0": " ",
        " ": " ",
        "t": " ",
        "'": "´",
        "`": "`",
        ".": ".",
    }.get(c, "")


def unescape(text: str) -> str:
    """Resolve roff escapes in one line of text (fonts and sizes vanish)."""
    return _ESCAPES.sub(_escape, text)


def split_args(s: str) -> list[str]:
    """Macro arguments: blank-separated, double quotes group, ``""`` inside is a quote."""
    args: list[str] = []
    i, n = 0, len(s)
    while i < n:
        while i < n and s[i] in " \t":
            i += 1
        if i >= n:
            break
        if s[i] == '"':
            i += 1
            buf = []
            while i < n:
                if s[i] == '"':
                    if i + 1 < n and s[i + 1] == '"':
                        buf.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                if s[i] == "\\" and i + 1 < n:
                    buf.append(s[i : i + 2])
                    i += 2
                    continue
                buf.append(s[i])
                i += 1
            args.append("".join(buf))
        else:
            j = i
            while j < n and s[j] not in " \t":
                j += 2 if s[j] == "\\" and j + 1 < n else 1
            args.append(s[i:j])
            i = j
    return args


@dataclass
class Paragraph:
    text: str
    code: bool = False


@dataclass
class Section:
    heading: str
    paragraphs: list[Paragraph] = field(default_factory=list)

    def prose(self) -> list[str]:
        """Non-code paragraphs."""
        return [p.text for p in self.paragraphs if not p.code and p.text]


class _PageParser:
    """State of one page being read: sections so far, the open paragraph, code mode."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self.buf: list[str] = []
        self.code = False
        self.skip_until: str | None = None
        self.pending_tag = False  # .TP: the next line is a tag, kept as a paragraph start

    def flush(self) -> None:
        text = " ".join(" ".join(self.buf).split())
        if text and self.sections:
            self.sections[-1].paragraphs.append(Paragraph(text, self.code))
        self.buf = []

    def _end_tag(self) -> None:
        if self.pending_tag:
            self.pending_tag = False
            self.flush()

    def feed(self, line: str) -> None:
        if self.skip_until is not None:
            if line.startswith(self.skip_until):
                self.skip_until = None
            return
        if line.startswith(('.\\"', "'\\\"", ".\\#")) or line in (".", "'"):
            return
        if line[:1] in (".", "'") and len(line) > 1:
            macro, _, rest = line[1:].lstrip().partition(" ")
            self.macro(macro.strip(), rest.strip())
        elif not line.strip():
            if not self.code:
                self.flush()
        else:
            self.buf.append(unescape(line))
            if not self.code:
                self._end_tag()

    def macro(self, macro: str, rest: str) -> None:
        """One request line; any request not handled here (layout, registers,
        conditionals) is ignored."""
        if macro in ("SH", "SS"):
            self.heading(macro, rest)
        elif macro in ("EX", "nf", "EE", "fi"):
            self.flush()
            self.code = macro in ("EX", "nf")
        elif macro == "TS":
            self.flush()
            self.skip_until = ".TE"
        elif macro in ("de", "de1", "am", "ig"):
            self.skip_until = ".."
        elif macro in _FONT_MACROS:
            self.font(macro, rest)
        elif macro in ("UE", "ME") and rest:
            self.buf.append(unescape(rest))
        elif macro == "IP":
            self.flush()
            args = split_args(rest)
            if args and args[0].strip():
                self.buf.append(unescape(args[0]))
        elif macro in ("TP", "TQ"):
            self.flush()
            self.pending_tag = True
        elif macro in _BREAKS and (macro != "br" or not self.code):
            self.flush()

    def heading(self, macro: str, rest: str) -> None:
        self.flush()
        title = unescape(" ".join(split_args(rest))).strip()
        if macro == "SH":
            self.sections.append(Section(title))
        elif title and self.sections:
            self.sections[-1].paragraphs.append(Paragraph(title, code=False))
        self.code = False

    def font(self, macro: str, rest: str) -> None:
        args = [unescape(a) for a in split_args(rest)]
        alternating = len(macro) == 2 and macro not in ("SM", "SB")
        joined = "".join(args) if alternating else " ".join(args)
        if joined:
            self.buf.append(joined)
        self._end_tag()


def parse_page(roff: str) -> list[Section]:
    """Sections (``.SH``) of a page as plain-text paragraphs; text before the first is lost."""
    parser = _PageParser()
    for line in roff.splitlines():
        parser.feed(line)
    parser.flush()
    return parser.sections
