"""Finlex original statutes (fi/sv): section heading -> section text, base acts only.

The source is eliask/finlex-data ``data/asd/{fi,sv}/YEAR/asdYYYYNNNN.xml`` (Semantic
Finlex original statutes), as the ``.tar.xz`` of ``../shared/data/finlex`` or unpacked.
A *unit* is one ``saa:Pykala`` (section), aligned across languages by statute number +
section id (``saa1:identifiointiTunnus``, e.g. ``10 §``). Amending acts are not part of
the benchmark; the ``finlex`` pair source (:func:`finlex_pairs`) trains on them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

import polars as pl

from xeval.benchmark.builders._legal import (
    PairRules,
    Unit,
    counts_table,
    element_text,
    legal_pairs,
    parallel_tables,
    parse_xml,
    quality_filter,
    query_units,
    read_members,
    unit_keys,
)
from xeval.benchmark.registry import register
from xeval.benchmark.schema import Benchmark
from xeval.errors import XevalError
from xeval.sources import SourceSpec
from xeval.training.pairs import register_pairs

NAME = "finlex"
LANGS = ("fi", "sv")
ARCHIVE_GLOB = "finlex-data-*.tar*"
MIN_CHARS, MAX_CHARS = 40, 4000
HEAD_MIN, HEAD_MAX = 3, 200
SOURCE = SourceSpec(
    relpath="finlex",
    licence="CC BY 4.0 (original statutes, Semantic Finlex)",
    upstream="eliask/finlex-data@151c941 data/asd/{fi,sv}/2023 (+ 1999/731)",
)
SAA = "{http://www.vn.fi/skeemat/saadoskooste/2010/04/27}"
SAA1 = "{http://www.vn.fi/skeemat/saadoselementit/2010/04/27}"
MET1 = "{http://www.vn.fi/skeemat/metatietoelementit/2010/04/27}"
_MEMBER = re.compile(r"(?:^|/)asd/(fi|sv)/(\d{4})/asd(\d{4})(\d+)\.xml$")
_INLINE = {"SaadosKursiiviKooste", "KursiiviTeksti", "YlaindeksiTeksti", "AlaindeksiTeksti"}
_SKIP = {"PykalaTunnusKooste", "SaadosOtsikkoKooste", "Katkoviiva", "Kuva", "KuvaAsemointi"}
# an amending / repealing / entry-into-force act, by its title in either language
AMENDING_TITLE = {
    "fi": re.compile(r"(muuttamisesta|muutoksesta|kumoamisesta|voimaantulosta)$"),
    "sv": re.compile(r"\bom (temporär |tillfällig )?(en )?(ändring|upphävande|ikraftträdande)\b"),
}
# ... or by the verbs of its enacting clause ("muutetaan", "lisätään", "kumotaan")
AMENDING_VERBS = {"muutetaan", "lisätään", "kumotaan"}


@dataclass(frozen=True)
class Statute:
    """One statute in one language."""

    number: str  # "801/2023"
    lang: str
    title: str
    amending: bool
    sections: dict[str, tuple[str | None, str]]  # section id -> (heading, text)


def read_statutes(source: Path) -> dict[str, dict[str, Statute]]:
    """``{lang: {number: Statute}}`` from the archive or the unpacked tree."""
    members = read_members(
        source, ARCHIVE_GLOB, lambda n: bool(_MEMBER.search(n)), what="Finlex statute XML"
    )
    out: dict[str, dict[str, Statute]] = {lang: {} for lang in LANGS}
    for name, data in sorted(members.items()):
        m = _MEMBER.search(name)
        assert m is not None
        lang, number = m.group(1), f"{int(m.group(4))}/{m.group(3)}"
        out[lang][number] = parse_statute(data, name, number, lang)
    for lang in LANGS:
        if not out[lang]:
            raise XevalError(f"no data/asd/{lang}/*/*.xml files", file=source)
    return out


def parse_statute(data: bytes, name: str, number: str, lang: str) -> Statute:
    """Title, amending flag and ``{section id: (heading, text)}`` of one statute file.

    Section ids occurring twice in a statute (acts amending several laws) are left out.
    """
    root = parse_xml(data, name)
    title_el = root.find(f".//{SAA}SaadosNimekeKooste")
    if title_el is None:
        title_el = root.find(f".//{MET1}NimekeTeksti")
    title = " ".join("".join(title_el.itertext()).split()) if title_el is not None else ""
    verbs = {
        "".join(k.itertext()).strip().casefold()
        for j in root.iter(f"{SAA}Johtolause")
        for k in j.iter(f"{SAA}SaadosKursiiviKooste")
    }
    amending = bool(verbs & AMENDING_VERBS)
    sections: dict[str, tuple[str | None, str]] = {}
    ids: Counter[str] = Counter()
    pykalat = list(root.iter(f"{SAA}Pykala"))
    for p in pykalat:
        ids[_section_id(p)] += 1
    for p in pykalat:
        sid = _section_id(p)
        if not sid or ids[sid] > 1:
            continue
        head = p.find(f"{SAA}SaadosOtsikkoKooste")
        heading = element_text(head, inline=_INLINE) if head is not None else None
        text = element_text(p, skip=_SKIP, inline=_INLINE)
        sections[sid] = (heading or None, text)
    return Statute(number, lang, title, amending, sections)


def _section_id(p: ET.Element) -> str:
    sid = p.get(f"{SAA1}identifiointiTunnus")
    if not sid:
        t = p.find(f"{SAA}PykalaTunnusKooste")
        sid = "".join(t.itertext()) if t is not None else ""
    return " ".join(sid.split())


def is_amending(statutes: dict[str, dict[str, Statute]], number: str) -> bool:
    """An amending act by either title or by its enacting clause's verbs (any language)."""
    for lang in LANGS:
        st = statutes[lang].get(number)
        if st is None:
            continue
        if st.amending or AMENDING_TITLE[lang].search(st.title):
            return True
    return False


