"""xeval compare: tests and corrections against scipy / hand values, loading, seeds, refusals.

Evaluated run folders are generated directly in the contract layout (run.json +
eval/per_query.parquet) with synthetic per-query values whose differences are known.
"""

from __future__ import annotations

import itertools
import json
import zlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from scipy import stats as sps

from xeval.compare import CompareOptions, compare_folder
from xeval.compare import stats as xs
from xeval.compare.load import check_comparable, group_seeds, load_runs
from xeval.errors import XevalError

LANGS = ("en", "de", "fr")
N_Q = 40


def settings(langs: tuple[str, ...] = LANGS) -> list[tuple[str, str, str, str]]:
    """(setting, kind, query_lang, doc_lang) as xeval names them."""
    out = [(f"mono-{q}", "mono", q, q) for q in langs]
    out += [(f"cross-{q}-{d}", "cross", q, d) for q in langs for d in langs if q != d]
    out += [(f"multi-{q}", "multi", q, "all") for q in langs]
    return out


def per_query_frame(quality: float, seed: int, n_q: int = N_Q) -> pl.DataFrame:
    """Per-query MRR@10, R@10 and LB drawn from a model of given quality (0..1).

    The rank of the relevant item is geometric with success probability ``quality``; the
    same underlying query difficulty (seeded by query, not by model) is shared by every
    model, so models are paired as real runs are.
    """
    rows = []
    for setting, kind, ql, dl in settings():
        for i in range(n_q):
            qid = f"{ql}-q{i}"
            key = zlib.crc32(setting.encode())
            difficulty = np.random.default_rng([key, i]).random()
            rng = np.random.default_rng([seed, key, i])
            p = float(np.clip(quality * (1.2 - 0.6 * difficulty), 0.02, 0.98))
            rank = int(rng.geometric(p))
            rows.append((setting, kind, ql, dl, qid, "MRR@10", 1.0 / rank if rank <= 10 else 0.0))
            rows.append((setting, kind, ql, dl, qid, "R@10", 1.0 if rank <= 10 else 0.0))
            if kind == "multi":
                lb = float(rng.integers(0, int(60 * (1.1 - quality)) + 1))
                rows.append((setting, kind, ql, dl, qid, "LB", lb))
    return pl.DataFrame(
        rows,
        schema=["setting", "kind", "query_lang", "doc_lang", "query_id", "metric", "value"],
        orient="row",
    )


def write_run(
    root: Path,
    name: str,
    label: str,
    quality: float,
    seed: int = 0,
    bench_fp: str = "bench-fp-1",
    frame: pl.DataFrame | None = None,
) -> Path:
    """One evaluated run folder in the contract layout."""
    d = root / name
    (d / "eval").mkdir(parents=True)
    meta = {
        "created": "2026-01-01T00:00:00+00:00",
        "command": f"xeval run --out {name}",
        "model": {
            "name": label,
            "label": label,
            "path": f"/models/{name}",
            "fingerprint": f"model-{name}",
        },
        "benchmark": {"name": "synthetic", "path": "/bench", "fingerprint": bench_fp},
        "prompts": {"query": "query: ", "passage": "passage: "},
        "backend": "exact",
        "k": 100,
        "settings": [s[0] for s in settings()],
        "seed": seed,
    }
    (d / "run.json").write_text(json.dumps(meta))
    df = frame if frame is not None else per_query_frame(quality, seed)
    df.write_parquet(d / "eval" / "per_query.parquet")
    return d


def make_runs(root: Path) -> Path:
    """xx (weak), xy (medium), hybrid (strong, three seeds)."""
    write_run(root, "xx", "xx", 0.35, seed=0)
    write_run(root, "xy", "xy", 0.45, seed=0)
    for s in range(3):
        write_run(root, f"hybrid-seed{s}", "hybrid", 0.7, seed=s)
    return root


# --- statistics against scipy and hand values ----------------------------------------------

A = np.array([0.2, 0.5, 0.1, 0.9, 0.4, 0.3, 0.8, 0.6, 0.05, 0.7, 0.35, 0.45])
B = A + np.array([0.1, 0.05, -0.02, 0.2, 0.0, 0.15, 0.12, -0.05, 0.3, 0.1, 0.07, 0.01])


