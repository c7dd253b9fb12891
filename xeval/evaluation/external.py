"""Runs made by other tools -> an xeval run folder that ``xeval evaluate`` and ``compare`` accept.

Accepted inputs (plain or ``.gz``, except Parquet):

- TREC run, 6 whitespace-separated columns ``qid Q0 docid rank score tag`` (``.trec``,
  ``.run``, ``.txt``);
- TSV ``query_id<TAB>doc_id<TAB>score[<TAB>rank]``, an optional header line (``.tsv``);
- Parquet with ``query_id, doc_id, score`` (``.parquet``);
- a folder of such files.

A file named after a setting (``cross-en-de.trec``) is that setting's run. Any other name is a
**pooled** run over the whole corpus: xeval splits it into every mono / cross / multi setting
of the benchmark by document language (a cross setting keeps only documents of its document
language, re-ranked by score; a multi setting keeps them all). Ranks come from scores under
the tie rule (the rank column is ignored, as trec_eval does).

A split setting's cut-off is its longest per-query list: a pooled top-k holds fewer
documents of one language than k, so metrics deeper than that are unavailable there.

The folder written has ``run.json`` (``"exact_ranks": false``, the source files with their
SHA-256) and ``runs/<setting>.parquet``; there is no ``ranks/``, so metrics that need ranks
below the run's cut-off are reported unavailable.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from xeval.benchmark.schema import Benchmark, load_benchmark
from xeval.benchmark.settings import Setting, enumerate_settings
from xeval.errors import XevalError
from xeval.evaluation.evaluate import EvalConfig, evaluate_run
from xeval.evaluation.report import EvaluationResult
from xeval.metrics.trec import open_text, read_trec_run
from xeval.metrics.validate import validate_run
from xeval.provenance import atomic_dir, provenance, write_json
from xeval.tables import RUN, TIE_RULE

TREC_SUFFIXES = (".trec", ".run", ".txt")
SUFFIXES = (*TREC_SUFFIXES, ".tsv", ".parquet")


@dataclass(frozen=True)
class ImportConfig:
    """``label``: the system's name (default: the first file's stem); ``out``: the folder to
    write (default ``./<label>``); ``overwrite``: replace an existing folder."""

    label: str | None = None
    out: Path | None = None
    overwrite: bool = False


@dataclass(frozen=True)
class RunFile:
    """One input file: its path, format and the setting it holds (None: pooled)."""

    path: Path
    fmt: str
    setting: str | None


def _stem_and_format(path: Path) -> tuple[str, str]:
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            if suffix == ".parquet" and path.name.endswith(".gz"):
                break
            fmt = "trec" if suffix in TREC_SUFFIXES else suffix[1:]
            return name[: -len(suffix)], fmt
    raise XevalError(
        f"unknown run format; use one of {', '.join(SUFFIXES)} (.gz accepted for text)",
        file=path,
    )


def discover(paths: list[Path], settings: dict[str, Setting]) -> list[RunFile]:
    """The run files named by ``paths`` (folders expanded), each with its setting or pooled."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
            if not found:
                raise XevalError("folder holds no run file", file=p)
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise XevalError("run file not found", file=p)
    out = []
    for f in files:
        stem, fmt = _stem_and_format(f)
        out.append(RunFile(f, fmt, stem if stem in settings else None))
    pooled = [r for r in out if r.setting is None]
    if pooled and len(out) > 1:
        raise XevalError(
            f"{pooled[0].path.name} is not named after a setting, so it would be a pooled run "
            "over the whole corpus, which must come alone; name per-setting files "
            "<setting>.<ext> (e.g. cross-en-de.trec)",
            file=pooled[0].path,
        )
    seen: dict[str, Path] = {}
    for r in out:
        if r.setting in seen:
            raise XevalError(f"second run for setting {r.setting}", file=r.path)
        seen[str(r.setting)] = r.path
    return out