def aligned_units(statutes: dict[str, dict[str, Statute]], numbers: Iterable[str]) -> list[Unit]:
    """Sections of the given statutes present in both languages."""
    units = []
    for number in numbers:
        fi, sv = statutes["fi"].get(number), statutes["sv"].get(number)
        if fi is None or sv is None:
            continue
        for sid in fi.sections.keys() & sv.sections.keys():
            units.append(
                Unit(
                    number,
                    sid.replace(" ", ""),
                    {"fi": fi.sections[sid][0], "sv": sv.sections[sid][0]},
                    {"fi": fi.sections[sid][1], "sv": sv.sections[sid][1]},
                )
            )
    return sorted(units, key=_order)


def _order(u: Unit) -> tuple:
    n, y = u.doc.split("/")
    return (int(y), int(n), tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", u.key)))


def split_statutes(statutes: dict[str, dict[str, Statute]]) -> tuple[list[str], list[str]]:
    """(base acts, amending acts) among the statutes present in both languages."""
    both = sorted(statutes["fi"].keys() & statutes["sv"].keys())
    base = [n for n in both if not is_amending(statutes, n)]
    amending = [n for n in both if is_amending(statutes, n)]
    return base, amending


def benchmark_units(
    statutes: dict[str, dict[str, Statute]],
) -> tuple[list[str], list[Unit], Counter[str]]:
    """The base acts and their filtered units (what the training pairs must avoid)."""
    base, _ = split_statutes(statutes)
    units, dropped = quality_filter(aligned_units(statutes, base), LANGS, MIN_CHARS, MAX_CHARS)
    return base, units, dropped


@register(
    NAME,
    domain="legal",
    description="Finnish statutes of 2023 + the Constitution: section heading -> section, fi/sv",
    licence="CC BY 4.0",
    source=SOURCE,
    source_help="finlex-data-*.tar.xz, a folder holding it, or the unpacked data/asd tree",
)
def build(source: Path) -> Benchmark:
    """Build the benchmark (see the card for every rule)."""
    statutes = read_statutes(source)
    base, units, dropped = benchmark_units(statutes)
    if not units:
        raise XevalError("no aligned base-act sections survive the filters", file=source)
    qunits, why = query_units(units, LANGS, HEAD_MIN, HEAD_MAX)
    docs, queries, qrels = parallel_tables(units, qunits, LANGS)
    n_all = len(statutes["fi"].keys() & statutes["sv"].keys())
    bench = Benchmark(
        NAME,
        pl.DataFrame(docs),
        pl.DataFrame(queries),
        pl.DataFrame(qrels),
        manifest={
            "languages": list(LANGS),
            "statutes": base,
            "n_statutes": len(base),
            "n_statutes_in_source": n_all,
            "dropped_units": dict(dropped),
            "dropped_queries": dict(why),
            "heading_policy": "restrict",
        },
    )
    bench.card = _card(bench, len(base), n_all, dropped, why)
    return bench


@register_pairs(
    NAME,
    description="Sections of the 2023 amending acts (the finlex benchmark has the base "
    "acts): heading -> provision, fi/sv",
    source=SOURCE,
    source_help="the finlex-data archive, a folder holding it, or the unpacked tree",
)
def finlex_pairs(source: Path, max_units: int | None = None) -> pl.DataFrame:
    """Pairs from the amending acts of Finlex 2023, text-disjoint from the benchmark."""
    statutes = read_statutes(source)
    _, bench_units, _ = benchmark_units(statutes)
    _, amending = split_statutes(statutes)
    units, _ = quality_filter(aligned_units(statutes, amending), LANGS, MIN_CHARS, MAX_CHARS)
    rules = PairRules(LANGS, NAME, (HEAD_MIN, HEAD_MAX), max_units)
    return legal_pairs(units, unit_keys(bench_units, LANGS), rules)


def _card(bench: Benchmark, n_base: int, n_all: int, dropped: Counter, why: Counter) -> str:
    drops = ", ".join(f"{k}: {v}" for k, v in sorted(dropped.items())) or "none"
    qdrops = ", ".join(f"{k}: {v}" for k, v in sorted(why.items())) or "none"
    return f"""# finlex

Finnish original statutes of 2023 and the Constitution (731/1999) in Finnish and Swedish
(Semantic Finlex via eliask/finlex-data 151c941), built by `xeval build-benchmark finlex`.

- **Base acts only**: {n_base} of the {n_all} statutes present in both languages. A statute is
  *amending* (left out) when its title says so in either language (fi `...muuttamisesta`,
  `...muutoksesta`, `...kumoamisesta`, `...voimaantulosta`; sv `om (temporär) ändring`,
  `om upphävande`, `om ikraftträdande`) or its enacting clause uses the verbs
  *muutetaan / lisätään / kumotaan*. Amending acts feed `xeval pairs finlex` instead.
- **Unit**: a section (`saa:Pykala`) aligned by statute number + section id
  (`identifiointiTunnus`, e.g. `10 §`); ids occurring twice in a statute are left out.
- **Corpus**: every unit's text in both languages (the `MomenttiKooste` subsections and
  their items, without the section number and heading); doc id `LANG-NNN/YYYY/N§`.
- **Queries**: the section heading (`saa:SaadosOtsikkoKooste`) in each language.
- **Relevance**: the unit's section in both languages (pooled qrels).
- **Non-unique headings: restricted.** A heading occurring on more than one unit in either
  language ("Voimaantulo", "Soveltamisala", "Määritelmät" ...) gives no query; those
  sections stay in the corpus as distractors.
- **Quality filters**: units whose Swedish text equals the Finnish, outside
  {MIN_CHARS}-{MAX_CHARS} characters, not mostly Latin script, or duplicating an earlier
  unit's text are dropped ({drops}). Query drops: {qdrops}.

{counts_table(bench.counts())}

**Caveats**: headings often reuse the words of the section (lexical give-away); many
statutes are short decrees, and sections that bring treaties into force are formulaic;
unjudged near-answers are possible among the distractors. Licence: CC BY 4.0 (original
statutes; the consolidated legislation, not used here, is CC BY-NC).
"""
