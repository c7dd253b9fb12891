"""Creative Commons 4.0 legal code in 31 languages: bold heading / defined term -> body.

The source is ``docroot/legalcode`` of creativecommons/creativecommons.org: one HTML file
per licence and language, ``{lic}_4.0_{lang}.html``; the English canonical text is
``{lic}_4.0.html`` (``{lic}_4.0_en.html`` is a stub). Provisions carry the same element
id (``s1a``, ``s2a``, ``s3a``, ...) in every language, which aligns them.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import polars as pl

from xeval.benchmark.builders._legal import clean, counts_table, length_ok
from xeval.benchmark.registry import register
from xeval.benchmark.schema import Benchmark
from xeval.errors import XevalError
from xeval.sources import SourceSpec
from xeval.text import dedup_key, in_expected_script

NAME = "cc-legalcode"
LICENCES = ("by", "by-sa", "by-nc", "by-nd", "by-nc-sa", "by-nc-nd")  # dedup keeps the first
LANGS = (
    "ar", "cs", "da", "de", "el", "en", "es", "eu", "fi", "fr", "fy", "hr", "id", "it", "ja",
    "ko", "lt", "lv", "mi", "nl", "no", "pl", "pt", "ro", "ru", "sl", "sv", "tr", "uk",
    "zh-Hans", "zh-Hant",
)  # fmt: skip
MIN_CHARS, MAX_CHARS = 20, 6000
HEAD_MIN, HEAD_MAX = 1, 120
SOURCE = SourceSpec(
    relpath="creativecommons-legalcode-4.0",
    licence="CC asserts no copyright in licence text",
    upstream="creativecommons/creativecommons.org@7f52533 docroot/legalcode/*_4.0*.html",
    required=tuple(f"{lic}_4.0.html" for lic in LICENCES),
)
_UNIT_ID = re.compile(r"^s\d+[a-zA-Z0-9]*$")
_VOID = {
    "br",
    "img",
    "meta",
    "link",
    "input",
    "hr",
    "area",
    "base",
    "col",
    "embed",
    "source",
    "wbr",
}
_INLINE = {"a", "strong", "b", "em", "i", "span", "u", "abbr", "code", "sup", "sub", "small"}
_LEAD = " \t\n.:;,–—-：、。"  # punctuation a heading leaves in front of its body


# ---- a small HTML tree -------------------------------------------------------------------
@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def text(self, skip: Node | None = None) -> str:
        """Text content (block elements separated by spaces), without node ``skip``."""
        parts: list[str] = []

        def walk(n: Node) -> None:
            for ch in n.children:
                if isinstance(ch, str):
                    parts.append(ch)
                elif ch is not skip:
                    sep = "" if ch.tag in _INLINE else " "
                    parts.append(sep)
                    walk(ch)
                    parts.append(sep)

        walk(self)
        return clean("".join(parts))

    def iter(self):
        yield self
        for ch in self.children:
            if isinstance(ch, Node):
                yield from ch.iter()


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_html(path: Path) -> Node:
    """The document tree of an HTML file; a missing or non-UTF-8 file is an XevalError."""
    try:
        raw = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise XevalError("missing legal-code file", file=path) from None
    except UnicodeDecodeError as exc:
        raise XevalError(f"not UTF-8 ({exc})", file=path) from None
    b = _TreeBuilder()
    b.feed(raw)
    b.close()
    return b.root


def headed_units(root: Node) -> dict[str, tuple[str, str]]:
    """``{element id: (bold heading, body)}`` for every provision whose text has a bold
    part (a defined term or a heading) followed by a body; section titles, whose body is
    spread over the following elements, and provisions wholly in bold have no body."""
    out: dict[str, tuple[str, str]] = {}
    for n in root.iter():
        eid = n.attrs.get("id", "")
        if not _UNIT_ID.match(eid) or eid in out:
            continue
        strong = next((s for s in n.iter() if s.tag in ("strong", "b")), None)
        if strong is None:
            continue
        heading = strong.text().strip(_LEAD + "\"'“”„«»「」『』")
        body = n.text(skip=strong).lstrip(_LEAD).lstrip("」』”").lstrip(_LEAD)
        if heading and body:
            out[eid] = (heading, body)
    return out


def _lead_strong(n: Node) -> bool:
    """Whether the element's first non-blank content is bold (maybe inside a leading <p>)."""
    for ch in n.children:
        if isinstance(ch, str):
            if ch.strip():
                return False
            continue
        if ch.tag in ("strong", "b"):
            return True
        return ch.tag == "p" and _lead_strong(ch)
    return False


