"""Training pairs, the X-X / X-Y / hybrid sampler, the overlap guard and ``xeval finetune``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from scipy import stats

from tests.conftest import make_tiny_benchmark
from xeval.errors import XevalError
from xeval.training.overlap import check_overlap, normalise, overlap_report
from xeval.training.pairs import (
    PAIR_COLUMNS,
    benchmark_pairs,
    load_pairs,
    parallel_jsonl_pairs,
    save_pairs,
    training_columns,
)
from xeval.training.sampler import BatchPlan, HybridBatchSampler, PairMeta, shard_batches

LANGS = ("en", "de", "fr", "es")


# ---- fixtures ------------------------------------------------------------------------------------
def synthetic_pairs(
    n_units: int = 120, langs: tuple[str, ...] = LANGS, missing: float = 0.2, seed: int = 0
) -> pl.DataFrame:
    """Parallel units, some absent in some languages (as MLQA-R), expanded to all pairs."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_units):
        have = [lang for lang in langs if lang == "en" or rng.random() > missing]
        for x in have:
            for y in have:
                rows.append((f"q {u} {x}", f"p {u} {y}", x, y, f"u{u}", "synthetic"))
    return pl.DataFrame(rows, schema=list(PAIR_COLUMNS), orient="row")


@pytest.fixture(scope="module")
def syn() -> pl.DataFrame:
    return synthetic_pairs()


@pytest.fixture(scope="module")
def meta(syn: pl.DataFrame) -> PairMeta:
    return PairMeta.from_pairs(syn)


def _check_batch(df: pl.DataFrame, mode: str, lang: str | None, rows: list[int]) -> None:
    b = df[rows]
    texts = b["query"].to_list() + b["passage"].to_list()
    assert len(set(texts)) == len(texts), "duplicate text in a batch"
    assert b["unit_id"].n_unique() == len(rows), "unit twice in a batch (false negative)"
    if mode == "xx":
        assert set(b["query_lang"]) == set(b["passage_lang"]) == {lang}
    else:
        assert (b["query_lang"] != b["passage_lang"]).all()


# ---- pairs -------------------------------------------------------------------------------------
def test_benchmark_pairs_cover_every_language_pair(tiny_benchmark) -> None:
    df = benchmark_pairs(tiny_benchmark)
    assert df.columns == list(PAIR_COLUMNS)
    assert df.height == 6 * 3 * 3  # units x query langs x passage langs
    row = df.filter(
        (pl.col("unit_id") == "q2")
        & (pl.col("query_lang") == "de")
        & (pl.col("passage_lang") == "fr")
    ).row(0, named=True)
    assert row["query"] == "Welche Farbe hat snow?"
    assert row["passage"] == "La couleur de snow est white."


def test_training_dataset_has_only_text_columns(tiny_benchmark) -> None:
    ds = training_columns(benchmark_pairs(tiny_benchmark))
    assert ds.column_names == ["anchor", "positive"]


def test_parallel_jsonl(tmp_path: Path) -> None:
    f = tmp_path / "p.jsonl"
    recs = [
        {"unit_id": "a", "lang": "en", "query": "Q en", "passage": "P en"},
        {"unit_id": "a", "lang": "de", "query": "Q de", "passage": "P de"},
        {"unit_id": "b", "lang": "en", "query": "Q2 en", "passage": "P2 en"},
    ]
    f.write_text("\n".join(json.dumps(r) for r in recs) + "\n\n", encoding="utf-8")
    df = parallel_jsonl_pairs(f)
    assert df.height == 4 + 1
    assert df.filter((pl.col("query_lang") == "en") & (pl.col("passage_lang") == "de"))[
        "passage"
    ].to_list() == ["P de"]
    out = save_pairs(df, tmp_path / "p.parquet")
    assert load_pairs(out).equals(df)
    assert json.loads((tmp_path / "p.parquet.json").read_text())["summary"]["units"] == 2


@pytest.mark.parametrize(
    "lines, msg, record",
    [
        (
            ['{"unit_id": "a", "lang": "en", "query": "q", "passage": "p"}', "{oops"],
            "malformed JSON",
            "line 2",
        ),
        (['{"unit_id": "a", "lang": "en", "query": "", "passage": "p"}'], "'query'", "line 1"),
        (
            ['{"unit_id": "a", "lang": "en", "query": "q", "passage": "p"}'] * 2,
            "language 'en' twice",
            "line 2",
        ),
    ],
)
def test_parallel_jsonl_errors_name_the_line(tmp_path: Path, lines, msg, record) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(XevalError, match=msg) as e:
        parallel_jsonl_pairs(f)
    assert e.value.record == record and e.value.file == str(f)