def test_paired_t_matches_scipy_and_hand_value() -> None:
    res = xs.paired_t(A, B)
    ref = sps.ttest_rel(B, A)
    assert res.p_value == pytest.approx(ref.pvalue, abs=1e-15)
    assert res.statistic == pytest.approx(ref.statistic)
    # differences 1..5: t = 3 / (sqrt(2.5)/sqrt(5)) = 4.2426, two-sided p (df 4) = 0.013236
    r = xs.paired_t(np.zeros(5), np.arange(1.0, 6.0))
    assert r.statistic == pytest.approx(4.242640687, rel=1e-9)
    assert r.p_value == pytest.approx(0.0132356, rel=1e-4)
    assert xs.paired_t(A, A).p_value == 1.0


def test_wilcoxon_matches_scipy() -> None:
    res = xs.wilcoxon(A, B)
    ref = sps.wilcoxon(B - A)
    assert res.p_value == pytest.approx(ref.pvalue, abs=1e-15)
    assert res.statistic == pytest.approx(ref.statistic)
    assert xs.wilcoxon(A, A).p_value == 1.0


def _exact_fisher(a: np.ndarray, b: np.ndarray) -> float:
    """Brute force over every swap of every pair (zeros included): the definition."""
    d = b - a
    obs = abs(d.mean())
    hits = sum(
        abs((d * np.array(s)).mean()) >= obs - 1e-12
        for s in itertools.product((1, -1), repeat=d.size)
    )
    return hits / 2**d.size


def test_fisher_exact_equals_brute_force_and_mc_is_close() -> None:
    a, b = A[:11], B[:11]  # one zero difference: dropping it must not change p
    brute = _exact_fisher(a, b)
    exact = xs.fisher_randomization(a, b, exact=True)
    assert exact.p_value == pytest.approx(brute, abs=1e-12)
    assert "exact" in exact.method
    rng = np.random.default_rng(7)
    a16 = rng.random(16)
    b16 = a16 + rng.normal(0.08, 0.25, 16)
    ref = xs.fisher_randomization(a16, b16, exact=True).p_value  # 2^16 swaps
    assert 0.01 < ref < 0.9
    mc = xs.fisher_randomization(a16, b16, n_permutations=20_000, seed=1, exact=False)
    assert abs(mc.p_value - ref) < 4 * np.sqrt(ref * (1 - ref) / 20_000) + 1e-4
    again = xs.fisher_randomization(a16, b16, n_permutations=20_000, seed=1, exact=False)
    assert again.p_value == mc.p_value  # seeded: reproducible
    assert xs.fisher_randomization(a16, a16).p_value == 1.0
    # auto: exact when 2^m <= budget
    assert "exact" in xs.fisher_randomization(a16, b16, n_permutations=2**16).method


def test_tukey_matches_scipy() -> None:
    c = B + 0.05
    stat, p = xs.tukey_hsd([A, B, c])
    ref = sps.tukey_hsd(A, B, c)
    np.testing.assert_allclose(p, ref.pvalue, rtol=1e-12)
    np.testing.assert_allclose(stat, ref.statistic, rtol=1e-12)


