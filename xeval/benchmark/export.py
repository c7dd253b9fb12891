"""Write a benchmark back out: a BEIR folder and TREC qrels (pooled and per setting)."""

from __future__ import annotations

from pathlib import Path

from xeval.benchmark.schema import Benchmark, load_benchmark, write_trec_qrels
from xeval.benchmark.settings import enumerate_settings
from xeval.errors import XevalError
from xeval.provenance import atomic_dir, provenance, write_json


def write_beir(bench: Benchmark, out: Path) -> None:
    """corpus.jsonl, queries.jsonl (with lang, unit_id) and qrels/test.tsv."""
    corpus = bench.corpus.rename({"doc_id": "_id"})
    extra = [c for c in ("title", "unit_id") if c in corpus.columns]
    corpus.select("_id", "text", "lang", *extra).write_ndjson(out / "corpus.jsonl")
    queries = bench.queries.rename({"query_id": "_id"})
    queries.select(
        "_id", "text", "lang", *(["unit_id"] if "unit_id" in queries.columns else [])
    ).write_ndjson(out / "queries.jsonl")
    (out / "qrels").mkdir(exist_ok=True)
    bench.qrels.sort("query_id", "doc_id").rename(
        {"query_id": "query-id", "doc_id": "corpus-id", "relevance": "score"}
    ).write_csv(out / "qrels" / "test.tsv", separator="\t")


def write_trec(bench: Benchmark, out: Path) -> None:
    """qrels.trec (pooled) and settings/<setting>.qrels for every LaReQA setting."""
    write_trec_qrels(bench.qrels, out / "qrels.trec")
    (out / "settings").mkdir(exist_ok=True)
    for s in enumerate_settings(bench):
        write_trec_qrels(s.qrels, out / "settings" / f"{s.name}.qrels")
    bench.queries.select("query_id", "text").write_csv(
        out / "topics.tsv", separator="\t", include_header=False
    )


def export_benchmark(
    benchmark: str | Path, out: str | Path, *, fmt: str = "both", overwrite: bool = False
) -> Path:
    """Export the benchmark directory ``benchmark`` to ``out`` (``beir``, ``trec`` or ``both``)."""
    if fmt not in ("beir", "trec", "both"):
        raise XevalError(f"unknown export format {fmt!r}")
    bench = load_benchmark(benchmark)
    out = Path(out)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        if fmt in ("beir", "both"):
            write_beir(bench, tmp)
        if fmt in ("trec", "both"):
            write_trec(bench, tmp)
        write_json(
            tmp / "export.json",
            provenance(benchmark=bench.name, fingerprint=bench.fingerprint, format=fmt),
        )
    return out
