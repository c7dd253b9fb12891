"""Justice Canada consolidated Acts (en/fr): section marginal note -> section text.

The source is justicecanada/laws-lois-xml (``eng/acts/*.xml`` and ``fra/lois/*.xml``, the
same file name per Act), as the ``.tar.xz`` of ``../shared/data/justice-canada`` or
unpacked. A *unit* is one top-level ``Section`` of an Act's ``Body``, aligned across the
two languages by Act file + section ``Label``. See :func:`_card` for every rule.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable
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
from xeval.benchmark.registry import BuilderOption, register
from xeval.benchmark.schema import Benchmark
from xeval.errors import XevalError
from xeval.sources import SourceSpec
from xeval.training.pairs import PairOption, register_pairs

NAME = "justice-canada"
LANGS = ("en", "fr")
DIRS = {"en": "eng/acts", "fr": "fra/lois"}
ARCHIVE_GLOB = "laws-lois-xml-*.tar*"
DEFAULT_SIZE = 4500  # units per language: <= 9,000 passages, ~70 s to encode with queries (2 CPUs)
DEFAULT_SEED = 0
MIN_CHARS, MAX_CHARS = 40, 4000
HEAD_MIN, HEAD_MAX = 3, 200
SOURCE = SourceSpec(
    relpath="justice-canada",
    licence="Open Government Licence - Canada",
    upstream="justicecanada/laws-lois-xml@d6853c4 eng/acts, fra/lois",
)
_MEMBER = re.compile(r"(?:^|/)(eng/acts|fra/lois)/([^/]+)\.xml$")
# inline markup inside a sentence; every other element is a block (separated by a space)
_INLINE = {
    "XRefExternal", "XRefInternal", "DefinedTermEn", "DefinedTermFr", "DefinitionRef",
    "Emphasis", "Language", "Sup", "Sub", "Leader", "LeaderRightJustified", "Repealed",
}  # fmt: skip
# left out of a section's text: headings, citations of amending Acts, footnotes
_SKIP = {"MarginalNote", "HistoricalNote", "Footnote", "FootnoteRef", "Repealed"}
_OTHER_TERM = {"en": "DefinedTermFr", "fr": "DefinedTermEn"}


# ---- reading ------------------------------------------------------------------------------
class Acts(dict):
    """``{lang: {act: xml bytes}}`` plus a cache of each Act's parsed units."""

    def __init__(self) -> None:
        super().__init__({lang: {} for lang in LANGS})
        self.cache: dict[str, list[Unit]] = {}


def read_acts(source: Path) -> Acts:
    """``{lang: {act: xml bytes}}`` from the archive or the unpacked tree."""
    members = read_members(
        source, ARCHIVE_GLOB, lambda n: bool(_MEMBER.search(n)), what="Justice Canada XML"
    )
    acts = Acts()
    by_dir = {d: lang for lang, d in DIRS.items()}
    for name, data in members.items():
        m = _MEMBER.search(name)
        assert m is not None
        acts[by_dir[m.group(1)]][m.group(2)] = data
    for lang in LANGS:
        if not acts[lang]:
            raise XevalError(f"no {DIRS[lang]}/*.xml files ({lang})", file=source)
    return acts


def parse_act(data: bytes, act: str, lang: str) -> dict[str, tuple[str | None, str]]:
    """``{label: (marginal note, text)}`` of the Act's in-force, non-repealed body sections.

    Left out: Acts without a ``Body`` (repealed whole), sections in schedules or nested in
    other sections, ``type="amending"`` sections (amendments to other Acts),
    ``in-force="no"`` sections, unlabelled ones, labels that occur twice, and sections
    whose text is nothing but ``[Repealed, ...]`` notes.
    """
    root = parse_xml(data, f"{DIRS[lang]}/{act}.xml")
    body = root.find("Body")
    out: dict[str, tuple[str | None, str]] = {}
    if body is None:
        return out
    seen: Counter[str] = Counter()
    for sec in body.iter("Section"):
        lab = sec.find("Label")
        label = "".join(lab.itertext()).strip() if lab is not None else ""
        if label:
            seen[label] += 1
    for sec in body.findall("Section"):
        if sec.get("type") == "amending" or sec.get("in-force") == "no":
            continue
        lab = sec.find("Label")
        label = "".join(lab.itertext()).strip() if lab is not None else ""
        if not label or seen[label] > 1:
            continue
        mn = sec.find("MarginalNote")
        heading = element_text(mn, inline=_INLINE, skip={"FootnoteRef"}) if mn is not None else None
        text = _section_text(sec, lang)
        if _is_empty(sec, text):
            continue
        out[label] = (heading or None, text)
    return out


