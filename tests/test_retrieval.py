"""Encoding cache, exact / HNSW search, exact ranks and the run directory of ``xeval run``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from xeval.benchmark.schema import load_benchmark
from xeval.benchmark.settings import enumerate_settings
from xeval.errors import XevalError
from xeval.retrieval.cache import EmbeddingCache
from xeval.retrieval.encode import default_prompts, encode_texts, fingerprint_model
from xeval.retrieval.run import run_benchmark
from xeval.retrieval.search import HnswIndex, choose_backend, exact_ranks, exact_search, tie_ranks


# ---- helpers ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model(tiny_model: Path):
    """The tiny test model, loaded through xeval.models."""
    from xeval.models import load_model

    return load_model(str(tiny_model), device="cpu")


class CountingModel:
    """Wraps a SentenceTransformer and counts the texts it runs through its forward pass."""

    def __init__(self, st) -> None:
        self.st, self.encoded = st, 0

    def __getattr__(self, name):
        return getattr(self.st, name)

    def __call__(self, features, **kw):
        self.encoded += len(features["input_ids"])
        return self.st(features, **kw)


def brute_order(scores: np.ndarray, ids: list[str]) -> list[int]:
    """Full ranking by the tie rule, by plain Python sorting: score desc, doc_id desc."""
    idx = list(range(len(ids)))
    idx.sort(key=lambda j: ids[j], reverse=True)
    idx.sort(key=lambda j: -float(scores[j]))  # stable: keeps doc_id desc among ties
    return idx


TEXTS = ["The sky is blue.", "Der Himmel ist blau.", "Le ciel est bleu.", "The sky is blue."]


# ---- cache ----------------------------------------------------------------------------
def test_cache_hit_miss_and_partial(model, tmp_path: Path) -> None:
    fp = fingerprint_model(model)
    m = CountingModel(model)
    cache = EmbeddingCache(tmp_path, fp, "passage: ")
    v1, s1 = encode_texts(m, TEXTS, prompt="passage: ", cache=cache, progress=False)
    assert s1 == {"texts": 4, "unique": 3, "cached": 0, "encoded": 3, "truncated": 0}
    assert m.encoded == 3
    assert np.array_equal(v1[0], v1[3])
    # a fresh cache object (a new process) re-encodes nothing and returns the same vectors
    v2, s2 = encode_texts(
        m, TEXTS, prompt="passage: ", cache=EmbeddingCache(tmp_path, fp, "passage: "),
        progress=False,
    )  # fmt: skip
    assert s2["encoded"] == 0 and s2["cached"] == 3 and m.encoded == 3
    assert np.array_equal(v1, v2) and v2.dtype == np.float32
    # the cached vectors are what the model computes
    direct = model.encode(TEXTS, prompt="passage: ", convert_to_numpy=True)
    np.testing.assert_allclose(v2, direct, rtol=1e-5, atol=1e-6)
    # new texts: only they are encoded; old ones come from the cache
    _, s3 = encode_texts(m, [*TEXTS, "El cielo es azul."], prompt="passage: ", cache=cache,
                         progress=False)  # fmt: skip
    assert s3["encoded"] == 1 and s3["cached"] == 3 and m.encoded == 4
    assert len(list(cache.folder.glob("shard-*.npy"))) == 2


def test_cache_never_reuses_stale_vectors(model, tmp_path: Path) -> None:
    import copy

    import torch

    fp = fingerprint_model(model)
    m = CountingModel(model)
    encode_texts(m, TEXTS, prompt="passage: ", cache=EmbeddingCache(tmp_path, fp, "passage: "),
                 progress=False)  # fmt: skip
    # another prompt: other keys, other folder
    other = EmbeddingCache(tmp_path, fp, "query: ")
    _, s = encode_texts(m, TEXTS, prompt="query: ", cache=other, progress=False)
    assert s["encoded"] == 3
    # a changed model: its fingerprint changes, so nothing is reused
    changed = copy.deepcopy(model)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in changed.parameters():
            p.add_(0.05 * torch.randn_like(p))
    fp2 = fingerprint_model(changed)
    assert fp2 != fp and fingerprint_model(copy.deepcopy(model)) == fp
    m2 = CountingModel(changed)
    v, s = encode_texts(m2, TEXTS, prompt="passage: ", cache=EmbeddingCache(tmp_path, fp2,
                        "passage: "), progress=False)  # fmt: skip
    assert s["encoded"] == 3 and m2.encoded == 3
    assert EmbeddingCache(tmp_path, fp2, "passage: ").folder != other.folder
    assert len(EmbeddingCache(tmp_path, fp, "passage: ")) == 3  # old vectors kept, unused
    assert not np.allclose(v, model.encode(TEXTS, prompt="passage: "))


def test_interrupted_encoding_resumes(model, tmp_path: Path) -> None:
    class Interrupted(CountingModel):
        def __call__(self, features, **kw):
            if self.encoded >= 2:
                raise KeyboardInterrupt
            return super().__call__(features, **kw)

    texts = [f"sentence number {i}" for i in range(5)]
    cache = EmbeddingCache(tmp_path, "fp", "")
    with pytest.raises(KeyboardInterrupt):
        encode_texts(Interrupted(model), texts, cache=cache, batch_size=1, chunk_size=1,
                     progress=False)  # fmt: skip
    assert len(EmbeddingCache(tmp_path, "fp", "")) == 2  # finished work was stored
    m = CountingModel(model)
    _, stats = encode_texts(m, texts, cache=cache, batch_size=2, progress=False)
    assert stats["cached"] == 2 and stats["encoded"] == 3 and m.encoded == 3


def test_cache_ignores_orphan_shard_and_rejects_wrong_dim(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, "fp", "")
    cache.add(["a", "b"], np.ones((2, 4), dtype=np.float32))
    np.save(cache.folder / "shard-orphan.npy", np.zeros((1, 4), np.float32))  # crash leftover
    vec, found = EmbeddingCache(tmp_path, "fp", "").lookup(["b", "c", "a"])
    assert found.tolist() == [True, False, True] and vec is not None
    assert vec[0].tolist() == [1, 1, 1, 1] and vec[1].tolist() == [0, 0, 0, 0]
    with pytest.raises(XevalError, match="dim"):
        cache.add(["c"], np.ones((1, 5), dtype=np.float32))


# ---- search ---------------------------------------------------------------------------
def _tied_data(seed: int = 0, n_docs: int = 400, n_q: int = 40):
    rng = np.random.default_rng(seed)
    docs = rng.integers(-1, 2, (n_docs, 6)).astype(np.float32)  # many exact ties
    queries = rng.integers(-1, 2, (n_q, 6)).astype(np.float32)
    ids = [f"d{rng.integers(0, 10**6):06d}-{i}" for i in range(n_docs)]
    return queries, docs, ids


def test_exact_search_equals_brute_force_with_tie_rule() -> None:
    queries, docs, ids = _tied_data()
    # a tiny memory budget forces many query batches
    top = exact_search(queries, docs, 25, tie_ranks(ids), memory_mb=0.005)
    scores = queries @ docs.T
    for qi in range(len(queries)):
        assert top.indices[qi].tolist() == brute_order(scores[qi], ids)[:25]
        assert np.array_equal(top.scores[qi], scores[qi, top.indices[qi]])
    # k larger than the pool: the whole pool, still in tie order
    full = exact_search(queries[:3], docs[:7], 100, tie_ranks(ids[:7]))
    assert full.indices.shape == (3, 7)
    assert full.indices[0].tolist() == brute_order(scores[0, :7], ids[:7])


def test_exact_ranks_match_full_ranking() -> None:
    queries, docs, ids = _tied_data(1)
    rng = np.random.default_rng(2)
    pq = np.repeat(np.arange(len(queries)), 5)
    pd = rng.integers(0, len(ids), len(pq))
    ranks = exact_ranks(queries, docs, tie_ranks(ids), pq, pd, memory_mb=0.005)
    scores = queries @ docs.T
    for q, d, r in zip(pq, pd, ranks, strict=True):
        assert brute_order(scores[q], ids).index(int(d)) + 1 == r


def test_search_rejects_nan() -> None:
    queries, docs, ids = _tied_data()
    docs[3, 2] = np.nan
    with pytest.raises(XevalError, match="row 3"):
        exact_search(queries, docs, 5, tie_ranks(ids))


def test_hnsw_beam_widens_with_the_pool() -> None:
    from xeval.retrieval.search import auto_expansion

    beams = [auto_expansion(n) for n in (1, 100_000, 100_001, 400_000, 400_001, 10**7)]
    assert beams == [512, 512, 1024, 1024, 2048, 2048]
    docs = np.eye(8, dtype=np.float32)
    assert HnswIndex(docs).params["expansion_search"] == 512
    assert HnswIndex(docs, expansion_search=64).params["expansion_search"] == 64
    described = HnswIndex.describe({"connectivity": 16})
    assert described["connectivity"] == 16 and described["dtype"] == "f32"
    assert "1024 up to 400,000 docs" in described["expansion_search"]


def test_hnsw_recall_on_clustered_data() -> None:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(60, 48)).astype(np.float32)
    docs = centers[rng.integers(0, 60, 6000)] + 0.35 * rng.normal(size=(6000, 48))
    queries = centers[rng.integers(0, 60, 200)] + 0.35 * rng.normal(size=(200, 48))
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    ids = [f"d{i:05d}" for i in range(len(docs))]
    tie = tie_ranks(ids)
    exact = exact_search(queries, docs, 20, tie)
    approx = HnswIndex(docs, expansion_search=128).search(queries, 20, tie)
    recall = np.mean(
        [len(set(a) & set(e)) / 20 for a, e in zip(approx.indices, exact.indices, strict=True)]
    )
    assert recall >= 0.95
    # scores are exact and ordered by the tie rule
    np.testing.assert_allclose(
        approx.scores, np.einsum("qd,qkd->qk", queries, docs[approx.indices]), rtol=1e-5
    )
    assert (np.diff(approx.scores, axis=1) <= 0).all()


def test_choose_backend() -> None:
    assert choose_backend("auto", 1_000_001, 100) == "hnsw"
    assert choose_backend("auto", 1_000_000, 100) == "exact"
    assert choose_backend("auto", 10_000, 100) == "exact"
    assert choose_backend("exact", 10**7, 100) == "exact"
    from xeval.cli.run import run_cmd
    from xeval.retrieval.search import HNSW_THRESHOLD

    opt = next(o for o in run_cmd.params if o.name == "hnsw_threshold")
    assert opt.default == HNSW_THRESHOLD
    with pytest.raises(XevalError, match="backend"):
        choose_backend("faiss", 10, 1)


# ---- run directory ---------------------------------------------------------------------
def test_run_directory_contract(tiny_model: Path, tiny_benchmark_dir: Path, tmp_path: Path) -> None:
    out, cache = tmp_path / "run", tmp_path / "cache"
    run_benchmark(str(tiny_model), tiny_benchmark_dir, out, k=5, cache_dir=cache, progress=False,
                  trec="plain", dtype="fp32")  # fmt: skip
    bench = load_benchmark(tiny_benchmark_dir)
    settings = enumerate_settings(bench)
    meta = json.loads((out / "run.json").read_text())
    assert meta["settings"] == [s.name for s in settings]
    assert meta["benchmark"]["fingerprint"] == bench.fingerprint
    assert meta["k"] == 5 and meta["backend"] == "auto" and meta["seed"] == 0
    assert set(meta["model"]) == {"name", "label", "path", "fingerprint"}
    assert meta["model"]["fingerprint"] and "versions" in meta and "command" in meta
    assert meta["encoding"]["passages"]["encoded"] == bench.corpus.height
    assert sorted(p.stem for p in (out / "runs").glob("*.parquet")) == sorted(meta["settings"])
    # exact ranks are written for every setting kind (the full-pool metrics need them)
    assert sorted(p.stem for p in (out / "ranks").glob("*.parquet")) == sorted(
        s.name for s in settings
    )
    assert not list(tmp_path.glob(".run.*"))  # no temporary leftovers

    from xeval.models import load_model

    st = load_model(str(tiny_model), device="cpu")
    prompts = default_prompts(st)
    assert meta["prompts"] == prompts
    corpus = bench.corpus
    q = bench.queries.sort("query_id")
    qv = st.encode(q["text"].to_list(), prompt=prompts["query"], normalize_embeddings=True)
    dv = st.encode(corpus["text"].to_list(), prompt=prompts["passage"], normalize_embeddings=True)
    qrow = {x: i for i, x in enumerate(q["query_id"])}
    for s in settings:
        run = pl.read_parquet(out / "runs" / f"{s.name}.parquet")
        assert run.schema == {
            "query_id": pl.String, "doc_id": pl.String, "score": pl.Float64, "rank": pl.Int32
        }  # fmt: skip
        assert sorted(run["query_id"].unique()) == sorted(s.query_ids)
        pool = corpus.filter(pl.col("lang").is_in(list(s.doc_langs)))
        assert run.group_by("query_id").len()["len"].max() == min(5, pool.height)
        assert set(run["doc_id"]) <= set(pool["doc_id"])
        # every run is ordered by the tie rule
        for qid, grp in run.group_by("query_id"):
            g = grp.sort("rank")
            assert g["rank"].to_list() == list(range(1, g.height + 1))
            resorted = g.sort(["score", "doc_id"], descending=[True, True])
            assert resorted["doc_id"].to_list() == g["doc_id"].to_list(), qid
        trec = pl.read_csv(out / "runs" / f"{s.name}.trec", separator=" ", has_header=False,
                           new_columns=["q", "q0", "d", "r", "s", "tag"],
                           schema_overrides={"q": pl.String, "d": pl.String})  # fmt: skip
        assert trec["q"].to_list() == run["query_id"].to_list()
        assert trec["d"].to_list() == run["doc_id"].to_list()
        assert trec["s"].to_list() == run["score"].to_list()  # exact round trip
        assert set(trec["q0"]) == {"Q0"} and trec["tag"].n_unique() == 1
    for s in settings:
        ranks = pl.read_parquet(out / "ranks" / f"{s.name}.parquet")
        assert ranks.height == s.qrels.height
        pool = corpus.with_row_index().filter(pl.col("lang").is_in(list(s.doc_langs)))
        ids, rows = pool["doc_id"].to_list(), pool["index"].to_numpy()
        for qid, did, rank in ranks.iter_rows():
            scores = dv[rows] @ qv[qrow[qid]]
            assert brute_order(scores, ids).index(ids.index(did)) + 1 == rank
        run = pl.read_parquet(out / "runs" / f"{s.name}.parquet")
        joined = ranks.join(run, on=["query_id", "doc_id"], how="inner", suffix="_run")
        assert joined.height and (joined["rank"] == joined["rank_run"]).all()


def test_rerun_hits_cache_and_options(tiny_model: Path, tiny_benchmark_dir: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    run_benchmark(str(tiny_model), tiny_benchmark_dir, tmp_path / "a", k=3, cache_dir=cache,
                  progress=False)  # fmt: skip
    with pytest.raises(XevalError, match="overwrite"):
        run_benchmark(str(tiny_model), tiny_benchmark_dir, tmp_path / "a", cache_dir=cache)
    run_benchmark(str(tiny_model), tiny_benchmark_dir, tmp_path / "a", k=3, cache_dir=cache,
                  progress=False, overwrite=True, backend="hnsw", kinds=["mono", "cross"],
                  languages=["en", "de"])  # fmt: skip
    meta = json.loads((tmp_path / "a" / "run.json").read_text())
    assert meta["encoding"]["queries"]["encoded"] == 0
    assert meta["encoding"]["passages"]["encoded"] == 0
    assert meta["settings"] == ["mono-de", "mono-en", "cross-de-en", "cross-en-de"]
    assert set(meta["backends"].values()) == {"hnsw"}
    # ranks now exist for hnsw settings too (one product of the relevant pairs)
    assert sorted(p.stem for p in (tmp_path / "a" / "ranks").glob("*.parquet")) == sorted(
        meta["settings"]
    )
    exact = tmp_path / "b"
    run_benchmark(str(tiny_model), tiny_benchmark_dir, exact, k=3, cache_dir=cache, progress=False,
                  backend="exact", kinds=["mono", "cross"], languages=["en", "de"])  # fmt: skip
    for name in meta["settings"]:  # 6 docs per pool: HNSW finds the exact top-3
        a = pl.read_parquet(tmp_path / "a" / "runs" / f"{name}.parquet")
        b = pl.read_parquet(exact / "runs" / f"{name}.parquet")
        assert a.select("query_id", "doc_id", "rank").equals(b.select("query_id", "doc_id", "rank"))
    # another prompt re-encodes; --no-cache writes nothing to the cache
    run_benchmark(str(tiny_model), tiny_benchmark_dir, tmp_path / "c", k=3, cache_dir=cache,
                  progress=False, query_prompt="question: ", kinds=["mono"])  # fmt: skip
    meta = json.loads((tmp_path / "c" / "run.json").read_text())
    assert meta["prompts"]["query"] == "question: " and meta["encoding"]["queries"]["encoded"] > 0
    assert meta["encoding"]["passages"]["encoded"] == 0
    before = sorted(p.name for p in cache.rglob("*"))
    run_benchmark(str(tiny_model), tiny_benchmark_dir, tmp_path / "d", k=3, cache_dir=cache,
                  progress=False, use_cache=False, passage_prompt="", kinds=["mono"])  # fmt: skip
    assert sorted(p.name for p in cache.rglob("*")) == before


# ---- errors and CLI --------------------------------------------------------------------
def test_wrong_benchmark_dir(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(XevalError, match="benchmark"):
        run_benchmark(str(tiny_model), tmp_path / "nope", tmp_path / "out", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(XevalError, match=r"benchmark\.json"):
        run_benchmark(str(tiny_model), tmp_path / "empty", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_hub_name_offline_is_a_clear_error(tiny_benchmark_dir: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("XEVAL_CACHE", str(tmp_path / "xc"))
    with pytest.raises(XevalError) as err:
        run_benchmark("someone/no-such-model-xyz", tiny_benchmark_dir, tmp_path / "o",
                      progress=False)  # fmt: skip
    assert "someone/no-such-model-xyz" in str(err.value)
    assert not (tmp_path / "o").exists()


def test_cli_run(tiny_model: Path, tiny_benchmark_dir: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from xeval.cli import main

    runner = CliRunner()
    out = tmp_path / "run"
    args = ["run", "--model", str(tiny_model), "--benchmark", str(tiny_benchmark_dir), "--out",
            str(out), "--k", "4", "--kind", "multi", "--languages", "en,fr", "--cache-dir",
            str(tmp_path / "c"), "--quiet"]  # fmt: skip
    res = runner.invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output
    meta = json.loads((out / "run.json").read_text())
    assert meta["settings"] == ["multi-en", "multi-fr"] and meta["k"] == 4
    res = runner.invoke(main, args)
    assert res.exit_code == 2 and "--overwrite" in res.output
    bad = [*args[:3], "--benchmark", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]
    res = runner.invoke(main, bad)
    assert res.exit_code == 2 and "missing" in res.output