@dataclass
class CcUnit:
    licence: str
    eid: str
    heading: dict[str, str]
    body: dict[str, str]

    @property
    def key(self) -> str:
        return f"{self.licence}/{self.eid}"


def read_units(source: Path) -> tuple[list[CcUnit], Counter[str]]:
    """Headed units of every licence (English-led), each with its translations."""
    units: list[CcUnit] = []
    dropped: Counter[str] = Counter()
    for lic in LICENCES:
        en_root = parse_html(source / f"{lic}_4.0.html")
        en = {
            eid: hb
            for eid, hb in headed_units(en_root).items()
            if _lead_strong(next(n for n in en_root.iter() if n.attrs.get("id") == eid))
        }
        if not en:
            raise XevalError("no headed provisions (not a CC 4.0 legal code page?)", file=source)
        per_lang = {"en": en}
        for lang in LANGS:
            if lang == "en":
                continue
            path = source / f"{lic}_4.0_{lang}.html"
            if not path.exists():
                dropped[f"missing file {lic} {lang}"] += 1
                continue
            per_lang[lang] = headed_units(parse_html(path))
        for eid, (head, body) in en.items():
            u = CcUnit(lic, eid, {"en": head}, {"en": body})
            for lang, got in per_lang.items():
                if lang != "en" and eid in got:
                    u.heading[lang], u.body[lang] = got[eid]
            units.append(u)
    return units, dropped


def dedupe_and_filter(units: list[CcUnit]) -> tuple[list[CcUnit], Counter[str]]:
    """Keep one unit per English body across licences (the first licence in
    :data:`LICENCES`), then drop per-language texts that equal the English one, are in the
    wrong script, out of length bounds, or repeat a kept text of that language."""
    seen_en: set[str] = set()
    seen: dict[str, set[str]] = {lang: set() for lang in LANGS}
    out: list[CcUnit] = []
    why: Counter[str] = Counter()
    for u in units:
        k = dedup_key(u.body["en"])
        if k in seen_en:
            why["same English text in an earlier licence"] += 1
            continue
        if not length_ok(u.body["en"], MIN_CHARS, MAX_CHARS) or not length_ok(
            u.heading["en"], HEAD_MIN, HEAD_MAX
        ):
            why["English length out of bounds"] += 1
            continue
        seen_en.add(k)
        for lang in [lg for lg in u.body if lg != "en"]:
            body, head = u.body[lang], u.heading[lang]
            reason = None
            if dedup_key(body) == dedup_key(u.body["en"]):
                reason = "body identical to English"
            elif not in_expected_script(body, lang):
                reason = "wrong script"
            elif not length_ok(body, MIN_CHARS, MAX_CHARS) or not length_ok(
                head, HEAD_MIN, HEAD_MAX
            ):
                reason = "length out of bounds"
            elif dedup_key(body) in seen[lang]:
                reason = "duplicate text"
            if reason:
                why[f"{reason} (one language)"] += 1
                del u.body[lang], u.heading[lang]
        for lang, body in u.body.items():
            seen[lang].add(dedup_key(body))
        out.append(u)
    return out, why