def test_corrections_known_values() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    np.testing.assert_allclose(xs.adjust(p, "holm"), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(xs.adjust(p, "bonferroni"), [0.04, 0.16, 0.12, 0.02])
    np.testing.assert_allclose(xs.adjust(p, "bh"), [0.02, 0.04, 0.04, 0.02])
    np.testing.assert_allclose(xs.adjust(p, "none"), p)
    # Holm is monotone in the sorted order and capped at 1
    np.testing.assert_allclose(xs.adjust([0.5, 0.6, 0.01], "holm"), [1.0, 1.0, 0.03])
    with pytest.raises(ValueError):
        xs.adjust([0.1, float("nan")], "holm")


def test_corrections_match_statsmodels_if_installed() -> None:
    multi = pytest.importorskip(
        "statsmodels.stats.multitest", reason="statsmodels not installed (a dev dependency)"
    )
    p = np.random.default_rng(3).random(25) ** 3
    for ours, theirs in (("holm", "holm"), ("bonferroni", "bonferroni"), ("bh", "fdr_bh")):
        np.testing.assert_allclose(xs.adjust(p, ours), multi.multipletests(p, method=theirs)[1])


def test_effect_size_and_win_tie_loss() -> None:
    mean, lo, hi = xs.mean_difference_ci(np.zeros(5), np.arange(1.0, 6.0))
    # 3 ± t(0.975, 4) * sqrt(2.5)/sqrt(5) = 3 ± 2.776445 * 0.707107
    assert mean == 3.0
    assert lo == pytest.approx(3 - 1.963243, abs=1e-6)
    assert hi == pytest.approx(3 + 1.963243, abs=1e-6)
    assert xs.win_tie_loss(A, B) == (9, 1, 2)
    assert xs.win_tie_loss(A, B, higher_is_better=False) == (2, 1, 9)


@pytest.mark.slow
def test_scipy_tests_agree_with_ranx() -> None:
    """ranx's student / tukey p-values equal ours; its fisher agrees within MC error."""
    from ranx import Qrels, Run, compare

    rng = np.random.default_rng(11)
    n = 60
    ranks = {"a": rng.integers(1, 8, n), "b": rng.integers(1, 6, n), "c": rng.integers(1, 5, n)}
    qrels = Qrels({f"q{i}": {"rel": 1} for i in range(n)})
    runs = []
    for name, rk in ranks.items():
        run = {}
        for i in range(n):
            docs = {f"x{j}": 100.0 - j for j in range(1, 10)}
            docs["rel"] = 100.0 - rk[i] + 0.5  # lands at rank rk[i]
            run[f"q{i}"] = docs
        runs.append(Run(run, name=name))
    rr = {k: 1.0 / v for k, v in ranks.items()}
    for test, ranx_name in (("paired-t", "student"), ("tukey", "tukey"), ("fisher", "fisher")):
        rep = compare(qrels, runs, ["mrr@10"], stat_test=ranx_name, n_permutations=4000, max_p=0.05)
        tk = xs.tukey_hsd([rr["a"], rr["b"], rr["c"]])[1]
        for (x, y), (i, j) in zip(
            (("a", "b"), ("a", "c"), ("b", "c")), ((0, 1), (0, 2), (1, 2)), strict=True
        ):
            p_ranx = rep.comparisons[x, y]["mrr@10"]["p_value"]
            if test == "paired-t":
                assert xs.paired_t(rr[x], rr[y]).p_value == pytest.approx(p_ranx, rel=1e-12)
            elif test == "tukey":
                assert tk[i, j] == pytest.approx(p_ranx, rel=1e-12)
            else:
                ours = xs.fisher_randomization(rr[x], rr[y], 20_000, seed=0).p_value
                assert abs(ours - p_ranx) < 0.03 + 4 * np.sqrt(ours * (1 - ours) / 4000)


# --- loading, comparability, seeds ---------------------------------------------------------


def test_seed_grouping(tmp_path: Path) -> None:
    runs = load_runs(make_runs(tmp_path / "runs"), ["MRR@10", "LB"])
    check_comparable(runs, ["MRR@10"])
    systems = {s.name: s for s in group_seeds(runs)}
    assert sorted(systems) == ["hybrid", "xx", "xy"]
    hyb = systems["hybrid"]
    assert hyb.n_runs == 3 and sorted(hyb.seeds) == [0, 1, 2]
    # the system's per-query value is the mean over its seeds
    key = ["setting", "query_id", "metric"]
    joined = pl.concat([r.per_query for r in hyb.runs]).group_by(key).agg(pl.col("value").mean())
    got = hyb.per_query.join(joined, on=key, suffix="_ref")
    assert got.height == hyb.runs[0].per_query.height
    np.testing.assert_allclose(got["value"], got["value_ref"])


def test_paired_t_counts_the_seeds(tmp_path: Path) -> None:
    """Replicas that disagree widely (seed qualities 0.3 / 0.6 / 0.45) make the paired t
    seed-aware: a larger p and a wider interval than the unit-only test on seed means."""
    root = tmp_path / "runs"
    write_run(root, "xx", "xx", 0.35, seed=0)
    write_run(root, "xy", "xy", 0.45, seed=0)
    for s, q in enumerate((0.3, 0.6, 0.45)):
        write_run(root, f"hybrid-seed{s}", "hybrid", q, seed=s)
    opts = CompareOptions(metrics=("MRR@10",), unit="query", correction="none")
    res = compare_folder(root, opts).results.filter(pl.col("kind") == "mono")
    with_hybrid = (pl.col("system_a") == "hybrid") | (pl.col("system_b") == "hybrid")
    plain = res.filter(~with_hybrid).row(0, named=True)
    assert plain["method"].startswith("t, df=")  # one seed each: the ordinary paired t
    for r in res.filter(with_hybrid).iter_rows(named=True):
        assert r["method"].startswith("seed-aware t (3 v 1 seeds")
        other = r["system_b"] if r["system_a"] == "hybrid" else r["system_a"]
        unit_only = xs.mean_difference_ci(*_unit_columns(root, other))
        assert r["ci_high"] - r["ci_low"] > unit_only[2] - unit_only[1]
        boot_units = xs.bootstrap_ci(*_unit_columns(root, other), 9999, 0)
        assert r["boot_high"] - r["boot_low"] > 1.5 * (boot_units[1] - boot_units[0])


def test_the_bootstrap_counts_the_seeds_whatever_the_test(tmp_path: Path) -> None:
    """With seed replicas the bootstrap interval resamples seeds as well as units, for
    every test (the test itself stays unit-only but for paired t)."""
    root = tmp_path / "runs"
    write_run(root, "xx", "xx", 0.35, seed=0)
    for s, q in enumerate((0.3, 0.6, 0.45)):
        write_run(root, f"hybrid-seed{s}", "hybrid", q, seed=s)
    opts = CompareOptions(metrics=("MRR@10",), unit="query", correction="none", test="wilcoxon")
    r = compare_folder(root, opts).results.filter(pl.col("kind") == "mono").row(0, named=True)
    assert r["method"] == "signed-rank"
    boot_units = xs.bootstrap_ci(*_unit_columns(root, "xx"), 9999, 0)
    assert r["boot_high"] - r["boot_low"] > 1.5 * (boot_units[1] - boot_units[0])


def _unit_columns(root: Path, a: str) -> tuple[np.ndarray, np.ndarray]:
    """Seed-averaged per-query MRR@10 (mono) of system ``a`` and of hybrid."""
    systems = {s.name: s for s in group_seeds(load_runs(root, ["MRR@10"]))}

    def col(name: str) -> np.ndarray:
        df = systems[name].per_query.filter(pl.col("kind") == "mono")
        return (
            df.group_by("query_id").agg(pl.col("value").mean()).sort("query_id")["value"].to_numpy()
        )

    return col(a), col("hybrid")


def test_same_seed_twice_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    f = per_query_frame(0.5, 0)
    write_run(root, "a", "m", 0.5, seed=0, frame=f)
    d = write_run(root, "b", "m", 0.5, seed=0, frame=f)
    meta = json.loads((d / "run.json").read_text())
    meta["model"]["fingerprint"] = "model-a"
    (d / "run.json").write_text(json.dumps(meta))
    with pytest.raises(XevalError, match="same seed"):
        group_seeds(load_runs(root))


def test_model_card_seed_groups_and_same_seed_models_stay_apart(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for k in (0, 1):  # two fine-tunes with training seeds 0 and 1, run with run seed 0
        d = write_run(root, f"ft{k}", "e5-ft-hybrid", 0.6, seed=0, frame=per_query_frame(0.6, k))
        card_dir = tmp_path / "models" / f"ft{k}"
        card_dir.mkdir(parents=True)
        card = {"name": "e5-ft-hybrid", "made": {"config": {"seed": k, "strategy": "hybrid"}}}
        (card_dir / "xeval-model.json").write_text(json.dumps(card))
        meta = json.loads((d / "run.json").read_text())
        meta["model"]["path"] = str(card_dir)
        (d / "run.json").write_text(json.dumps(meta))
    write_run(root, "base-a", "e5", 0.5, seed=0)  # same label and seed, no card: not replicas
    write_run(root, "base-b", "e5", 0.5, seed=0, frame=per_query_frame(0.5, 3))
    systems = {s.name: s for s in group_seeds(load_runs(root))}
    assert sorted(systems) == ["e5 [model model-base-a]", "e5 [model model-base-b]", "e5-ft-hybrid"]
    ft = systems["e5-ft-hybrid"]
    assert ft.n_runs == 2 and sorted(r.model_seed for r in ft.runs) == [0, 1]


def test_different_benchmark_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    write_run(root, "a", "a", 0.5)
    write_run(root, "b", "b", 0.6, bench_fp="bench-fp-2")
    with pytest.raises(XevalError, match="different benchmarks"):
        compare_folder(root, CompareOptions())


def test_different_query_sets_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    write_run(root, "a", "a", 0.5)
    f = per_query_frame(0.6, 0).filter(
        ~((pl.col("setting") == "cross-en-de") & (pl.col("query_id") == "en-q3"))
    )
    write_run(root, "b", "b", 0.6, frame=f)
    with pytest.raises(XevalError, match=r"different query sets in setting cross-en-de.*en-q3"):
        compare_folder(root, CompareOptions())
    g = per_query_frame(0.6, 0).filter(pl.col("setting") != "mono-fr")
    write_run(root, "c", "c", 0.6, frame=g)
    (root / "b" / "run.json").unlink()
    with pytest.raises(XevalError, match=r"different settings.*mono-fr"):
        compare_folder(root, CompareOptions())


def test_bad_inputs_are_named(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    write_run(root, "a", "a", 0.5)
    with pytest.raises(XevalError, match="at least two"):
        compare_folder(root, CompareOptions())
    write_run(root, "b", "b", 0.6)
    with pytest.raises(XevalError, match="'nDCG@10' is in no run"):
        compare_folder(root, CompareOptions(metrics=("nDCG@10",)))
    with pytest.raises(XevalError, match="baseline 'nope' is none"):
        compare_folder(root, CompareOptions(baseline="nope"))
    f = per_query_frame(0.5, 1).with_columns(
        pl.when(pl.col("query_id") == "de-q1")
        .then(float("nan"))
        .otherwise(pl.col("value"))
        .alias("value")
    )
    write_run(root, "c", "c", 0.5, frame=f)
    with pytest.raises(XevalError, match=r"c/eval/per_query.parquet.*non-finite"):
        compare_folder(root, CompareOptions())
    (root / "c" / "eval" / "per_query.parquet").unlink()
    with pytest.raises(XevalError, match="not evaluated"):
        compare_folder(root, CompareOptions())


# --- comparisons end to end ----------------------------------------------------------------


def test_compare_finds_the_known_differences(tmp_path: Path) -> None:
    root = make_runs(tmp_path / "runs")
    comp = compare_folder(root, CompareOptions(metrics=("MRR@10", "LB"), unit="observation"))
    res = comp.results
    # MRR@10: 3 groups x 3 pairs; LB: multi only x 3 pairs; Holm across all 12
    assert res.height == 12
    np.testing.assert_allclose(res["p_adjusted"], xs.holm(res["p_value"].to_numpy()))
    row = res.filter(
        (pl.col("metric") == "MRR@10")
        & (pl.col("unit") == "cross")
        & (pl.col("system_a") == "hybrid")  # systems in folder order: hybrid, xx, xy
        & (pl.col("system_b") == "xx")
    )
    assert row.height == 1
    r = row.row(0, named=True)
    assert r["n"] == 6 * N_Q  # (setting, query) cells of the cross group
    assert r["delta"] < -0.1 and r["significant"] and r["better"] == "A"
    assert r["ci_low"] < r["delta"] < r["ci_high"]
    assert r["wins"] < r["losses"]  # wins count B (xx) beating A (hybrid)
    # the test's p equals scipy on the same paired vectors, rebuilt independently here
    s = {x.name: x for x in comp.systems}

    def vec(name: str) -> np.ndarray:
        return (
            s[name]
            .per_query.filter((pl.col("kind") == "cross") & (pl.col("metric") == "MRR@10"))
            .sort("setting", "query_id")["value"]
            .to_numpy()
        )

    assert r["p_value"] == pytest.approx(sps.ttest_rel(vec("xx"), vec("hybrid")).pvalue, rel=1e-12)
    # LB: lower is better, hybrid has less bias than xx
    lb = res.filter(
        (pl.col("metric") == "LB") & (pl.col("system_a") == "hybrid") & (pl.col("system_b") == "xx")
    ).row(0, named=True)
    assert lb["delta"] > 0 and lb["better"] == "A"
    # scores: hybrid is mean ± std over 3 seeds
    sc = comp.scores.filter(
        (pl.col("system") == "hybrid") & (pl.col("unit") == "mono") & (pl.col("metric") == "MRR@10")
    ).row(0, named=True)
    assert sc["n_runs"] == 3 and sc["std"] > 0


def test_baseline_by_pair_and_query_unit(tmp_path: Path) -> None:
    root = make_runs(tmp_path / "runs")
    comp = compare_folder(root, CompareOptions(baseline="xx", by="pair", correction="bh"))
    res = comp.results
    assert set(res["system_a"]) == {"xx"} and res.height == 2 * len(settings())
    assert set(res["unit"]) == {s[0] for s in settings()}
    assert res.filter(pl.col("unit") == "cross-de-fr")["n"].to_list() == [N_Q, N_Q]
    np.testing.assert_allclose(
        res["p_adjusted"], sps.false_discovery_control(res["p_value"].to_numpy())
    )
    q = compare_folder(root, CompareOptions(baseline="hybrid-seed1", unit="query", test="wilcoxon"))
    assert q.baseline == "hybrid"
    assert q.results.filter(pl.col("unit") == "cross")["n"].to_list() == [3 * N_Q] * 2


@pytest.mark.parametrize("test", ["fisher", "tukey"])
def test_fisher_and_tukey_end_to_end(tmp_path: Path, test: str) -> None:
    comp = compare_folder(
        make_runs(tmp_path / "runs"), CompareOptions(test=test, permutations=2000)
    )
    res = comp.results
    assert res.height == 9 and set(res["test"]) == {test}
    strong = res.filter((pl.col("system_a") == "hybrid") & (pl.col("system_b") == "xx"))
    assert strong["significant"].all()


def test_cli_prints_and_writes_report(tmp_path: Path) -> None:
    from xeval.cli import main

    root = make_runs(tmp_path / "runs")
    out = tmp_path / "report"
    args = ["compare", str(root), "--metric", "MRR@10", "--metric", "LB", "--out", str(out)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "holm" in res.output and "hybrid better" in res.output
    for name in (
        "report.html",
        "report.md",
        "report.tex",
        "comparisons.csv",
        "comparisons.parquet",
        "scores.csv",
        "scores.parquet",
        "compare.json",
    ):
        assert (out / name).is_file(), name
    figs = sorted(p.name for p in (out / "figures").iterdir())
    assert "heatmap-mrr-10-hybrid.png" in figs and "heatmap-mrr-10-hybrid.svg" in figs
    assert any(f.startswith("diff-mrr-10-xx-vs-hybrid") for f in figs)
    assert "bars-lb.svg" in figs and "bars-lb-by-language.png" in figs
    assert not any(f.startswith(("heatmap-lb", "diff-lb")) for f in figs)  # LB: multi only
    md = (out / "report.md").read_text()
    assert "ᵇᶜ" in md  # hybrid (a) beats xx (b) and xy (c) somewhere
    tex = (out / "report.tex").read_text()
    assert r"$^{\mathrm{bc}}$" in tex and r"\toprule" in tex
    meta = json.loads((out / "compare.json").read_text())
    assert meta["options"]["correction"] == "holm" and len(meta["systems"]) == 3
    parquet = pl.read_parquet(out / "comparisons.parquet")
    assert parquet.height == 12 and "p_adjusted" in parquet.columns
    # an existing report is not replaced without --overwrite (exit 2, clear message)
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert CliRunner().invoke(main, [*args, "--overwrite"]).exit_code == 0
    assert not list(tmp_path.glob(".report*"))  # no partial folders left
