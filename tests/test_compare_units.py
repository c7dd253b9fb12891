"""xeval compare on independent units: question units, seed replicas, bootstrap, bad input.

A parallel benchmark with 3 languages x N question units is generated as a folder holding
``queries.parquet`` (with ``unit_id``); evaluated runs point at it through ``run.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from scipy import stats as sps

from xeval.compare import CompareOptions, compare_folder
from xeval.compare.tables import console
from xeval.errors import XevalError

LANGS = ("en", "de", "fr")
N_UNITS = 30


def write_benchmark(root: Path, n_units: int = N_UNITS) -> Path:
    """A parallel benchmark's queries table: one query per unit and language."""
    root.mkdir(parents=True)
    rows = [
        (f"{lang}-u{i}", lang, f"q {i} {lang}", f"u{i}") for i in range(n_units) for lang in LANGS
    ]
    pl.DataFrame(rows, schema=["query_id", "lang", "text", "unit_id"], orient="row").write_parquet(
        root / "queries.parquet"
    )
    return root


def settings() -> list[tuple[str, str, str, str]]:
    out = [(f"mono-{q}", "mono", q, q) for q in LANGS]
    out += [(f"cross-{q}-{d}", "cross", q, d) for q in LANGS for d in LANGS if q != d]
    out += [(f"multi-{q}", "multi", q, "all") for q in LANGS]
    return out


def frame(shift: float, seed: int, noise: float = 0.05, n_units: int = N_UNITS) -> pl.DataFrame:
    """MRR@10 per query: a unit difficulty shared by every system and language, plus
    ``shift`` and seeded noise; clipped to [0, 1]."""
    base = np.random.default_rng(123).random(n_units) * 0.6 + 0.2
    rng = np.random.default_rng(seed)
    rows = []
    for setting, kind, ql, dl in settings():
        for i in range(n_units):
            v = float(np.clip(base[i] + shift + rng.normal(0, noise), 0, 1))
            rows.append((setting, kind, ql, dl, f"{ql}-u{i}", "MRR@10", v))
    return pl.DataFrame(
        rows,
        schema=["setting", "kind", "query_lang", "doc_lang", "query_id", "metric", "value"],
        orient="row",
    )


def write_run(root: Path, name: str, df: pl.DataFrame, bench: Path, **meta: object) -> Path:
    d = root / name
    (d / "eval").mkdir(parents=True)
    info = {
        "model": {"name": name, "path": f"/models/{name}", "fingerprint": f"fp-{name}"},
        "benchmark": {"name": "par", "path": str(bench), "fingerprint": "bench-fp"},
        "prompts": {},
        "backend": "exact",
        "k": 100,
        "settings": [s[0] for s in settings()],
        "seed": 0,
        **meta,
    }
    (d / "run.json").write_text(json.dumps(info))
    df.write_parquet(d / "eval" / "per_query.parquet")
    return d


def unit_means(df: pl.DataFrame, kind: str) -> np.ndarray:
    """Independent check: mean per unit over the group's languages and settings."""
    return (
        df.filter(pl.col("kind") == kind)
        .with_columns(pl.col("query_id").str.split("-").list.get(1).alias("u"))
        .group_by("u")
        .agg(pl.col("value").mean())
        .sort("u")["value"]
        .to_numpy()
    )


@pytest.fixture
def two_systems(tmp_path: Path) -> tuple[Path, pl.DataFrame, pl.DataFrame]:
    bench = write_benchmark(tmp_path / "bench")
    a, b = frame(0.0, 1), frame(0.04, 2)
    write_run(tmp_path / "runs", "base", a, bench)
    write_run(tmp_path / "runs", "tuned", b, bench)
    return tmp_path / "runs", a, b