def test_domain_sources_are_dispatched_lazily(monkeypatch, tmp_path: Path) -> None:
    """``xeval pairs NAME`` calls the registered pair function with source and options."""
    from xeval.training import pairs as P

    calls = []

    def fake(source, max_units=None):
        calls.append((source, max_units))
        return synthetic_pairs(4, ("fi", "sv"), missing=0.0)

    monkeypatch.setitem(P.PAIR_SOURCES, "fake", P.PairSourceSpec("fake", fake, "test"))
    df = P.build_pairs("fake", tmp_path, max_units=4)
    assert calls == [(tmp_path, 4)] and df.height == 16
    with pytest.raises(XevalError, match="takes no option"):
        P.build_pairs("lareqa-mlqa-r", languages="en")


@pytest.mark.data
def test_mlqa_r_pairs_real(shared_data: Path) -> None:
    from xeval.training.pairs import build_pairs

    df = build_pairs("lareqa-mlqa-r")
    sizes = df.group_by("unit_id").len()["len"].value_counts().sort("len")
    # README: 130 / 789 / 3,280 queries exist in 2 / 3 / 4 languages -> 65 / 263 / 820 units
    assert dict(sizes.iter_rows()) == {4: 65, 9: 263, 16: 820}
    mono = df.filter(pl.col("query_lang") == pl.col("passage_lang"))
    assert mono.height == 4199 and df["unit_id"].n_unique() == 1148


# ---- sampler -------------------------------------------------------------------------------------
@pytest.mark.parametrize("alpha", [0.5, 0.2, 0.85])
def test_hybrid_share_of_mono_batches_is_alpha(syn, meta, alpha: float) -> None:
    modes = []
    plan = BatchPlan(meta, 16, "hybrid", alpha, seed=7)
    for epoch in range(12):
        for mode, lang, rows in plan.epoch(epoch):
            _check_batch(syn, mode, lang, rows)
            modes.append(mode)
    n, k = len(modes), modes.count("xx")
    lo, hi = stats.binom.ppf([1e-6, 1 - 1e-6], n, alpha)
    assert lo <= k <= hi, f"{k}/{n} mono batches for alpha {alpha}"


@pytest.mark.parametrize("strategy", ["xx", "xy"])
def test_pure_strategies(syn, meta, strategy: str) -> None:
    plan = BatchPlan(meta, 16, strategy, alpha=0.3, seed=1)
    batches = plan.epoch(0) + plan.epoch(1)
    assert {m for m, _, _ in batches} == {strategy}
    for mode, lang, rows in batches:
        _check_batch(syn, mode, lang, rows)
        assert len(rows) == 16


def test_xx_language_is_uniform(syn, meta) -> None:
    plan = BatchPlan(meta, 8, "xx", seed=3)
    langs = Counter(lang for e in range(20) for _, lang, _ in plan.epoch(e))
    counts = [langs[x] for x in LANGS]
    # uniform over languages, not proportional to pool size (en has the most pairs)
    assert stats.chisquare(counts).pvalue > 1e-4, counts


def test_seeded_reproducible_and_epochs_differ(meta) -> None:
    a = BatchPlan(meta, 16, "hybrid", 0.5, seed=11)
    b = BatchPlan(meta, 16, "hybrid", 0.5, seed=11)
    assert a.epoch(3) == b.epoch(3)
    assert a.epoch(0) != a.epoch(1)
    assert BatchPlan(meta, 16, "hybrid", 0.5, seed=12).epoch(0) != a.epoch(0)


