"""``xeval evaluate``: run directories built here in the run contract's layout."""

from __future__ import annotations

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
from xeval.evaluation import evaluate_run
from xeval.metrics import rank_run


def make_rundir(
    bench_dir: Path,
    out: Path,
    *,
    seed: int = 0,
    k: int = 100,
    levels: int = 4,
    perfect: bool = False,
    drop: dict[str, list[str]] | None = None,
    all_ranks: bool = False,
) -> tuple[Path, dict[str, pl.DataFrame]]:
    """Score every (query, doc) of every setting at random (coarse grid: many ties), keep the
    top ``k`` per query under the tie rule, and write run.json, runs/ and exact ranks/.

    ``perfect``: relevant documents score above all others. ``drop``: setting -> query ids to
    leave out of that setting's run. ``all_ranks``: write ranks/ for every setting (not only
    multi). Returns the run dir and the full scored tables.
    """
    bench = load_benchmark(bench_dir)
    rng = np.random.default_rng(seed)
    (out / "runs").mkdir(parents=True)
    (out / "ranks").mkdir()
    full_by_setting = {}
    settings = enumerate_settings(bench)
    for s in settings:
        docs = s.corpus(bench)["doc_id"].to_list()
        qids = s.query_ids
        full = pl.DataFrame(
            {
                "query_id": np.repeat(qids, len(docs)),
                "doc_id": np.tile(docs, len(qids)),
                "score": rng.integers(0, levels, len(qids) * len(docs)) / levels,
            }
        )
        if perfect:
            full = full.join(
                s.qrels.select("query_id", "doc_id", rel=pl.lit(True)),
                on=["query_id", "doc_id"],
                how="left",
            ).select(
                "query_id",
                "doc_id",
                score=pl.when(pl.col("rel")).then(2.0).otherwise(pl.col("score")),
            )
        full_by_setting[s.name] = full
        ranked = rank_run(full)
        top = ranked.filter(pl.col("rank") <= k)
        if drop and s.name in drop:
            top = top.filter(~pl.col("query_id").is_in(drop[s.name]))
        top.select("query_id", "doc_id", "score", pl.col("rank").cast(pl.Int32)).write_parquet(
            out / "runs" / f"{s.name}.parquet"
        )
        if s.kind == "multi" or all_ranks:
            ranked.join(s.qrels, on=["query_id", "doc_id"]).select(
                "query_id", "doc_id", pl.col("rank").cast(pl.Int32)
            ).write_parquet(out / "ranks" / f"{s.name}.parquet")
    info = {
        "model": {"name": "random", "label": "random", "path": None, "fingerprint": "0"},
        "benchmark": {"name": bench.name, "path": str(bench_dir), "fingerprint": bench.fingerprint},
        "prompts": {"query": "", "passage": ""},
        "backend": "exact",
        "k": k,
        "settings": [s.name for s in settings],
        "seed": seed,
    }
    (out / "run.json").write_text(json.dumps(info))
    return out, full_by_setting


