"""Runs made by other tools: every input format, the pooled split, bad input, unavailability."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from xeval.benchmark.schema import load_benchmark
from xeval.benchmark.settings import enumerate_settings
from xeval.cli import main
from xeval.errors import XevalError
from xeval.evaluation.evaluate import EvalConfig
from xeval.evaluation.external import ImportConfig, evaluate_paths, import_runs
from xeval.metrics import rank_run


def pooled_run(bench_dir: Path, k: int, seed: int = 0) -> pl.DataFrame:
    """Every query against the whole corpus at random; the top ``k`` under the tie rule."""
    bench = load_benchmark(bench_dir)
    rng = np.random.default_rng(seed)
    qids, dids = bench.queries["query_id"].to_list(), bench.corpus["doc_id"].to_list()
    full = pl.DataFrame(
        {
            "query_id": np.repeat(qids, len(dids)),
            "doc_id": np.tile(dids, len(qids)),
            "score": rng.random(len(qids) * len(dids)).round(6),
        }
    )
    return rank_run(full).filter(pl.col("rank") <= k)


def write_trec(run: pl.DataFrame, path: Path) -> Path:
    lines = [f"{q} Q0 {d} {r} {s} bm25" for q, d, s, r in run.iter_rows()]
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def write_tsv(run: pl.DataFrame, path: Path, header: bool = True) -> Path:
    lines = ["query_id\tdoc_id\tscore"] if header else []
    lines += [f"{q}\t{d}\t{s}" for q, d, s, _ in run.iter_rows()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _cross_r1(run: pl.DataFrame, bench_dir: Path, setting: str) -> float:
    """R@1 of a cross setting from the pooled run, by hand: keep the doc language, re-rank."""
    bench = load_benchmark(bench_dir)
    s = {x.name: x for x in enumerate_settings(bench)}[setting]
    lang = dict(bench.corpus.select("doc_id", "lang").iter_rows())
    rel = {(q, d) for q, d, _ in s.qrels.iter_rows()}
    hits = []
    for q in s.query_ids:
        rows = [r for r in run.rows() if r[0] == q and lang[r[1]] == s.doc_lang]
        rows.sort(key=lambda r: (r[2], r[1]), reverse=True)
        hits.append(1.0 if rows and (q, rows[0][1]) in rel else 0.0)
    return sum(hits) / len(hits)


@pytest.mark.parametrize("name", ["bm25.trec", "bm25.trec.gz", "bm25.tsv", "bm25.parquet"])
def test_pooled_run_in_every_format(tiny_benchmark_dir: Path, tmp_path: Path, name: str) -> None:
    run = pooled_run(tiny_benchmark_dir, k=8)
    path = tmp_path / name
    if ".trec" in name:
        write_trec(run, path)
    elif name.endswith(".tsv"):
        write_tsv(run, path)
    else:
        run.drop("rank").write_parquet(path)
    cfg = ImportConfig(label="BM25 test", out=tmp_path / "out")
    res = evaluate_paths([path], tiny_benchmark_dir, EvalConfig(), cfg)
    info = json.loads((tmp_path / "out" / "run.json").read_text())
    assert info["exact_ranks"] is False and info["model"]["label"] == "BM25 test"
    assert info["external"]["sources"][0]["setting"] == "pooled"
    assert len(info["external"]["sources"][0]["sha256"]) == 64
    assert res.n_settings == 12  # 3 mono, 6 cross, 3 multi: split by document language
    # a cross setting keeps only its document language, re-ranked by score
    assert res.per_setting.filter(
        (pl.col("setting") == "cross-en-de") & (pl.col("metric") == "R@1")
    )["value"][0] == pytest.approx(_cross_r1(run.drop("rank"), tiny_benchmark_dir, "cross-en-de"))
    # the pooled top-8 stops above many relevant items: no exact ranks, so MAP, LB, QLP and
    # R@100 are unavailable, never computed on the truncated run
    assert res.value("multi", "MAP") is None and res.value("multi", "LB") is None
    assert {"MAP", "LB", "QLP", "R@100"} <= set(res.unavailable_metrics())
    assert res.value("multi", "R@1") is not None
    assert (tmp_path / "out" / "eval" / "per_query.parquet").is_file()


def test_per_setting_folder_and_compare(tiny_benchmark_dir: Path, tmp_path: Path) -> None:
    bench = load_benchmark(tiny_benchmark_dir)
    full = pooled_run(tiny_benchmark_dir, k=10_000)  # every document: complete rankings
    folder = tmp_path / "runs"
    folder.mkdir()
    lang = bench.corpus.select("doc_id", "lang")
    for s in enumerate_settings(bench):
        part = full.join(lang, on="doc_id").filter(
            pl.col("query_id").is_in(s.query_ids) & pl.col("lang").is_in(list(s.doc_langs))
        )
        write_trec(part.select("query_id", "doc_id", "score", "rank"), folder / f"{s.name}.trec")
    root = tmp_path / "systems"
    out = import_runs(tiny_benchmark_dir, [folder], ImportConfig("ext", root / "ext"))
    res = CliRunner().invoke(main, ["evaluate", str(out)])
    assert res.exit_code == 0, res.output
    # complete rankings are their own exact ranks: MAP and LB are available
    assert "unavailable" not in res.output and "from exact ranks" in res.output
    # a second system the same way; compare reads both folders
    import_runs(tiny_benchmark_dir, [folder], ImportConfig("ext2", root / "ext2"))
    assert CliRunner().invoke(main, ["evaluate", str(root / "ext2")]).exit_code == 0
    cmp = CliRunner().invoke(main, ["compare", str(root), "--out", str(tmp_path / "cmp")])
    assert cmp.exit_code == 0, cmp.output


def test_cli_external_run(tiny_benchmark_dir: Path, tmp_path: Path) -> None:
    path = write_trec(pooled_run(tiny_benchmark_dir, k=5), tmp_path / "sys.trec")
    runner = CliRunner()
    res = runner.invoke(main, ["evaluate", str(path)])
    assert res.exit_code == 2 and "pass --benchmark" in res.output
    args = ["evaluate", str(path), "-b", str(tiny_benchmark_dir), "--out", str(tmp_path / "o")]
    res = runner.invoke(main, [*args, "--label", "bm25"])
    assert res.exit_code == 0, res.output
    assert "unavailable" in res.output
    res = runner.invoke(main, args)
    assert res.exit_code == 2 and "--overwrite" in res.output


BAD = [
    ("a.trec", "en-q0 Q0 en-d0 1 0.5\n", r"a.trec, record 1: expected 6 fields"),
    ("a.trec", "en-q0 Q0 en-d0 1 0.5 t\nen-q0 Q0 en-d1 2 high t\n", "record 2: score is not"),
    ("a.trec", "en-q0 Q0 en-d0 1 0.5 t\n\nen-q9 Q0 en-d1 2 0.4 t\n", "line 3: query 'en-q9'"),
    ("a.trec", "en-q0 Q0 en-d0 1 0.5 t\nen-q0 Q0 xx 2 0.4 t\n", "line 2: doc 'xx' is not"),
    ("a.trec", "en-q0 Q0 en-d0 1 0.5 t\nen-q0 Q0 en-d0 2 0.4 t\n", "line 2: duplicate"),
    ("a.trec", "en-q0 Q0 en-d0 1 nan t\n", "line 1: score of"),
    ("a.tsv", "query_id\tdoc_id\tscore\nen-q0\ten-d0\n", r"a.tsv, record line 2: expected 3"),
    ("a.tsv", "en-q0\ten-d0\t0.5\nen-q0\ten-d1\tx\n", "record line 2: score is not"),
    ("a.parquet", b"PAR1 damaged", "a.parquet: unreadable parquet"),
    ("a.json", "{}", "unknown run format"),
    ("mono-en.trec", "de-q0 Q0 en-d0 1 0.5 t\n", "is not part of setting mono-en"),
    ("mono-en.trec", "en-q0 Q0 de-d0 1 0.5 t\n", "outside the corpus of setting mono-en"),
]


@pytest.mark.parametrize(("name", "content", "match"), BAD)
def test_bad_external_runs(
    tiny_benchmark_dir: Path, tmp_path: Path, name: str, content: str | bytes, match: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(XevalError, match=match):
        import_runs(tiny_benchmark_dir, [path], ImportConfig(out=tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_bad_gzip_names_the_line(tiny_benchmark_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "a.trec.gz"
    path.write_bytes(gzip.compress(b"en-q0 Q0 en-d0 1 0.5 t\nen-q0 Q0 en-d1 2\n"))
    with pytest.raises(XevalError, match=r"a.trec.gz, record 2: expected 6 fields"):
        import_runs(tiny_benchmark_dir, [path], ImportConfig(out=tmp_path / "out"))
    (tmp_path / "b.trec.gz").write_bytes(b"not gzip at all")
    with pytest.raises(XevalError, match=r"b\.trec\.gz"):
        import_runs(tiny_benchmark_dir, [tmp_path / "b.trec.gz"], ImportConfig(out=tmp_path / "o"))


def test_pooled_run_must_come_alone(tiny_benchmark_dir: Path, tmp_path: Path) -> None:
    run = pooled_run(tiny_benchmark_dir, k=3)
    a = write_trec(run, tmp_path / "pooled.trec")
    b = write_trec(run.filter(pl.col("query_id") == "x"), tmp_path / "mono-en.trec")
    with pytest.raises(XevalError, match="must come alone"):
        import_runs(tiny_benchmark_dir, [a, b], ImportConfig(out=tmp_path / "out"))