def test_sampler_covers_each_pool(syn, meta) -> None:
    """Within the first pass through a pool no row is drawn twice and every row comes once."""
    plan = BatchPlan(meta, 16, "xy", seed=0)
    rows = [r for _, _, b in plan.epoch(0) for r in b]
    cross = int((syn["query_lang"] != syn["passage_lang"]).sum())
    assert len(rows) == (cross // 16) * 16
    assert len(set(rows)) >= len(rows) - 16  # deferred rows only shift, never repeat early


@pytest.mark.parametrize("world", [2, 3])
def test_rank_sharding_disjoint_and_complete(syn, meta, world: int) -> None:
    from accelerate.data_loader import BatchSamplerShard

    ds = training_columns(syn)
    sampler = HybridBatchSampler(ds, 8, meta=meta, strategy="hybrid", alpha=0.5, world_size=world)
    sampler.set_epoch(2)
    full = [list(b) for b in sampler]
    assert len(full) % world == 0
    per_rank = [
        [
            list(b)
            for b in BatchSamplerShard(sampler, world, r, split_batches=False, even_batches=False)
        ]
        for r in range(world)
    ]
    assert [len(p) for p in per_rank] == [len(full) // world] * world
    for r in range(world):
        assert per_rank[r] == shard_batches(full, r, world)
    seen = sorted(tuple(b) for p in per_rank for b in p)
    assert seen == sorted(tuple(b) for b in full)  # nothing lost, nothing repeated
    # a step's batches across ranks share one mode and are duplicate-free together
    plan = sampler.batches()
    for g in range(0, len(plan), world):
        group = plan[g : g + world]
        assert len({(m, lang) for m, lang, _ in group}) == 1
        _check_batch(syn, group[0][0], group[0][1], [r for _, _, b in group for r in b])


def test_sampler_rejects_bad_input(syn, meta) -> None:
    with pytest.raises(XevalError, match=r"alpha must lie in \[0, 1\]"):
        BatchPlan(meta, 8, "hybrid", alpha=1.5)
    with pytest.raises(XevalError, match="unknown strategy"):
        BatchPlan(meta, 8, "zz")
    one = PairMeta.from_pairs(
        syn.filter(pl.col("query_lang") == pl.col("passage_lang")).filter(
            pl.col("query_lang") == "en"
        )
    )
    for strategy in ("xy", "hybrid"):
        with pytest.raises(XevalError, match="no X-Y pair"):
            BatchPlan(one, 8, strategy)
    smallest = min(
        Counter(
            syn.filter(pl.col("query_lang") == pl.col("passage_lang"))["query_lang"].to_list()
        ).values()
    )
    with pytest.raises(XevalError, match=r"larger than the .* X-X pool"):
        BatchPlan(meta, smallest + 1, "xx")
    BatchPlan(meta, smallest, "xx")  # exactly the pool size is fine
    with pytest.raises(XevalError, match="no training pairs"):
        BatchPlan(PairMeta.from_lists([], [], [], [], []), 8, "xx")


# ---- overlap -------------------------------------------------------------------------------------
def test_normalise() -> None:
    assert normalise("  Hello,   WORLD!! ") == "hello world"
    assert normalise("ｆｕｌｌ\u3000width") == "full width"


def test_overlap_guard_refuses_and_reports(tmp_path: Path, tiny_benchmark_dir: Path) -> None:
    bench = make_tiny_benchmark()
    df = benchmark_pairs(bench)
    with pytest.raises(XevalError, match=r"overlaps benchmark 'tiny'.*--allow-overlap"):
        check_overlap(df, tiny_benchmark_dir)
    rep = check_overlap(df, tiny_benchmark_dir, allow=True, ngram=20)
    assert rep["queries"]["exact_share"] == 1.0 and rep["corpus"]["exact_share"] == 1.0
    assert rep["ngram"]["share"] == 1.0 and rep["allowed"]
    other = df.with_columns(pl.col("query") + " extra words", pl.col("passage") + " more")
    rep = check_overlap(other, tiny_benchmark_dir, ngram=200)
    assert rep["exact_overlap"] == 0 and not rep["over_limit"]


@pytest.mark.data
def test_mlqa_r_to_xquad_r_is_clean(shared_data: Path) -> None:
    from xeval.benchmark.registry import build
    from xeval.training.pairs import build_pairs

    df = build_pairs("lareqa-mlqa-r")
    rep = overlap_report(df["query"].to_list() + df["passage"].to_list(), build("xquad-r"))
    assert rep["exact_share"] < 0.001, rep
    same = overlap_report(df["query"].to_list(), build("mlqa-r"))
    assert same["queries"]["exact_share"] > 0.99  # the guard does see a real overlap


# ---- finetune ------------------------------------------------------------------------------------
@pytest.fixture
def tiny_pairs(tmp_path: Path) -> Path:
    return save_pairs(benchmark_pairs(make_tiny_benchmark()), tmp_path / "pairs.parquet")


def _cfg(tiny_model: Path, pairs: Path, out: Path, **kw):
    from xeval.training.finetune import FinetuneConfig

    base = dict(
        model=str(tiny_model),
        pairs=str(pairs),
        out=str(out),
        batch_size=4,
        max_steps=6,
        save_steps=100,
        progress=False,
        logging_steps=1,
        seed=3,
        device="cpu",
    )
    return FinetuneConfig(**{**base, **kw})


def test_finetune_writes_loadable_model_and_card(
    tmp_path, tiny_model, tiny_pairs, tiny_benchmark_dir
) -> None:
    from sentence_transformers import SentenceTransformer

    from xeval.training.finetune import finetune

    out = tmp_path / "ft"
    card = finetune(
        _cfg(
            tiny_model,
            tiny_pairs,
            out,
            freeze_embeddings=True,
            eval_steps=3,
            eval_benchmark=str(tiny_benchmark_dir),
            allow_overlap=True,
        )
    ).card
    m = SentenceTransformer(str(out / "model"))
    assert m.prompts["query"] == "query: " and m.prompts["passage"] == "passage: "
    disk = json.loads((out / "xeval-train.json").read_text())
    assert disk["config"]["strategy"] == "hybrid" and disk["config"]["lr"] == 3e-5
    assert disk["pairs"]["fingerprint"] == card["pairs"]["fingerprint"]
    assert disk["training"]["global_step"] == 6 and disk["versions"]["sentence-transformers"]
    assert disk["parameters"]["frozen_word_embeddings"] > 0
    assert [h["step"] for h in disk["evaluation"]["history"]] == [0, 3, 6]
    assert disk["overlap"][0]["allowed"] and disk["overlap"][0]["over_limit"]
    assert not (out / "checkpoints").exists()
    base = SentenceTransformer(str(tiny_model)).state_dict()
    tuned = m.state_dict()
    emb = next(k for k in base if "word_embeddings" in k)
    assert (base[emb] == tuned[emb]).all()  # frozen
    assert any(not (base[k] == tuned[k]).all() for k in base if k != emb)  # trained


def test_resume_equals_uninterrupted_run(tmp_path, tiny_model, tiny_pairs) -> None:
    """Stop in the second epoch, resume: same steps, losses and final weights."""
    from sentence_transformers import SentenceTransformer

    from xeval.training.finetune import finetune

    kw = dict(max_steps=16)  # 54 pairs / batch 4 -> 13 batches an epoch
    a = finetune(_cfg(tiny_model, tiny_pairs, tmp_path / "a", **kw)).card
    part = finetune(_cfg(tiny_model, tiny_pairs, tmp_path / "b", stop_after=14, **kw)).card
    assert part["status"] == "stopped at step 14" and not (tmp_path / "b" / "model").exists()
    b = finetune(_cfg(tiny_model, tiny_pairs, tmp_path / "b", resume=True, **kw)).card
    assert b["training"]["resumed_from"].endswith("checkpoint-14")
    assert b["training"]["steps_this_call"] == 2
    assert [r["loss"] for r in a["training"]["log"]] == [r["loss"] for r in b["training"]["log"]]
    sa = SentenceTransformer(str(tmp_path / "a" / "model")).state_dict()
    sb = SentenceTransformer(str(tmp_path / "b" / "model")).state_dict()
    assert all((sa[k] == sb[k]).all() for k in sa)


def test_bad_input_fails_before_compute(tmp_path, tiny_model, tiny_pairs, monkeypatch) -> None:
    import xeval.models
    from xeval.training.finetune import finetune

    def boom(*a, **k):
        raise AssertionError("model loaded before the input was checked")

    monkeypatch.setattr(xeval.models, "load_model", boom)
    cases = [
        (dict(alpha=-0.1), r"alpha must lie in \[0, 1\]"),
        (dict(batch_size=7), "larger than the"),  # 6 units per language
        (dict(resume=True), "no checkpoint to resume from"),
        (dict(languages=["en"], strategy="xy"), "no X-Y pair"),
        (dict(languages=["xx"]), "no training pairs"),
    ]
    for kw, msg in cases:
        with pytest.raises(XevalError, match=msg):
            finetune(_cfg(tiny_model, tiny_pairs, tmp_path / "o", **kw))
    with pytest.raises(XevalError, match="pairs file not found"):
        finetune(_cfg(tiny_model, tmp_path / "missing.parquet", tmp_path / "o"))
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("x")
    with pytest.raises(XevalError, match="refusing to delete"):
        finetune(_cfg(tiny_model, tiny_pairs, precious, overwrite=True))
    assert (precious / "thesis.tex").exists()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(XevalError, match="no records"):
        finetune(_cfg(tiny_model, empty, tmp_path / "o"))


def test_cli_pairs_and_finetune_errors(tmp_path: Path, tiny_model) -> None:
    from xeval.cli import main

    f = tmp_path / "u.jsonl"
    f.write_text(
        "\n".join(
            json.dumps(
                {"unit_id": u, "lang": lang, "query": f"q{u}{lang}", "passage": f"p{u}{lang}"}
            )
            for u in range(8)
            for lang in ("en", "de")
        ),
        encoding="utf-8",
    )
    r = CliRunner().invoke(
        main, ["pairs", "parallel-jsonl", "--source", str(f), "--out", str(tmp_path / "p.parquet")]
    )
    assert r.exit_code == 0, r.output
    assert "32 pairs, 8 units" in r.output
    r = CliRunner().invoke(
        main,
        [
            "pairs",
            "parallel-jsonl",
            "--source",
            str(f),
            "--out",
            str(tmp_path / "p3.parquet"),
            "--max-units",
            "3",
        ],
    )
    assert r.exit_code == 0 and "12 pairs, 3 units" in r.output, r.output
    r = CliRunner().invoke(
        main,
        [
            "finetune",
            "-m",
            str(tiny_model),
            "-p",
            str(tmp_path / "p.parquet"),
            "-o",
            str(tmp_path / "o"),
            "--alpha",
            "2",
        ],
    )
    assert r.exit_code == 2 and "alpha must lie in [0, 1]" in r.output