def test_evaluate_writes_the_contract(tiny_benchmark_dir: Path, tmp_path: Path) -> None:
    rundir, full = make_rundir(tiny_benchmark_dir, tmp_path / "run", seed=1)
    res = evaluate_run(rundir)
    ev = rundir / "eval"
    for name in (
        "per_query.parquet",
        "per_query.csv",
        "per_setting.parquet",
        "per_setting.csv",
        "per_setting.md",
        "summary.parquet",
        "summary.csv",
        "summary.md",
        "matrix.md",
        "eval.json",
        "matrix/MRR@10.csv",
        "matrix/LB.csv",
    ):
        assert (ev / name).is_file(), name
    pq = pl.read_parquet(ev / "per_query.parquet")
    assert pq.columns == [
        "setting",
        "kind",
        "query_lang",
        "doc_lang",
        "query_id",
        "metric",
        "value",
    ]
    assert pq.schema["value"] == pl.Float64
    ps = pl.read_parquet(ev / "per_setting.parquet")
    assert ps.columns == [
        "setting",
        "kind",
        "query_lang",
        "doc_lang",
        "metric",
        "value",
        "n_queries",
        "n_missing",
    ]
    # tiny: 3 langs -> 3 mono, 6 cross, 3 multi; 10 metrics (LB and QLP on multi only)
    assert ps["setting"].n_unique() == 12
    assert set(ps.filter(pl.col("metric") == "LB")["kind"]) == {"multi"}
    assert set(ps.filter(pl.col("metric") == "QLP")["kind"]) == {"multi"}
    assert ps.filter(~pl.col("metric").is_in(["LB", "QLP"])).height == 12 * 8
    assert (ps["n_queries"] == 6).all() and (ps["n_missing"] == 0).all()
    summary = pl.read_parquet(ev / "summary.parquet")
    assert summary.filter(pl.col("kind") == "cross")["n_settings"].to_list() == [6] * 8
    # summary = macro-average of the per-setting values
    cross_map = ps.filter((pl.col("kind") == "cross") & (pl.col("metric") == "MAP"))["value"]
    assert res.value("cross", "MAP") == pytest.approx(cross_map.mean())
    # matrix: rows = query languages, columns = doc languages then "all"
    mat = pl.read_csv(ev / "matrix" / "MRR@10.csv")
    assert mat.columns == ["query_lang", "de", "en", "fr", "all"]
    en_de = ps.filter((pl.col("setting") == "cross-en-de") & (pl.col("metric") == "MRR@10"))
    assert mat.filter(pl.col("query_lang") == "en")["de"][0] == pytest.approx(en_de["value"][0])
    info = json.loads((ev / "eval.json").read_text())
    assert info["tie_rule"].startswith("score descending, then doc_id descending")
    assert info["run"]["model"]["name"] == "random" and "versions" in info
    assert info["engine"] == "polars" and "MAP@20" in info["metrics"]
    assert "| mono |" in (ev / "summary.md").read_text()
    # every value matches a direct computation from the full scores: MRR@10 of one setting
    s_full = rank_run(full["mono-en"])
    qrels = load_benchmark(tiny_benchmark_dir).qrels
    first = s_full.join(qrels, on=["query_id", "doc_id"]).filter(
        pl.col("doc_id").str.starts_with("en")
    )
    expect = first.group_by("query_id").agg((1 / pl.col("rank").min()).alias("rr"))
    got = pq.filter((pl.col("setting") == "mono-en") & (pl.col("metric") == "MRR@10"))
    assert dict(got.select("query_id", "value").iter_rows()) == pytest.approx(
        dict(expect.iter_rows())
    )


def test_language_bias_from_full_scores(tiny_benchmark_dir: Path, tmp_path: Path) -> None:
    """LB per query = worst minus best rank of its relevant items, recomputed in plain Python."""
    rundir, full = make_rundir(tiny_benchmark_dir, tmp_path / "run", seed=2, k=5)
    res = evaluate_run(rundir, metrics=["LB", "MRR@10"])
    qrels = load_benchmark(tiny_benchmark_dir).qrels
    rel = {}
    for q, d, _ in qrels.iter_rows():
        rel.setdefault(q, set()).add(d)
    per_lang = {}
    for lang in ("de", "en", "fr"):
        table = full[f"multi-{lang}"]
        dists = []
        for q in table["query_id"].unique().to_list():
            rows = table.filter(pl.col("query_id") == q).rows()
            order = sorted(rows, key=lambda r: (r[2], r[1]), reverse=True)  # score, doc_id desc
            ranks = [i + 1 for i, r in enumerate(order) if r[1] in rel[q]]
            dists.append(max(ranks) - min(ranks))
        per_lang[lang] = sum(dists) / len(dists)
    ps = res.per_setting.filter(pl.col("metric") == "LB")
    assert dict(ps.select("query_lang", "value").iter_rows()) == pytest.approx(per_lang)
    assert res.value("multi", "LB") == pytest.approx(sum(per_lang.values()) / 3)
    assert res.value("mono", "LB") is None
    # the runs hold 5 docs per query, fewer than the MRR@10 cut-off: multi settings take it
    # from their exact ranks; mono and cross (no ranks/ here) report it unavailable, noted
    assert res.value("mono", "MRR@10") is None and res.value("multi", "MRR@10") is not None
    assert res.sources["multi"]["MRR@10"] == {"exact": 3}
    assert "MRR@10" in res.unavailable_metrics()
    assert any("MRR@10 need ranks below" in n for n in res.notes)


