"""The canonical benchmark: three Polars tables and a manifest, one directory each.

``DIR/corpus.parquet``   doc_id, lang, text [, title, unit_id]
``DIR/queries.parquet``  query_id, lang, text [, unit_id]
``DIR/qrels.parquet``    query_id, doc_id, relevance (int, > 0 relevant)
``DIR/qrels.trec``       the same qrels as TREC text (``qid 0 docid rel``)
``DIR/benchmark.json``   name, domain, languages, source (+ checksum), licence,
                         builder + version, counts per language, fingerprint, provenance
``DIR/README.md``        the benchmark card (how it was built, caveats)

Qrels are *pooled*: a query is linked to its relevant documents in every language. The
retrieval settings (mono / cross / multi) are views derived from them, see
:mod:`xeval.benchmark.settings`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from xeval.errors import XevalError
from xeval.metrics.trec import write_trec_qrels
from xeval.provenance import atomic_dir, provenance
from xeval.tables import CORPUS, QRELS, QUERIES, TableSpec, check_fields, read_json, write_json
from xeval.text.lang import check_lang

FORMAT_VERSION = 1


def table_digest(df: pl.DataFrame) -> str:
    """Content digest of a table, independent of row order and of the Polars version."""
    cols = sorted(df.columns)
    h = hashlib.sha256(("|".join(cols)).encode())
    srt = df.select(cols).sort(cols)
    for col in cols:
        h.update(b"\x1e" + col.encode())
        for v in srt.get_column(col).cast(pl.String).fill_null("\x00").to_list():
            h.update(v.encode("utf-8"))
            h.update(b"\x1f")
    return h.hexdigest()


@dataclass
class Benchmark:
    """A retrieval benchmark with languages on every query and document."""

    name: str
    corpus: pl.DataFrame
    queries: pl.DataFrame
    qrels: pl.DataFrame
    manifest: dict[str, Any] = field(default_factory=dict)
    card: str = ""
    path: Path | None = None

    # ---- construction -------------------------------------------------------------
    def __post_init__(self) -> None:
        self.corpus = _conform(self.corpus, CORPUS)
        self.queries = _conform(self.queries, QUERIES)
        self.qrels = _conform(self.qrels, QRELS)

    def __repr__(self) -> str:
        return (
            f"Benchmark({self.name!r}, {len(self.languages)} languages, {self.queries.height} "
            f"queries, {self.corpus.height} documents, {self.qrels.height} qrels)"
        )

    @property
    def languages(self) -> list[str]:
        langs = set(self.corpus["lang"].unique().to_list()) | set(
            self.queries["lang"].unique().to_list()
        )
        return sorted(langs)

    @property
    def fingerprint(self) -> str:
        """SHA-256 over the three tables' contents (row order does not matter)."""
        h = hashlib.sha256()
        for df in (self.corpus, self.queries, self.qrels):
            h.update(table_digest(df).encode())
        return h.hexdigest()

    def counts(self) -> dict[str, dict[str, int]]:
        """Queries, documents and qrels per language."""
        q = dict(self.queries.group_by("lang").len().iter_rows())
        d = dict(self.corpus.group_by("lang").len().iter_rows())
        r = dict(
            self.qrels.join(self.queries.select("query_id", "lang"), on="query_id")
            .group_by("lang")
            .len()
            .iter_rows()
        )
        return {
            lang: {"queries": q.get(lang, 0), "documents": d.get(lang, 0), "qrels": r.get(lang, 0)}
            for lang in self.languages
        }

    # ---- validation ---------------------------------------------------------------
    def validate(self, where: str | Path | None = None) -> None:
        """Raise :class:`XevalError` on duplicate ids, dangling qrels, empty or undeclared languages."""
        where = where or self.path or self.name
        for table, key in ((self.corpus, "doc_id"), (self.queries, "query_id")):
            dup = table.filter(pl.col(key).is_duplicated())
            if dup.height:
                raise XevalError(f"duplicate {key} {dup[key][0]!r}", file=where, record=key)
        for table, name in ((self.corpus, "corpus"), (self.queries, "queries")):
            bad = table.filter(pl.col("lang").is_null() | (pl.col("lang").str.strip_chars() == ""))
            if bad.height:
                key = table.columns[0]
                raise XevalError(f"{name} record {bad[key][0]!r} has no language", file=where)
            empty = table.filter(
                pl.col("text").is_null() | (pl.col("text").str.strip_chars() == "")
            )
            if empty.height:
                key = table.columns[0]
                raise XevalError(f"{name} record {empty[key][0]!r} has empty text", file=where)
        declared = self.manifest.get("languages")
        if declared:
            undeclared = sorted(set(self.languages) - {check_lang(x, where) for x in declared})
            if undeclared:
                raise XevalError(f"languages {undeclared} are used but not declared", file=where)
        dq = self.qrels.join(self.queries, on="query_id", how="anti")
        if dq.height:
            raise XevalError(f"qrel names unknown query_id {dq['query_id'][0]!r}", file=where)
        dd = self.qrels.join(self.corpus, on="doc_id", how="anti")
        if dd.height:
            raise XevalError(f"qrel names unknown doc_id {dd['doc_id'][0]!r}", file=where)
        dup = self.qrels.filter(pl.struct("query_id", "doc_id").is_duplicated())
        if dup.height:
            raise XevalError(
                f"duplicate qrel ({dup['query_id'][0]!r}, {dup['doc_id'][0]!r})", file=where
            )
        if self.queries.height == 0 or self.corpus.height == 0:
            raise XevalError("benchmark has no queries or no documents", file=where)
        if self.qrels.filter(pl.col("relevance") > 0).height == 0:
            raise XevalError("benchmark has no relevant qrels", file=where)

    # ---- persistence --------------------------------------------------------------
    def save(self, out: str | Path, *, overwrite: bool = False) -> Path:
        """Validate, then write the benchmark directory atomically."""
        self.validate()
        out = Path(out)
        manifest = {
            "format_version": FORMAT_VERSION,
            **self.manifest,
            "name": self.name,
            "languages": sorted(
                {check_lang(x) for x in self.manifest.get("languages") or self.languages}
            ),
            "counts": {
                "queries": self.queries.height,
                "documents": self.corpus.height,
                "qrels": self.qrels.height,
                "per_language": self.counts(),
            },
            "fingerprint": self.fingerprint,
            "table_digests": {
                t: table_digest(df)
                for t, df in (
                    ("corpus", self.corpus),
                    ("queries", self.queries),
                    ("qrels", self.qrels),
                )
            },
        }
        manifest = provenance(**manifest)
        with atomic_dir(out, overwrite=overwrite) as tmp:
            self.corpus.write_parquet(tmp / "corpus.parquet")
            self.queries.write_parquet(tmp / "queries.parquet")
            self.qrels.write_parquet(tmp / "qrels.parquet")
            write_trec_qrels(self.qrels, tmp / "qrels.trec")
            write_json(tmp / "benchmark.json", manifest)
            (tmp / "README.md").write_text(self.card or _default_card(manifest), encoding="utf-8")
        self.manifest, self.path = manifest, out
        return out