def test_default_pairs_question_units(two_systems) -> None:
    root, a, b = two_systems
    comp = compare_folder(root, CompareOptions())
    assert comp.unit == "unit"
    assert set(comp.results["n"]) == {N_UNITS}  # not 3 x N queries, not 18 x N cells
    assert set(comp.results["pairing"]) == {"unit"}
    r = comp.results.filter(pl.col("unit") == "cross").row(0, named=True)
    ua, ub = unit_means(a, "cross"), unit_means(b, "cross")
    ref = sps.ttest_rel(ub, ua)
    assert r["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert r["delta"] == pytest.approx(float((ub - ua).mean()))
    text = console(comp)
    assert f"n = {N_UNITS} question units" in text
    assert all(len(line) <= 120 for line in text.splitlines())
    # the other units stay available, with their own n
    q = compare_folder(root, CompareOptions(unit="query"))
    assert q.results.filter(pl.col("unit") == "cross")["n"].to_list() == [3 * N_UNITS]
    o = compare_folder(root, CompareOptions(unit="observation"))
    assert o.results.filter(pl.col("unit") == "cross")["n"].to_list() == [6 * N_UNITS]


def test_bootstrap_ci_contains_the_mean_and_matches_scipy(two_systems) -> None:
    root, a, b = two_systems
    comp = compare_folder(root, CompareOptions(bootstrap=2000, seed=7))
    r = comp.results.filter(pl.col("unit") == "mono").row(0, named=True)
    assert r["boot_low"] < r["delta"] < r["boot_high"]
    ua, ub = unit_means(a, "mono"), unit_means(b, "mono")
    ref = sps.bootstrap(
        (ua, ub),
        lambda x, y, axis: np.mean(y - x, axis=axis),
        paired=True,
        n_resamples=2000,
        random_state=np.random.default_rng(7),
    ).confidence_interval
    assert (r["boot_low"], r["boot_high"]) == pytest.approx((ref.low, ref.high), rel=1e-9)


def test_seed_replicas_enter_as_their_mean_and_the_spread_is_reported(tmp_path: Path) -> None:
    bench = write_benchmark(tmp_path / "bench")
    runs = tmp_path / "runs"
    write_run(runs, "base", frame(0.0, 1), bench)
    seeds = [frame(0.05 + 0.03 * s, 10 + s) for s in range(3)]
    for s, df in enumerate(seeds):
        write_run(runs, f"ft-seed{s}", df, bench, seed=s, label=f"hybrid-seed{s}")
    comp = compare_folder(runs, CompareOptions(baseline="base"))
    assert [s.name for s in comp.systems] == ["base", "hybrid"]  # run label, seed stripped
    assert comp.systems[1].n_runs == 3
    r = comp.results.filter(pl.col("unit") == "multi").row(0, named=True)
    mean_units = np.mean([unit_means(df, "multi") for df in seeds], axis=0)
    assert r["mean_b"] == pytest.approx(float(mean_units.mean()))
    assert r["n"] == N_UNITS
    sd = np.std([unit_means(df, "multi").mean() for df in seeds], ddof=1)
    assert r["seed_sd_b"] == pytest.approx(float(sd))
    assert r["seed_sd_a"] is None and r["seed_sd"] == pytest.approx(float(sd))


def test_warns_when_a_difference_is_smaller_than_the_seed_spread(tmp_path: Path) -> None:
    bench = write_benchmark(tmp_path / "bench")
    runs = tmp_path / "runs"
    for s, shift in enumerate((-0.06, 0.06)):
        write_run(runs, f"xx-seed{s}", frame(shift, 20 + s), bench, seed=s)
        write_run(runs, f"xy-seed{s}", frame(shift + 0.01, 30 + s), bench, seed=s)
    comp = compare_folder(runs, CompareOptions())
    assert comp.results["below_seed_sd"].all()
    assert len(comp.warnings) == 3 and "spread between seeds" in comp.warnings[0]
    assert "warning:" in console(comp)
    # a clear difference raises none
    far = tmp_path / "far"
    for s in range(2):
        write_run(far, f"xx-seed{s}", frame(0.0, 40 + s, noise=0.01), bench, seed=s)
    write_run(far, "big", frame(0.3, 50), bench)
    assert compare_folder(far, CompareOptions()).warnings == []


def test_unit_pairing_needs_unit_ids(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for seed, (name, shift) in enumerate((("a", 0.0), ("b", 0.1))):
        write_run(runs, name, frame(shift, seed), tmp_path / "no-such-bench")
    assert compare_folder(runs, CompareOptions()).unit == "query"  # falls back
    with pytest.raises(XevalError, match="unit ids"):
        compare_folder(runs, CompareOptions(unit="unit"))


def test_out_of_range_metric_values_are_refused(two_systems, tmp_path: Path) -> None:
    root, a, _ = two_systems
    bad = a.with_columns(
        pl.when(pl.col("query_id") == "en-u3").then(5.0).otherwise(pl.col("value")).alias("value")
    )
    write_run(root, "bad", bad, tmp_path / "bench")
    with pytest.raises(XevalError, match=r"MRR@10 values outside \[0.0, 1.0\]") as err:
        compare_folder(root, CompareOptions())
    assert "bad" in str(err.value) and "per_query.parquet" in str(err.value)


def test_damaged_per_query_file_is_an_error_naming_it(two_systems) -> None:
    from xeval.cli import main

    root, _, _ = two_systems
    target = root / "tuned" / "eval" / "per_query.parquet"
    target.write_bytes(target.read_bytes()[:100])
    res = CliRunner().invoke(main, ["compare", str(root)])
    assert res.exit_code == 2
    assert "per_query.parquet" in res.output and "tuned" in res.output


def test_cli_several_folders_globs_labels_and_width(tmp_path: Path) -> None:
    from xeval.cli import main

    bench = write_benchmark(tmp_path / "bench")
    long = "multilingual-e5-small-fine-tuned-hybrid-batches"
    write_run(tmp_path / "zs", "e5", frame(0.0, 1), bench, label="multilingual-e5-small")
    write_run(tmp_path / "ft", "ft-a", frame(0.05, 2), bench, label=long + "-a")
    write_run(tmp_path / "ft", "ft-b", frame(0.1, 3), bench, label=long + "-b")
    args = ["compare", str(tmp_path / "zs" / "e5"), str(tmp_path / "ft" / "ft-*"), "-q"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert all(len(line) <= 120 for line in res.output.splitlines())
    assert "(a) multilingual-e5-small" in res.output and long + "-b" in res.output
    assert "n = 30 question units" in res.output
    none = CliRunner().invoke(main, ["compare", str(tmp_path / "nothing-*")])
    assert none.exit_code == 2 and "matches nothing" in none.output


def test_comparison_repr_is_short(two_systems) -> None:
    comp = compare_folder(two_systems[0], CompareOptions())
    text = repr(comp)
    assert text.startswith("Comparison(base, tuned;") and len(text) < 200
    assert "question units" in comp.summary()


# --- figures ---------------------------------------------------------------------------------


def test_heatmaps_share_one_labelled_scale_and_set_the_pooled_column_apart(
    two_systems, tmp_path: Path, monkeypatch
) -> None:
    from xeval.compare import plots

    seen = []
    real = plots.heatmap

    def spy(rows, cols, mat, title, scale, marks=None):
        fig = real(rows, cols, mat, title, scale, marks)
        seen.append((cols, scale, marks, fig))
        return fig

    monkeypatch.setattr(plots, "heatmap", spy)
    comp = compare_folder(two_systems[0], CompareOptions())
    files = plots.write_figures(comp, tmp_path / "fig")
    assert {f.kind for f in files} == {"bars", "heatmap", "difference"}
    maps = [x for x in seen if x[2] is None]
    diffs = [x for x in seen if x[2] is not None]
    assert len(maps) == 2 and len(diffs) == 1
    assert maps[0][1] == maps[1][1]  # one colour scale for every system
    for cols, scale, _, fig in seen:
        assert cols[-1] == "all"
        images = [ax for ax in fig.axes if ax.images]
        assert len(images) == 2  # languages, then the pooled column on its own axes
        assert images[1].get_xticklabels()[0].get_text() == "all"
        bar = fig.axes[-1]
        assert "MRR@10" in bar.get_ylabel()
        assert images[0].images[0].get_clim() == (scale.vmin, scale.vmax)
    # tuned is clearly better in most settings: the difference map marks them
    assert diffs[0][2].sum() >= 6


def test_figures_for_31_languages_stay_within_the_report_width(tmp_path: Path) -> None:
    from xeval.compare import plots

    langs = [f"l{i:02d}" for i in range(31)] + ["all"]
    mat = np.random.default_rng(0).random((31, 32))
    scale = plots.shared_scale([mat], "MRR@10")
    fig = plots.heatmap(langs[:-1], langs, mat, "31 languages", scale)
    width, height = fig.get_size_inches()
    assert width <= plots.MAX_WIDTH_IN and height <= 9
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == langs[:-1] and len(fig.axes[0].texts) == 0  # no unreadable numbers