def test_perfect_run_and_identity(tiny_benchmark_dir: Path, tmp_path: Path) -> None:
    rundir, _ = make_rundir(tiny_benchmark_dir, tmp_path / "run", perfect=True)
    res = evaluate_run(rundir)
    for kind in ("mono", "cross", "multi"):
        for m in ("MRR@10", "R@10", "nDCG@10", "MAP", "MAP@20"):
            assert res.value(kind, m) == pytest.approx(1.0), (kind, m)
    assert res.value("multi", "LB") == 2.0  # 3 relevant items take ranks 1..3
    assert res.value("multi", "R@1") == pytest.approx(1 / 3)


def test_map_equals_mrr_in_mono_and_cross(tiny_benchmark_dir: Path, tmp_path: Path) -> None:
    rundir, _ = make_rundir(tiny_benchmark_dir, tmp_path / "run", seed=3)
    res = evaluate_run(rundir, metrics="MAP,MRR")
    wide = res.per_query.pivot(on="metric", index=["setting", "kind", "query_id"], values="value")
    mc = wide.filter(pl.col("kind") != "multi")
    assert mc.height == 9 * 6
    assert (mc["MAP"] - mc["MRR"]).abs().max() < 1e-15
    assert mc["MRR"].min() < 1.0  # not trivially 1
    multi = wide.filter(pl.col("kind") == "multi")
    assert (multi["MAP"] != multi["MRR"]).any()  # three relevant items: no identity


@pytest.mark.data
def test_map_equals_mrr_on_xquad_r(shared_data: Path, tmp_path: Path) -> None:
    """The identity on the real XQuAD-R structure (10 sampled question units, random scores)."""
    from xeval.benchmark.registry import build_benchmark

    bench_dir = build_benchmark("xquad-r", tmp_path / "xq", sample_queries=10)
    # MAP and MRR (no cut-off) look below k = 100: exact ranks for every setting
    rundir, _ = make_rundir(bench_dir, tmp_path / "run", levels=50, all_ranks=True)
    res = evaluate_run(rundir, metrics="MAP MRR@10 MAP@20 MRR LB")
    assert res.per_setting["setting"].n_unique() == 11 + 110 + 11
    wide = res.per_query.filter(pl.col("kind") != "multi").pivot(
        on="metric", index=["setting", "query_id"], values="value"
    )
    assert wide.height == 121 * 10
    assert (wide["MAP"] - wide["MRR"]).abs().max() < 1e-15
    for kind in ("mono", "cross"):
        assert res.value(kind, "MAP") == pytest.approx(res.value(kind, "MRR"), abs=1e-12)
    assert res.value("multi", "LB") > 100  # random scores over ~13k pooled sentences


def test_missing_queries_score_zero_and_are_counted(
    tiny_benchmark_dir: Path, tmp_path: Path
) -> None:
    rundir, _ = make_rundir(
        tiny_benchmark_dir, tmp_path / "run", perfect=True, drop={"cross-en-de": ["en-q0", "en-q1"]}
    )
    res = evaluate_run(rundir, metrics="MRR@10,MAP")
    row = res.per_setting.filter(pl.col("setting") == "cross-en-de")
    assert row["n_missing"].to_list() == [2, 2] and row["n_queries"].to_list() == [6, 6]
    assert row["value"].to_list() == pytest.approx([4 / 6, 4 / 6])
    zero = res.per_query.filter(
        (pl.col("setting") == "cross-en-de") & pl.col("query_id").is_in(["en-q0", "en-q1"])
    )
    assert zero.height == 4 and (zero["value"] == 0).all()
    assert any("2 (setting, query) pairs are missing" in n for n in res.notes)
    assert res.summary_table.filter(pl.col("kind") == "cross")["n_missing"].to_list() == [2, 2]


def _rewrite(path: Path, df: pl.DataFrame) -> None:
    df.write_parquet(path)


