"""Technical training pairs from Debian package descriptions (DDTP ``Translation-*.lz4``).

Synopsis (package name masked) -> long description, aligned by ``Package`` +
``Description-md5``; one row per unit and ordered language pair where the unit exists in
both, X == Y included. Man pages are not package descriptions, so nothing here is in the
``manpages`` benchmark. DDTP has no benchmark of its own: this module is a pair source only.
"""

from __future__ import annotations

import lzma
import re
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from xeval.errors import XevalError
from xeval.sources import SourceSpec
from xeval.text import bound_length, dedup_key, keep_translation
from xeval.training.pairs import (
    PairOption,
    hash_sample,
    pairs_from_units,
    register_pairs,
    select_languages,
)

DDTP_LANGS = (
    "en", "de", "es", "fi", "fr", "it", "ja", "ko", "nl", "pl", "pt_BR", "ru", "sv", "zh_CN",
)  # fmt: skip
SOURCE = SourceSpec(
    relpath="ddtp",
    licence="Debian DDTP contributions (package descriptions: the packages' licences)",
    upstream="Debian 12 (bookworm) main/i18n/Translation-*.lz4",
    required=("Translation-en.lz4",),
)
MASK = "___"


def read_ddtp(path: Path, lang: str) -> dict[tuple[str, str], tuple[str, str]]:
    """``{(package, md5): (synopsis, long description)}`` of one ``Translation-LANG.lz4``."""
    import lz4.frame

    try:
        raw = lz4.frame.decompress(path.read_bytes())
    except FileNotFoundError:
        raise XevalError("missing DDTP file", file=path) from None
    except (RuntimeError, ValueError, OSError, lzma.LZMAError) as exc:
        raise XevalError(f"corrupt or truncated lz4 frame ({exc})", file=path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise XevalError(f"not UTF-8 ({exc})", file=path) from None
    out: dict[tuple[str, str], tuple[str, str]] = {}
    field = f"Description-{lang}"
    for n, stanza in enumerate(text.split("\n\n")):
        if not stanza.strip():
            continue
        pkg = md5 = None
        desc: list[str] = []
        in_desc = False
        for line in stanza.split("\n"):
            if line.startswith(" ") and in_desc:
                desc.append(line[1:])
                continue
            in_desc = False
            name, _, value = line.partition(":")
            if name == "Package":
                pkg = value.strip()
            elif name == "Description-md5":
                md5 = value.strip()
            elif name == field:
                in_desc = True
                desc = [value.strip()]
        if not (pkg and md5 and desc):
            raise XevalError(
                f"stanza lacks Package, Description-md5 or {field}", file=path, record=n + 1
            )
        out[(pkg, md5)] = (desc[0], _long_description(desc[1:]))
    if not out:
        raise XevalError("no DDTP stanzas", file=path)
    return out


def _long_description(lines: list[str]) -> str:
    """deb822 long description -> paragraphs (``.`` lines separate paragraphs)."""
    paras: list[list[str]] = [[]]
    for line in lines:
        if line.strip() == ".":
            paras.append([])
        else:
            paras[-1].append(line.strip())
    return "\n\n".join(" ".join(p) for p in paras if p)


def mask_package(synopsis: str, package: str) -> str:
    """Mask the package name (and its stem without lib/python3-/-dev...) in a synopsis."""
    base = re.sub(r"(-dev|-doc|-common|-data|-utils|-tools|-bin|\d+(\.\d+)*)$", "", package)
    core = re.sub(r"^(lib|python3?-|golang-|node-|ruby-|r-cran-|perl-)", "", base)
    stems = {package} | {s for s in (base, core) if len(s) >= 3}
    out = synopsis
    for s in sorted(stems, key=len, reverse=True):
        out = re.sub(rf"(?<![\w-]){re.escape(s)}(?![\w-])", MASK, out, flags=re.IGNORECASE)
    return out


@register_pairs(
    "ddtp",
    description="Debian package descriptions (DDTP): synopsis, name masked -> long "
    "description, aligned by Package + Description-md5",
    source=SOURCE,
    source_help="folder with Translation-LANG.lz4",
    options=[
        PairOption("languages", str, None, "Comma-separated languages (default: all)."),
        PairOption("max_passage_chars", int, 1000, "Longest passage, in characters."),
    ],
)
def ddtp_pairs(
    source: Path,
    max_units: int | None = None,
    languages: str | Sequence[str] | None = None,
    max_passage_chars: int = 1000,
) -> pl.DataFrame:
    """Synopsis (name masked) -> long description for every language pair of each package.

    English units without a long description of at least 40 characters are skipped, and
    English synopses or long descriptions that repeat another package's are dropped
    (first package kept), so that a batch never holds two copies of one text.
    """
    langs = select_languages(languages, DDTP_LANGS, "ddtp pairs")
    folder = source if source.is_dir() else source.parent
    english = read_ddtp(folder / "Translation-en.lz4", "en")
    units: dict[str, dict[str, tuple[str, str]]] = {}
    seen_q: set[str] = set()
    seen_p: set[str] = set()
    en_text: dict[str, tuple[str, str]] = {}
    for (pkg, md5), (syn, long) in sorted(english.items()):
        q = mask_package(syn, pkg)
        p = bound_length(long, max_passage_chars, min_chars=40)
        if not p or sum(ch.isalpha() for ch in q.replace(MASK, "")) < 3:
            continue
        kq, kp = dedup_key(q), dedup_key(p)
        if kq in seen_q or kp in seen_p:
            continue
        seen_q.add(kq)
        seen_p.add(kp)
        unit = f"{pkg}:{md5}"
        en_text[unit] = (q, p)
        units[unit] = {"en": (q, p)} if "en" in langs else {}
    cap = int(max_passage_chars * 1.5)
    for lang in langs:
        if lang == "en":
            continue
        for (pkg, md5), (syn, long) in read_ddtp(folder / f"Translation-{lang}.lz4", lang).items():
            unit = f"{pkg}:{md5}"
            if unit not in en_text:
                continue
            q = mask_package(syn, pkg)
            p = bound_length(long, cap, min_chars=20)
            eq, ep = en_text[unit]
            if keep_translation(q, lang, eq, min_chars=3)[0] and keep_translation(p, lang, ep)[0]:
                units[unit][lang] = (q, p)
    units = {u: v for u, v in units.items() if v}
    keep = hash_sample(units, max_units)
    return pairs_from_units({u: units[u] for u in keep}, "ddtp")