def _section_text(sec: ET.Element, lang: str) -> str:
    """The section's text without its own number, headings, notes and the other language's
    defined terms (``"access" means ... (accès)`` -> ``"access" means ...``)."""
    w = ET.Element("w")
    w.extend(ch for ch in sec if ch.tag != "Label" and ch.tag not in _SKIP)
    return element_text(w, skip=_SKIP, inline=_INLINE, drop_parenthesised={_OTHER_TERM[lang]})


def _is_empty(sec: ET.Element, text: str) -> bool:
    """True when nothing but labels is left once ``[Repealed ...]`` notes are removed, or
    when the text is one bracketed placeholder (``[Amendment]``, ``[Modifications]``)."""
    if re.fullmatch(r"\[[^\[\]]*\]", text.strip()):
        return True
    labels = [("".join(lab.itertext())).strip() for lab in sec.iter("Label")]
    rest = text
    for lab in labels:
        rest = rest.replace(lab, " ", 1)
    return not any(ch.isalpha() for ch in rest)


def section_counts(acts: dict[str, bytes]) -> dict[str, int]:
    """Raw ``<Section`` count per Act: an upper bound of the units an Act yields."""
    return {act: data.count(b"<Section ") + data.count(b"<Section>") for act, data in acts.items()}


def select_acts(
    acts: dict[str, dict[str, bytes]], size: int, seed: int = DEFAULT_SEED
) -> tuple[list[str], list[Unit]]:
    """Acts (and their unfiltered units) for at most ``size`` filtered units per language.

    Acts are visited in a seeded order and taken whole while their unit count still fits
    the budget; the visit stops within 2 % of the budget.
    """
    names = sorted(acts["en"])
    if size <= 0:
        return names, aligned_units(acts, names)
    random.Random(seed).shuffle(names)
    raw = section_counts(acts["en"])
    chosen: list[str] = []
    units: list[Unit] = []
    left = size
    for act in names:
        if left <= size // 50:  # within 2 % of the budget: stop parsing
            break
        if raw[act] == 0:
            continue
        got = aligned_units(acts, [act])
        n = len(quality_filter(got, LANGS, MIN_CHARS, MAX_CHARS)[0])
        if n and n <= left:
            chosen.append(act)
            units += got
            left -= n
    return sorted(chosen), units


def aligned_units(acts: dict[str, dict[str, bytes]], names: Iterable[str]) -> list[Unit]:
    """Units of the named Acts present (non-repealed, labelled) in both languages."""
    units: list[Unit] = []
    cache: dict[str, list[Unit]] = getattr(acts, "cache", {})
    for act in names:
        if act not in acts["fr"] or act not in acts["en"]:
            continue
        if act in cache:
            units += cache[act]
            continue
        got = []
        en = parse_act(acts["en"][act], act, "en")
        fr = parse_act(acts["fr"][act], act, "fr")
        for label in en.keys() & fr.keys():
            got.append(
                Unit(
                    act,
                    f"s{label.replace(' ', '_')}",
                    {"en": en[label][0], "fr": fr[label][0]},
                    {"en": en[label][1], "fr": fr[label][1]},
                )
            )
        cache[act] = got
        units += got
    return sorted(units, key=_order)