def test_bad_run_directories(tiny_benchmark_dir: Path, tmp_path: Path) -> None:
    rundir, _ = make_rundir(tiny_benchmark_dir, tmp_path / "run")
    runs = rundir / "runs"
    # another benchmark version
    info = json.loads((rundir / "run.json").read_text())
    (rundir / "run.json").write_text(
        json.dumps({**info, "benchmark": {**info["benchmark"], "fingerprint": "ab" * 32}})
    )
    with pytest.raises(XevalError, match="another benchmark version"):
        evaluate_run(rundir)
    (rundir / "run.json").write_text(json.dumps(info))
    # NaN score, named with its file and row
    good = pl.read_parquet(runs / "mono-de.parquet")
    _rewrite(
        runs / "mono-de.parquet",
        good.with_columns(
            score=pl.when(pl.int_range(pl.len()) == 3).then(float("nan")).otherwise("score")
        ),
    )
    with pytest.raises(XevalError, match=r"mono-de.parquet, record 4: .*finite"):
        evaluate_run(rundir)
    # duplicate line
    _rewrite(runs / "mono-de.parquet", pl.concat([good, good.tail(1)]))
    with pytest.raises(XevalError, match="duplicate"):
        evaluate_run(rundir)
    # a doc of the wrong language for the setting
    _rewrite(
        runs / "mono-de.parquet",
        good.with_columns(
            doc_id=pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("en-d0")).otherwise("doc_id")
        ),
    )
    with pytest.raises(XevalError, match="outside the corpus of setting mono-de"):
        evaluate_run(rundir)
    # empty run
    _rewrite(runs / "mono-de.parquet", good.head(0))
    with pytest.raises(XevalError, match="empty"):
        evaluate_run(rundir)
    _rewrite(runs / "mono-de.parquet", good)
    # missing run file, unknown setting
    (runs / "cross-de-en.parquet").rename(tmp_path / "moved.parquet")
    with pytest.raises(XevalError, match=r"cross-de-en.parquet: missing file"):
        evaluate_run(rundir)
    (tmp_path / "moved.parquet").rename(runs / "cross-de-en.parquet")
    (rundir / "run.json").write_text(json.dumps({**info, "settings": ["mono-xx"]}))
    with pytest.raises(XevalError, match="not settings of benchmark"):
        evaluate_run(rundir)
    (rundir / "run.json").write_text(json.dumps(info))
    # missing ranks: these runs list every document, so they are their own exact ranking
    (rundir / "ranks" / "multi-fr.parquet").unlink()
    res = evaluate_run(rundir, write=False, metrics=["LB"])
    assert res.sources["multi"]["LB"] == {"exact": 3} and not res.notes
    # a damaged ranks file is an error naming it
    (rundir / "ranks" / "multi-fr.parquet").write_bytes(b"PAR1 not parquet")
    with pytest.raises(XevalError, match=r"multi-fr.parquet: unreadable parquet"):
        evaluate_run(rundir, metrics=["LB"])
    with pytest.raises(XevalError, match="unknown engine"):
        evaluate_run(rundir, engine="nope")
    with pytest.raises(XevalError, match=r"no run\.json"):
        evaluate_run(tmp_path)


def test_benchmark_path_and_override(tiny_benchmark_dir: Path, tmp_path: Path) -> None:
    rundir, _ = make_rundir(tiny_benchmark_dir, tmp_path / "run")
    moved = tmp_path / "elsewhere"
    tiny_benchmark_dir.rename(moved)
    with pytest.raises(XevalError, match="pass --benchmark"):
        evaluate_run(rundir)
    res = evaluate_run(rundir, benchmark=moved, metrics="R@1")
    assert res.info["benchmark"]["path"] == str(moved)


def test_cli_evaluate(tiny_benchmark_dir: Path, tmp_path: Path) -> None:
    rundir, _ = make_rundir(tiny_benchmark_dir, tmp_path / "run", perfect=True)
    runner = CliRunner()
    out = runner.invoke(main, ["evaluate", str(rundir)])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].split() == [
        "kind",
        "settings",
        "MRR@10",
        "R@1",
        "R@5",
        "R@10",
        "R@100",
        "nDCG@10",
        "MAP",
        "MAP@20",
        "LB",
        "QLP",
    ]
    assert lines[2].split()[:3] == ["mono", "3", "1.0000"]
    assert lines[4].split()[-2] == "2.0"
    # fewer metrics than the eval/ already there: refused, not silently replaced
    out = runner.invoke(main, ["evaluate", str(rundir), "-m", "MRR@10,MAP", "-m", "LB"])
    assert out.exit_code == 2 and "pass --replace" in out.output
    assert "QLP" in json.loads((rundir / "eval" / "eval.json").read_text())["metrics"]
    out = runner.invoke(
        main, ["evaluate", str(rundir), "-m", "MRR@10,MAP", "-m", "LB", "--replace"]
    )
    assert out.exit_code == 0 and out.output.splitlines()[0].split()[2:] == ["MRR@10", "MAP", "LB"]
    out = runner.invoke(main, ["evaluate", str(rundir), "-m", "bogus@3"])
    assert out.exit_code == 2 and "unknown metric 'bogus@3'" in out.output