def _conform(df: pl.DataFrame, spec: TableSpec) -> pl.DataFrame:
    df = spec.validate(df)
    if "lang" in df.columns:
        df = df.with_columns(_normalised_langs(df, spec))
    # optional columns are kept only when they carry something (so formats round-trip)
    empty = [
        c
        for c in spec.optional
        if c in df.columns
        and not df.get_column(c).cast(pl.String).fill_null("").str.len_chars().max()
    ]
    return df.drop(empty)


def _normalised_langs(df: pl.DataFrame, spec: TableSpec) -> pl.Series:
    """The ``lang`` column in canonical form; an invalid code names its record."""
    key = spec.key[0]
    mapping = {}
    for raw in df.get_column("lang").unique().to_list():
        if raw is None or not raw.strip():
            continue  # Benchmark.validate reports missing languages with the record
        try:
            mapping[raw] = check_lang(raw)
        except XevalError as exc:
            rec = df.filter(pl.col("lang") == raw).get_column(key)[0]
            raise XevalError(exc.message, file=spec.name, record=f"{key} {rec!r}") from None
    seen: dict[str, str] = {}
    for raw, norm in sorted(mapping.items()):
        if seen.setdefault(norm, raw) != raw:
            raise XevalError(
                f"language codes {seen[norm]!r} and {raw!r} both mean {norm!r}; write one",
                file=spec.name,
                record="lang",
            )
    return df.get_column("lang").replace(mapping)