def _order(u: Unit) -> tuple:
    return (u.doc, tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", u.key)))


def benchmark_units(
    acts: dict[str, dict[str, bytes]], size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED
) -> tuple[list[str], list[Unit], Counter[str]]:
    """The benchmark's Acts and its filtered units (the training pairs exclude both)."""
    names, units = select_acts(acts, size, seed)
    units, dropped = quality_filter(sorted(units, key=_order), LANGS, MIN_CHARS, MAX_CHARS)
    return names, units, dropped


# ---- the benchmark --------------------------------------------------------------------------
@register(
    NAME,
    domain="legal",
    description="Canadian federal Acts: section marginal note -> section text, en/fr",
    licence="Open Government Licence - Canada",
    source=SOURCE,
    source_help="laws-lois-xml-*.tar.xz, a folder holding it, or the unpacked eng/acts + fra/lois",
    options=[
        BuilderOption(
            "size",
            int,
            DEFAULT_SIZE,
            "at most this many sections per language (whole Acts, seeded order); 0 = every Act",
        ),
        BuilderOption("seed", int, DEFAULT_SEED, "seed of the Act order used by --size"),
    ],
)
def build(source: Path, size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED) -> Benchmark:
    """Build the benchmark (see the card for every rule)."""
    if size < 0:
        raise XevalError(f"--size must be >= 0, got {size}")
    acts = read_acts(source)
    names, units, dropped = benchmark_units(acts, size, seed)
    if not units:
        raise XevalError("no aligned sections survive the filters", file=source)
    qunits, why = query_units(units, LANGS, HEAD_MIN, HEAD_MAX)
    docs, queries, qrels = parallel_tables(units, qunits, LANGS)
    bench = Benchmark(
        NAME,
        pl.DataFrame(docs),
        pl.DataFrame(queries),
        pl.DataFrame(qrels),
        manifest={
            "languages": list(LANGS),
            "acts": names,
            "n_acts": len(names),
            "size": size,
            "seed": seed,
            "dropped_units": dict(dropped),
            "dropped_queries": dict(why),
            "heading_policy": "restrict",
        },
    )
    bench.card = _card(bench, len(names), len(acts["en"]), size, seed, dropped, why)
    return bench


@register_pairs(
    NAME,
    description="Sections of the Acts the justice-canada benchmark (same --size/--seed) "
    "leaves out: heading -> provision, en/fr",
    source=SOURCE,
    source_help="the laws-lois-xml archive, a folder holding it, or the unpacked tree",
    options=[
        PairOption("size", int, DEFAULT_SIZE, "--size of the benchmark whose Acts are left out"),
        PairOption("seed", int, DEFAULT_SEED, "--seed of that benchmark, and of --max-units"),
    ],
)
def justice_canada_pairs(
    source: Path,
    max_units: int | None = None,
    size: int = DEFAULT_SIZE,
    seed: int = DEFAULT_SEED,
) -> pl.DataFrame:
    """Pairs from the Acts the benchmark (``size``, ``seed``) leaves out; ``max_units``
    keeps a seeded sample of that many sections (4 rows each)."""
    acts = read_acts(source)
    bench_acts, bench_units, _ = benchmark_units(acts, size, seed)
    others = sorted(set(acts["en"]) - set(bench_acts))
    units, _ = quality_filter(aligned_units(acts, others), LANGS, MIN_CHARS, MAX_CHARS)
    rules = PairRules(LANGS, NAME, (HEAD_MIN, HEAD_MAX), max_units, seed)
    return legal_pairs(units, unit_keys(bench_units, LANGS), rules)


def _card(
    bench: Benchmark,
    n_acts: int,
    all_acts: int,
    size: int,
    seed: int,
    dropped: Counter,
    why: Counter,
) -> str:
    drops = ", ".join(f"{k}: {v}" for k, v in sorted(dropped.items())) or "none"
    qdrops = ", ".join(f"{k}: {v}" for k, v in sorted(why.items())) or "none"
    sub = f"{n_acts} of {all_acts} Acts" + (
        f" (size {size} sections per language, seed {seed})" if size else " (every Act)"
    )
    return f"""# justice-canada

Canadian federal consolidated Acts in English and French (justicecanada/laws-lois-xml
d6853c4), built by `xeval build-benchmark justice-canada`. This build: {sub}.

- **Unit**: a top-level `Section` of an Act's `Body`, aligned across languages by Act file
  + section `Label`. Left out: schedules, sections nested in others, `type="amending"`
  sections (they amend other Acts), `in-force="no"` sections, unlabelled sections, labels
  occurring twice in an Act, and repealed sections (nothing left but `[Repealed, ...]`).
- **Corpus**: every unit in both languages (doc id `LANG-ACT/sLABEL`): the section text
  without its number, marginal notes, historical notes and footnotes, and without the
  other language's defined term (`"access" means ... (accès)` loses `(accès)`).
- **Queries**: the section's marginal note (heading), in each language.
- **Relevance**: the unit's section in both languages (pooled qrels).
- **Non-unique headings: restricted.** A marginal note that occurs on more than one unit
  of this benchmark in either language (case/punctuation-insensitive; "Definitions",
  "Short title", "Regulations" ...) gives no query; its sections stay in the corpus as
  distractors. Uniqueness is measured within the built benchmark, so it depends on
  `--size`.
- **Sub-sample** (`--size N`, default {DEFAULT_SIZE}; `--seed`): Acts are visited in a
  seeded order and taken whole while their filtered sections still fit N (the visit stops
  within 2 % of N), so the corpus has at most N sections per language: <= {2 * DEFAULT_SIZE}
  passages by default, about 70 s to encode with the queries using multilingual-e5-small
  on a 2-core CPU. `--size 0` uses every Act. The Acts not chosen with the default
  size/seed are the ones `xeval pairs justice-canada` trains on.
- **Quality filters**: units with a French text identical to the English one, a text
  outside {MIN_CHARS}-{MAX_CHARS} characters or not mostly in Latin script, and later
  duplicates of a text are dropped ({drops}). Query drops: {qdrops}.

{counts_table(bench.counts())}

**Caveats**: marginal notes are short (2-6 words) and often reuse the section's own
words (lexical give-away, strongest in the monolingual settings); a section without a
query may still answer a query about a similar topic (unjudged); sections longer than a
model's window are truncated by the model; three very large Acts (C-46, E-15, I-3.3) are
absent from this copy and big Acts rarely fit the default size.

Licence: Open Government Licence - Canada.
"""