# ---- exact ranks below the run's cut-off ----------------------------------------------------
def _brute_force(full: pl.DataFrame, qrels: pl.DataFrame) -> dict[str, dict[str, float]]:
    """Full-pool AP, R@5 and RR@10 per query by sorting every document in Python."""
    rel: dict[str, set[str]] = {}
    for q, d, r in qrels.iter_rows():
        if r > 0:
            rel.setdefault(q, set()).add(d)
    out: dict[str, dict[str, float]] = {"MAP": {}, "R@5": {}, "MRR@10": {}}
    for q, rows in full.group_by("query_id"):
        order = sorted(rows.rows(), key=lambda r: (r[2], r[1]), reverse=True)
        ranks = [i + 1 for i, r in enumerate(order) if r[1] in rel[q[0]]]
        out["MAP"][q[0]] = sum((j + 1) / rk for j, rk in enumerate(ranks)) / len(rel[q[0]])
        out["R@5"][q[0]] = sum(rk <= 5 for rk in ranks) / len(rel[q[0]])
        out["MRR@10"][q[0]] = 1 / ranks[0] if ranks[0] <= 10 else 0.0
    return out


def test_exact_full_pool_metrics_below_the_cut_off(
    tiny_benchmark_dir: Path, tmp_path: Path
) -> None:
    # runs keep 2 documents per query; MAP, R@5 and MRR@10 look deeper: exact ranks give them
    rundir, full = make_rundir(tiny_benchmark_dir, tmp_path / "run", seed=3, k=2, all_ranks=True)
    res = evaluate_run(rundir, metrics="MAP,MAP_trunc,R@5,MRR@10,R@1")
    settings = {s.name: s for s in enumerate_settings(load_benchmark(tiny_benchmark_dir))}
    pq = res.per_query
    for name, table in full.items():
        truth = _brute_force(table, settings[name].qrels)
        for metric, values in truth.items():
            got = dict(
                pq.filter((pl.col("setting") == name) & (pl.col("metric") == metric))
                .select("query_id", "value")
                .iter_rows()
            )
            assert got == pytest.approx(values), (name, metric)
    for kind in ("mono", "cross", "multi"):
        assert res.sources[kind]["MAP"] == {"exact": len([s for s in full if s.startswith(kind)])}
        assert res.sources[kind]["R@1"] == {"run": len([s for s in full if s.startswith(kind)])}
        assert set(res.sources[kind]["MAP_trunc"]) == {"run"}
    # the truncated value is a lower bound, strictly lower where relevant items fall below 2
    assert res.value("multi", "MAP_trunc") < res.value("multi", "MAP")
    info = json.loads((rundir / "eval" / "eval.json").read_text())
    assert info["exact_ranks"]["from_exact_ranks"] == ["MAP", "R@5", "MRR@10"]
    assert "MAP" in (rundir / "eval" / "summary.md").read_text().split("exact ranks")[1]
    # without exact ranks (an external or fused run), the same metrics are unavailable
    info_run = json.loads((rundir / "run.json").read_text())
    (rundir / "run.json").write_text(json.dumps({**info_run, "exact_ranks": False}))
    res = evaluate_run(rundir, metrics="MAP,MAP_trunc,R@5,R@1", replace=True)
    assert res.value("multi", "MAP") is None and res.value("cross", "R@5") is None
    assert res.value("multi", "MAP_trunc") is not None and res.value("mono", "R@1") is not None
    assert res.unavailable_metrics() == ["MAP", "R@5"]
    ps = pl.read_parquet(rundir / "eval" / "per_setting.parquet")
    assert ps.filter(pl.col("metric") == "MAP")["value"].null_count() == len(full)
    assert "unavailable" in res.summary() and "—" in res.console_table()
