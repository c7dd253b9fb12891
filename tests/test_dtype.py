"""Encoding precision (--dtype), truncation counts and the outputs of ``xeval run``."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from xeval.errors import XevalError
from xeval.retrieval.cache import EmbeddingCache
from xeval.retrieval.encode import encode_texts
from xeval.retrieval.run import RunConfig, run_benchmark


@pytest.fixture(scope="module")
def model(tiny_model: Path):
    from xeval.models import load_model

    return load_model(str(tiny_model), device="cpu")


def _meta(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


def test_bf16_is_close_to_fp32_and_cached_apart(model, tmp_path: Path) -> None:
    from xeval.precision import resolve_dtype

    texts = ["The sky is blue.", "Der Himmel ist blau und die Sonne scheint.", "Le ciel."]
    fp32 = resolve_dtype("fp32", "cpu")
    bf16 = resolve_dtype("bf16", "cpu")
    c32 = EmbeddingCache(tmp_path, "fp", "p: ", fp32.name)
    c16 = EmbeddingCache(tmp_path, "fp", "p: ", bf16.name)
    v32, _ = encode_texts(model, texts, prompt="p: ", precision=fp32, cache=c32, progress=False)
    v16, s16 = encode_texts(model, texts, prompt="p: ", precision=bf16, cache=c16, progress=False)
    assert s16["encoded"] == 3  # the fp32 vectors were not served for bf16
    np.testing.assert_allclose(v32, model.encode(texts, prompt="p: "), rtol=1e-5, atol=1e-6)
    cos = (v32 * v16).sum(1) / np.linalg.norm(v32, axis=1) / np.linalg.norm(v16, axis=1)
    assert cos.min() > 0.98 and not np.array_equal(v32, v16)


def test_truncation_only_at_the_model_maximum_and_counted(model) -> None:
    texts = ["short", " ".join(["word"] * 200)]
    _, stats = encode_texts(model, texts, progress=False)
    assert stats["truncated"] == (1 if model.max_seq_length < 200 else 0)
    old = model.max_seq_length
    try:
        model.max_seq_length = 8
        v, stats = encode_texts(model, texts, progress=False)
        assert stats["truncated"] == 1
        np.testing.assert_allclose(v, model.encode(texts), rtol=1e-5, atol=1e-6)
    finally:
        model.max_seq_length = old


def test_dtype_choice_is_recorded_and_keys_the_cache(tiny_model, tiny_benchmark_dir, tmp_path):
    from xeval.precision import resolve_dtype

    cfg = RunConfig(k=3, cache_dir=tmp_path / "cache", progress=False, kinds=("mono",))
    run_benchmark(str(tiny_model), tiny_benchmark_dir, tmp_path / "a", cfg, dtype="fp32")
    res = run_benchmark(str(tiny_model), tiny_benchmark_dir, tmp_path / "b", cfg, dtype="bf16")
    a, b = _meta(tmp_path / "a"), _meta(tmp_path / "b")
    assert a["encoding"]["precision"]["name"] == "fp32" and res.precision == "bf16"
    assert b["encoding"]["precision"]["name"] == "bf16" and b["encoding"]["passages"]["cached"] == 0
    res = run_benchmark(str(tiny_model), tiny_benchmark_dir, tmp_path / "c", cfg)  # auto
    auto = resolve_dtype("auto", "cpu").name
    assert res.precision == auto and res.passages["encoded"] == 0  # served from its own cache
    assert _meta(tmp_path / "c")["encoding"]["threads"] >= 1
    assert "truncated" in res.summary() and res.threads >= 1


def test_cli_outputs_label_trec_and_quiet(tiny_model, tiny_benchmark_dir, tmp_path) -> None:
    from click.testing import CliRunner

    from xeval.cli import main

    out = tmp_path / "run"
    args = ["run", "-m", str(tiny_model), "-b", str(tiny_benchmark_dir), "-o", str(out),
            "--k", "3", "--kind", "mono", "--cache-dir", str(tmp_path / "c"), "--no-progress",
            "--label", "my system", "--trec"]  # fmt: skip
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert res.output.count("\n") == 1 and "label my system" in res.output
    meta = _meta(out)
    assert meta["label"] == "my system" and meta["outputs"]["trec"] == "gz"
    for name in meta["settings"]:
        assert not (out / "runs" / f"{name}.trec").exists()
        with gzip.open(out / "runs" / f"{name}.trec.gz", "rt") as fh:
            first = fh.readline().split()
        assert first[1] == "Q0" and first[-1] == "my_system"
    res = CliRunner().invoke(main, [*args[:-1], "--overwrite"])  # no --trec: none written
    assert res.exit_code == 0 and not list((out / "runs").glob("*.trec*"))


def test_cuda_without_cuda_is_a_clear_error(tiny_model, tiny_benchmark_dir, tmp_path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(XevalError, match="CUDA is not available"):
        run_benchmark(str(tiny_model), tiny_benchmark_dir, tmp_path / "o", device="cuda",
                      progress=False)  # fmt: skip
    assert not (tmp_path / "o").exists()
    with pytest.raises(XevalError, match="unknown device"):
        run_benchmark(str(tiny_model), tiny_benchmark_dir, tmp_path / "o", device="gpu0",
                      progress=False)  # fmt: skip


def test_auto_stays_fp32_where_a_recorded_bf16_check_failed(tiny_model, tmp_path, monkeypatch):
    """XQuAD-R's recorded check failed (bf16 moved 7 of 132 MRR@10 by > 0.002): auto = fp32."""
    from tests.conftest import make_tiny_benchmark
    from xeval.retrieval import inputs

    assert inputs.bf16_caution("xquad-r") and inputs.bf16_caution("tiny") is None
    monkeypatch.setattr("xeval.precision.native_bf16", lambda dev: (True, "test: native"))
    bench = make_tiny_benchmark()
    bench.name = "xquad-r"
    bdir = bench.save(tmp_path / "bench-x")
    cfg = RunConfig(k=3, cache_dir=tmp_path / "cache", progress=False, kinds=("mono",))
    assert run_benchmark(str(tiny_model), bdir, tmp_path / "x", cfg).precision == "fp32"
    assert "bf16 moved" in _meta(tmp_path / "x")["encoding"]["precision"]["reason"]
    assert (
        run_benchmark(str(tiny_model), bdir, tmp_path / "y", cfg, dtype="bf16").precision == "bf16"
    )
    tdir = make_tiny_benchmark().save(tmp_path / "bench-t")
    assert run_benchmark(str(tiny_model), tdir, tmp_path / "t", cfg).precision == "bf16"