@register(
    NAME,
    domain="legal",
    description="CC 4.0 licences in 31 languages: bold heading / defined term -> provision",
    licence="CC asserts no copyright in licence text",
    source=SOURCE,
    source_help="docroot/legalcode folder with {lic}_4.0.html and {lic}_4.0_{lang}.html",
)
def build(source: Path) -> Benchmark:
    """Build the benchmark (see the card for every rule)."""
    if not source.is_dir():
        raise XevalError("expected the legalcode folder", file=source)
    raw, missing = read_units(source)
    units, why = dedupe_and_filter(raw)
    why.update(missing)
    # all units sharing an English heading form one query group (all of them relevant)
    groups: dict[str, list[CcUnit]] = {}
    for u in units:
        groups.setdefault(dedup_key(u.heading["en"]), []).append(u)
    docs, queries, qrels = [], [], []
    qdrop: Counter[str] = Counter()
    for members in groups.values():
        gid = members[0].key
        for u in members:
            for lang, body in u.body.items():
                docs.append(
                    {
                        "doc_id": f"{lang}-{u.key}",
                        "lang": lang,
                        "text": body,
                        "title": u.licence,
                        "unit_id": gid,
                    }
                )
        for lang in LANGS:
            head = next((u.heading[lang] for u in members if lang in u.heading), None)
            if head is None:
                continue
            if lang != "en" and dedup_key(head) == dedup_key(members[0].heading["en"]):
                qdrop["heading identical to English"] += 1
                continue
            qid = f"{lang}-q-{gid}"
            queries.append({"query_id": qid, "lang": lang, "text": head, "unit_id": gid})
            qrels += [
                {"query_id": qid, "doc_id": f"{dl}-{u.key}", "relevance": 1}
                for u in members
                for dl in u.body
            ]
    bench = Benchmark(
        NAME,
        pl.DataFrame(docs),
        pl.DataFrame(queries),
        pl.DataFrame(qrels),
        manifest={
            "languages": list(LANGS),
            "licences": list(LICENCES),
            "n_units": len(units),
            "n_query_groups": len(groups),
            "dropped": dict(why),
            "dropped_queries": dict(qdrop),
            "heading_policy": "all sections with the heading are relevant",
        },
    )
    multi = sum(len(m) > 1 for m in groups.values())
    bench.card = _card(bench, len(raw), len(units), len(groups), multi, why, qdrop)
    return bench


def _card(
    bench: Benchmark,
    n_raw: int,
    n_units: int,
    n_groups: int,
    multi: int,
    why: Counter,
    qdrop: Counter,
) -> str:
    drops = ", ".join(f"{k}: {v}" for k, v in sorted(why.items())) or "none"
    qd = ", ".join(f"{k}: {v}" for k, v in sorted(qdrop.items())) or "none"
    return f"""# cc-legalcode

The six Creative Commons 4.0 licences ({", ".join(LICENCES)}) in 31 languages
(creativecommons/creativecommons.org 7f52533, `docroot/legalcode`), built by
`xeval build-benchmark cc-legalcode`.

- **Unit**: a provision (`li`/`p` with an id such as `s1a`, `s2a`, `s3a`) whose English text
  starts with a bold part followed by a body: a defined term ("Adapted Material" -> "means
  material subject to ...") or a provision heading ("License grant" -> its sub-items).
  Section titles ("Section 1 – Definitions.") have no body of their own and are not units;
  nor is CC0 (`zero_1.0`). Element ids align units across languages; in a translation the
  heading is the provision's first bold part, wherever it stands.
- **Deduplicated across licences**: of {n_raw} headed units, a unit whose English body
  equals that of a unit in an earlier licence (order {", ".join(LICENCES)}) is dropped, with
  its translations and heading ("BY-NC-SA Compatible License" has the body of "BY-SA
  Compatible License"): {n_units} units are left.
- **Corpus**: each unit's body (the provision without its bold heading) in every language
  that has it; doc id `LANG-LICENCE/ID`.
- **Queries**: the bold heading / defined term, one query per English heading and language.
- **Relevance: all units with the same English heading are relevant** ({n_groups} query
  groups). Licences phrase e.g. "Attribution" or "Licensed Material" slightly
  differently; those variants are all correct answers, so the query is pooled over them
  ({multi} of the {n_groups} headings have more than one relevant unit per language).
- **Quality filters** (per language): translations whose body equals the English one, in
  the wrong script, outside {MIN_CHARS}-{MAX_CHARS} characters (heading {HEAD_MIN}-{HEAD_MAX}),
  or repeating another unit's text in that language are dropped. Drops: {drops}.
  Queries dropped: {qd}.

{counts_table(bench.counts())}

**Caveats**: a tiny corpus per language ({n_units} provisions at most), so absolute scores are high and
noisy. Lexical give-aways are strong: a defined term usually reappears verbatim in its
own definition ("... Adapted Material is always produced ...") and in other provisions
that use it, and translations share Latin-script terms (Licensor, ShareAlike). Licence
text: CC asserts no copyright in it.
"""