def _default_card(manifest: dict[str, Any]) -> str:
    lines = [f"# {manifest['name']}", "", manifest.get("description", ""), ""]
    lines += ["| lang | queries | documents | qrels |", "|---|---|---|---|"]
    for lang, c in manifest["counts"]["per_language"].items():
        lines.append(f"| {lang} | {c['queries']} | {c['documents']} | {c['qrels']} |")
    return "\n".join(lines) + "\n"


_MANIFEST_FIELDS: dict[str, type | tuple[type, ...]] = {
    "format_version": int,
    "name": str,
    "languages": list,
    "counts": dict,
    "fingerprint": str,
    "builder": str,
    "sample": (dict, type(None)),
    "source": dict,
}
# (path, size, mtime_ns) of the three tables -> their verified fingerprint
_VERIFIED: dict[tuple[tuple[str, int, int], ...], str] = {}


def read_manifest(path: Path) -> dict[str, Any]:
    """``DIR/benchmark.json`` with its fields' JSON types checked."""
    mpath = path / "benchmark.json"
    manifest = read_json(
        mpath, missing="not a benchmark directory (no benchmark.json)", expect=dict
    )
    check_fields(manifest, _MANIFEST_FIELDS, mpath)
    for i, lang in enumerate(manifest.get("languages") or []):
        check_lang(lang, mpath, f"languages[{i}]")
    return manifest


def _raw_fingerprint(tables: dict[str, pl.DataFrame]) -> str:
    """The fingerprint of the tables as stored (before language codes are normalised)."""
    h = hashlib.sha256()
    for name in ("corpus", "queries", "qrels"):
        h.update(table_digest(tables[name]).encode())
    return h.hexdigest()


def _verify_fingerprint(bench: Benchmark, path: Path, raw: dict[str, pl.DataFrame]) -> None:
    """Refuse tables whose content no longer matches the manifest's fingerprint.

    A benchmark written before language codes were normalised (``zh-Hans``, now
    ``zh_Hans``) matches on its tables as stored and is accepted.
    """
    expected = bench.manifest.get("fingerprint")
    if expected is None:
        raise XevalError("no fingerprint", file=path / "benchmark.json", record="fingerprint")
    stats = []
    for t in (CORPUS, QUERIES, QRELS):
        st = (path / f"{t.name}.parquet").stat()
        stats.append((str((path / f"{t.name}.parquet").resolve()), st.st_size, st.st_mtime_ns))
    key = tuple(stats)
    if _VERIFIED.get(key) == expected:
        return
    if bench.fingerprint != expected and _raw_fingerprint(raw) != expected:
        digests = bench.manifest.get("table_digests") or {}
        changed = [
            f"{t.name}.parquet"
            for t, df in ((CORPUS, bench.corpus), (QUERIES, bench.queries), (QRELS, bench.qrels))
            if digests.get(t.name) != table_digest(df)
        ]
        raise XevalError(
            f"tables changed since the benchmark was built ({', '.join(changed) or 'a table'} "
            "no longer matches benchmark.json's fingerprint); rebuild it",
            file=path / (changed[0] if len(changed) == 1 else "benchmark.json"),
        )
    _VERIFIED[key] = expected


def load_benchmark(path: str | Path, *, validate: bool = True) -> Benchmark:
    """Load a benchmark directory written by :meth:`Benchmark.save`.

    With ``validate`` (the default) the tables are checked against the manifest's
    content fingerprint (once per file version) and for consistency.
    """
    path = Path(path)
    if not path.is_dir():
        raise XevalError(f"benchmark directory {path} does not exist")
    manifest = read_manifest(path)
    tables = {t.name: t.read(path / f"{t.name}.parquet") for t in (CORPUS, QUERIES, QRELS)}
    card_path = path / "README.md"
    bench = Benchmark(
        name=manifest.get("name", path.name),
        manifest=manifest,
        card=card_path.read_text(encoding="utf-8") if card_path.is_file() else "",
        path=path,
        **tables,
    )
    if validate:
        _verify_fingerprint(bench, path, tables)
        bench.validate(path)
    return bench
