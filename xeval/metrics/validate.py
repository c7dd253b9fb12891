"""Run validation: bad input raises :class:`XevalError` naming the file and row, never a number.

Rules (each is tested):

- a run must have ``query_id``, ``doc_id``, ``score`` columns and at least one row;
- no null ids or scores; scores must be finite (NaN, +inf and -inf are errors: their rank
  would depend on the tool);
- no duplicate (query_id, doc_id) line (tools disagree on which one counts);
- every query must belong to the qrels being scored (a query of another setting or of
  no benchmark is an error), every document to the corpus searched;
- queries of the qrels that the run lacks are *not* an error: they score 0 and are counted
  (``n_missing``) and reported;
- a run made on another benchmark version (fingerprint in ``run.json`` differs) is an error,
  see :func:`check_fingerprint`.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from xeval.errors import XevalError
from xeval.tables import RUN


def _first(df: pl.DataFrame) -> dict:
    return df.row(0, named=True)


def validate_run(
    run: pl.DataFrame,
    *,
    qrels: pl.DataFrame | None = None,
    corpus: pl.DataFrame | None = None,
    doc_langs: tuple[str, ...] | None = None,
    known_queries: pl.DataFrame | None = None,
    file: str | Path | None = None,
    what: str = "the qrels",
) -> pl.DataFrame:
    """Check a run and return it as ``query_id, doc_id, score`` (String, String, Float64).

    ``qrels``: the queries allowed (a run query outside them is an error; ``known_queries``,
    a table with ``query_id``, tells "unknown" from "not part of this setting"). ``corpus``
    (``doc_id`` and, with ``doc_langs``, ``lang``): the documents allowed. ``what`` names the
    qrels in messages (e.g. ``"setting cross-en-de"``).
    """
    run = RUN.validate(run.select([c for c in RUN.columns if c in run.columns]), file)
    rows = _check_rows(run, file)
    if qrels is not None:
        _check_queries(run, rows, qrels, known_queries, file, what)
    if corpus is not None:
        _check_docs(run, rows, corpus, doc_langs, file, what)
    return run


def _check_rows(run: pl.DataFrame, file: str | Path | None) -> pl.DataFrame:
    """Non-empty, no nulls, finite scores, no repeated (query, doc); the rows numbered."""
    if run.height == 0:
        raise XevalError("run is empty (no (query, doc, score) line)", file=file)
    rows = run.with_row_index("_row", offset=1)
    nulls = rows.filter(pl.any_horizontal(pl.col(*RUN.columns).is_null()))
    if nulls.height:
        r = _first(nulls)
        raise XevalError(f"null value in line {r}", file=file, record=r["_row"])
    bad = rows.filter(~pl.col("score").is_finite())
    if bad.height:
        r = _first(bad)
        raise XevalError(
            f"score of ({r['query_id']!r}, {r['doc_id']!r}) is {r['score']}: scores must be "
            f"finite ({bad.height} such line(s))",
            file=file,
            record=r["_row"],
        )
    # duplicates: equal 64-bit hashes are candidates (a sort of integers is fast), then exact
    pair = pl.struct("query_id", "doc_id").hash()
    hashes = run.select(pair.alias("h"))["h"].sort()
    if (hashes == hashes.shift(1)).any():
        cand = rows.filter(pair.is_in(hashes.filter(hashes == hashes.shift(1)).implode()))
        dup = cand.filter(pl.struct("query_id", "doc_id").is_duplicated())
        dup = dup.filter(pl.struct("query_id", "doc_id").is_first_distinct().not_())
    else:
        dup = rows.head(0)
    if dup.height:
        r = dup.sort("_row").row(0, named=True)
        raise XevalError(
            f"duplicate (query, doc) line ({r['query_id']!r}, {r['doc_id']!r}); "
            f"{dup.height} line(s) repeat an earlier one",
            file=file,
            record=r["_row"],
        )
    return rows


def _check_queries(
    run: pl.DataFrame,
    rows: pl.DataFrame,
    qrels: pl.DataFrame,
    known_queries: pl.DataFrame | None,
    file: str | Path | None,
    what: str,
) -> None:
    """Every query of the run belongs to ``qrels``."""
    qids = run.select("query_id").unique()
    extra = qids.join(qrels.select("query_id").unique(), on="query_id", how="anti").sort("query_id")
    if extra.height:
        q = extra["query_id"][0]
        known = (
            known_queries is not None and known_queries.filter(pl.col("query_id") == q).height > 0
        )
        why = (
            f"is not part of {what} (it has no relevant item there)"
            if known
            else "is unknown (not in the benchmark's queries)"
            if known_queries is not None
            else f"is not in {what}"
        )
        raise XevalError(
            f"query {q!r} {why}; {extra.height} such query id(s)",
            file=file,
            record=_row_of(rows, "query_id", q),
        )


def _check_docs(
    run: pl.DataFrame,
    rows: pl.DataFrame,
    corpus: pl.DataFrame,
    doc_langs: tuple[str, ...] | None,
    file: str | Path | None,
    what: str,
) -> None:
    """Every document of the run is in ``corpus`` (and in ``doc_langs``)."""
    cols = ["doc_id", "lang"] if doc_langs is not None else ["doc_id"]
    docs = run.select("doc_id").unique().join(corpus.select(cols), on="doc_id", how="left")
    if doc_langs is None:
        unknown = docs.join(corpus.select("doc_id"), on="doc_id", how="anti")
    else:
        unknown = docs.filter(pl.col("lang").is_null())
    if unknown.height:
        d = unknown.sort("doc_id")["doc_id"][0]
        raise XevalError(
            f"doc {d!r} is unknown (not in the corpus); {unknown.height} such doc id(s)",
            file=file,
            record=_row_of(rows, "doc_id", d),
        )
    if doc_langs is not None:
        other = docs.filter(~pl.col("lang").is_in(list(doc_langs))).sort("doc_id")
        if other.height:
            r = _first(other)
            raise XevalError(
                f"doc {r['doc_id']!r} is in language {r['lang']!r}, outside the corpus of "
                f"{what} ({', '.join(doc_langs)}); {other.height} such doc id(s)",
                file=file,
                record=_row_of(rows, "doc_id", r["doc_id"]),
            )


def _row_of(rows: pl.DataFrame, col: str, value: str) -> int:
    return int(rows.filter(pl.col(col) == value)["_row"][0])


def check_fingerprint(
    run_fingerprint: str | None, bench_fingerprint: str, *, file: str | Path | None = None
) -> None:
    """A run made on another benchmark version is an error (its ids may mean other things)."""
    if not run_fingerprint:
        raise XevalError("no benchmark fingerprint recorded; cannot check the version", file=file)
    if run_fingerprint != bench_fingerprint:
        raise XevalError(
            f"the run was made on another benchmark version (fingerprint "
            f"{run_fingerprint[:12]}…, benchmark has {bench_fingerprint[:12]}…); re-run the "
            "model on this benchmark or pass the benchmark it was made on",
            file=file,
        )