# ---- readers: query_id, doc_id, score and _line (the line or row of each record) --------------
def read_external(rf: RunFile) -> pl.DataFrame:
    """Read one file as ``_line, query_id, doc_id, score``; errors name the file and line."""
    if rf.fmt == "trec":
        return read_trec_run(rf.path, lines=True).select("_line", "query_id", "doc_id", "score")
    if rf.fmt == "tsv":
        return read_tsv(rf.path)
    run = validate_run(RUN.read(rf.path), file=rf.path)  # columns, types, nulls, finite, duplicates
    return run.with_row_index("_line", offset=1)


def read_tsv(path: Path) -> pl.DataFrame:
    """``query_id, doc_id, score[, rank]`` tab-separated; a first line naming the columns
    (``query_id``/``qid``... or ``score``) is a header."""
    rows: list[tuple[int, str, str, str]] = []
    seen = False
    try:
        with open_text(path) as f:
            for no, line in enumerate(f, start=1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                parts = line.split("\t")
                if len(parts) not in (3, 4):
                    raise XevalError(
                        f"expected 3 or 4 tab-separated fields (query_id, doc_id, score[, "
                        f"rank]), found {len(parts)}: {line!r}",
                        file=path,
                        record=f"line {no}",
                    )
                if not rows and not seen and _is_header(parts):
                    seen = True
                    continue
                seen = True
                rows.append((no, parts[0], parts[1], parts[2]))
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise XevalError(f"unreadable text file ({exc})", file=path) from None
    raw = pl.DataFrame(
        rows,
        schema={"_line": pl.UInt32, "query_id": pl.String, "doc_id": pl.String, "s": pl.String},
        orient="row",
    )
    out = raw.with_columns(score=pl.col("s").str.strip_chars().cast(pl.Float64, strict=False))
    bad = out.filter(pl.col("score").is_null())
    if bad.height:
        r = bad.row(0, named=True)
        raise XevalError(
            f"score is not a number: {r['s']!r}", file=path, record=f"line {r['_line']}"
        )
    return out.select("_line", "query_id", "doc_id", "score")


def _is_header(parts: list[str]) -> bool:
    """A first line naming its columns (``query_id``/``qid`` ... ``score``)."""
    return (
        parts[0].strip().lower() in ("query_id", "qid", "query", "topic")
        or parts[2].strip().lower() == "score"
    )


def check_records(run: pl.DataFrame, bench: Benchmark, path: Path) -> None:
    """Ids known to the benchmark, finite scores, no repeated (query, doc): else the line."""

    def fail(rows: pl.DataFrame, message: str) -> None:
        if rows.height:
            r = rows.sort("_line").row(0, named=True)
            raise XevalError(
                message.format(**r) + f" ({rows.height} such line(s))",
                file=path,
                record=f"line {r['_line']}",
            )

    fail(run.filter(~pl.col("score").is_finite()), "score of ({query_id!r}, {doc_id!r}) is {score}")
    fail(
        run.filter(pl.struct("query_id", "doc_id").is_duplicated()).filter(
            ~pl.struct("query_id", "doc_id").is_first_distinct()
        ),
        "duplicate (query, doc) line ({query_id!r}, {doc_id!r})",
    )
    fail(
        run.join(bench.queries.select("query_id"), on="query_id", how="anti"),
        "query {query_id!r} is not a query of benchmark " + repr(bench.name),
    )
    fail(
        run.join(bench.corpus.select("doc_id"), on="doc_id", how="anti"),
        "doc {doc_id!r} is not in the corpus of benchmark " + repr(bench.name),
    )


# ---- splitting and writing -------------------------------------------------------------------
def split_pooled(
    run: pl.DataFrame, settings: list[Setting], bench: Benchmark
) -> dict[str, pl.DataFrame]:
    """Every setting's share of a pooled run: its queries, documents of its languages."""
    with_lang = run.join(bench.corpus.select("doc_id", "lang"), on="doc_id", how="left")
    out = {}
    for s in settings:
        part = with_lang.filter(
            pl.col("query_id").is_in(s.query_ids) & pl.col("lang").is_in(list(s.doc_langs))
        )
        if part.height:
            out[s.name] = part.select("query_id", "doc_id", "score")
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def import_runs(
    benchmark: str | Path, paths: list[Path], config: ImportConfig | None = None
) -> Path:
    """Write an xeval run folder from external run files; return its path (see module notes)."""
    cfg = config or ImportConfig()
    bench = load_benchmark(benchmark)
    settings = enumerate_settings(bench)
    by_name = {s.name: s for s in settings}
    files = discover([Path(p) for p in paths], by_name)
    label = cfg.label or files[0].path.name.split(".")[0]
    out = Path(cfg.out) if cfg.out is not None else Path(label)
    if out.exists() and not cfg.overwrite:
        raise XevalError(f"{out} exists; pass --overwrite to replace it, or --out DIR")
    runs: dict[str, pl.DataFrame] = {}
    for rf in files:
        raw = read_external(rf)
        check_records(raw, bench, rf.path)
        if rf.setting is None:
            runs |= split_pooled(raw, settings, bench)
            continue
        s = by_name[rf.setting]
        runs[s.name] = validate_run(
            raw.select("query_id", "doc_id", "score"),
            qrels=s.qrels,
            corpus=bench.corpus.select("doc_id", "lang"),
            doc_langs=s.doc_langs,
            known_queries=bench.queries.select("query_id"),
            file=rf.path,
            what=f"setting {s.name}",
        )
    if not runs:
        raise XevalError("the run holds no (query, doc) line of any setting", file=paths[0])
    names = [s.name for s in settings if s.name in runs]
    sources = [
        {"path": str(r.path.resolve()), "sha256": _sha256(r.path), "format": r.fmt,
         "setting": r.setting or "pooled"}
        for r in files
    ]  # fmt: skip
    fingerprint = hashlib.sha256("".join(s["sha256"] for s in sources).encode()).hexdigest()
    meta = provenance(
        model={"name": label, "label": label, "path": None, "fingerprint": fingerprint},
        benchmark={
            "name": bench.name,
            "path": str(Path(benchmark).resolve()),
            "fingerprint": bench.fingerprint,
        },
        backend="external",
        k=max(int(r.group_by("query_id").len()["len"].max() or 0) for r in runs.values()),  # type: ignore[arg-type]
        settings=names,
        exact_ranks=False,
        external={"sources": sources, "pooled": any(r.setting is None for r in files)},
        tie_rule=TIE_RULE,
    )
    with atomic_dir(out, overwrite=cfg.overwrite) as tmp:
        (tmp / "runs").mkdir()
        for name in names:
            runs[name].write_parquet(tmp / "runs" / f"{name}.parquet")
        write_json(tmp / "run.json", meta)
    return out


def evaluate_paths(
    paths: list[Path],
    benchmark: str | Path | None = None,
    config: EvalConfig | None = None,
    import_config: ImportConfig | None = None,
) -> EvaluationResult:
    """``xeval evaluate``: one run folder (``run.json``) as is, anything else imported first.

    External runs need ``benchmark``; they are written to a run folder (see
    :func:`import_runs`) and evaluated there.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise XevalError("no run given: pass a run folder or run files")
    for p in paths:
        if not p.exists():
            raise XevalError("not found", file=p)
    if len(paths) == 1 and (paths[0] / "run.json").is_file():
        return evaluate_run(paths[0], benchmark, config)
    if benchmark is None:
        raise XevalError(
            f"{paths[0]} is not an xeval run folder (no run.json): to evaluate runs made by "
            "another tool, pass --benchmark DIR"
        )
    out = import_runs(benchmark, paths, import_config)
    return evaluate_run(out, benchmark, config)
