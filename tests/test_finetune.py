"""``xeval finetune``: precision, typed result, dev curve, damaged checkpoints (tiny model)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from tests.conftest import make_tiny_benchmark
from xeval.errors import XevalError
from xeval.training.checkpoints import checkpoint_problems, find_resume_point
from xeval.training.config import CONFIG_NAME, FinetuneConfig
from xeval.training.finetune import FinetuneResult, finetune
from xeval.training.pairs import benchmark_pairs, save_pairs


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pairs")
    return save_pairs(benchmark_pairs(make_tiny_benchmark()), d / "pairs.parquet")


def _cfg(model: Path, pairs: Path, out: Path, **kw) -> FinetuneConfig:
    base = dict(
        model=str(model),
        pairs=str(pairs),
        out=str(out),
        batch_size=4,
        max_steps=6,
        save_steps=2,
        progress=False,
        logging_steps=1,
        seed=3,
        device="cpu",
        dtype="fp32",
    )
    return FinetuneConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def stopped(tmp_path_factory, tiny_model, pairs) -> Path:
    """A run stopped at step 4, with good checkpoints 2 and 4 (copied by each test)."""
    out = tmp_path_factory.mktemp("stopped") / "ft"
    res = finetune(_cfg(tiny_model, pairs, out, stop_after=4))
    assert res.status == "stopped at step 4" and not res.finished
    return out


@pytest.fixture
def interrupted(stopped: Path, tmp_path: Path) -> Path:
    out = tmp_path / "ft"
    shutil.copytree(stopped, out)
    return out


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_model, pairs) -> FinetuneResult:
    return finetune(_cfg(tiny_model, pairs, tmp_path_factory.mktemp("full") / "ft"))


# ---- result and precision ------------------------------------------------------------------------
def test_result_is_typed_and_records_precision(uninterrupted: FinetuneResult) -> None:
    r = uninterrupted
    assert r.finished and r.steps == 6 and r.steps_this_call == 6
    assert (r.model_path / "modules.json").is_file()
    assert r.precision.name == "fp32" and r.card["precision"]["name"] == "fp32"
    assert r.card["config"]["dtype"] == "fp32"
    assert [x["step"] for x in r.loss_curve] == [1, 2, 3, 4, 5, 6]
    assert r.seconds_per_step and r.seconds_per_step > 0
    assert r.card["training"]["seconds_per_step"] > 0 and r.card["training"]["threads"] >= 1
    disk = json.loads((r.out / "xeval-train.json").read_text())
    assert disk["precision"] == r.card["precision"]
    assert "6 steps" in r.summary() and "fp32" in r.summary()


def test_saved_model_keeps_the_base_max_length(tmp_path, tiny_model, pairs) -> None:
    """max_length bounds the training pairs only: evaluation sees what the base model sees."""
    from xeval.models import load_model

    base = load_model(str(tiny_model)).max_seq_length
    res = finetune(_cfg(tiny_model, pairs, tmp_path / "ft", max_length=16, max_steps=2))
    assert res.card["config"]["max_length"] == 16 and base != 16
    assert load_model(str(res.model_path)).max_seq_length == base
    assert res.card["model"]["max_seq_length"] == base


def test_bf16_trains_under_autocast(tmp_path, tiny_model, pairs) -> None:
    import torch
    from transformers import TrainerCallback

    seen: set = set()

    class Probe(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            lin = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
            lin.register_forward_hook(lambda m, i, o: seen.add(o.dtype))

    r = finetune(_cfg(tiny_model, pairs, tmp_path / "b", dtype="bf16"), callbacks=[Probe()])
    assert r.precision.is_bf16 and r.card["precision"]["name"] == "bf16"
    assert torch.bfloat16 in seen
    assert all(x["loss"] == x["loss"] for x in r.loss_curve)  # finite, not NaN
    assert r.card["config"]["dtype"] == "bf16"


def test_bad_dtype_is_refused_before_compute(tmp_path, tiny_model, pairs) -> None:
    with pytest.raises(XevalError, match="--dtype"):
        finetune(_cfg(tiny_model, pairs, tmp_path / "o", dtype="fp16"))


def test_resume_with_another_precision_is_refused(interrupted, tiny_model, pairs) -> None:
    with pytest.raises(XevalError, match="precision: was 'fp32', now 'bf16'"):
        finetune(_cfg(tiny_model, pairs, interrupted, resume=True, dtype="bf16"))


# ---- the dev curve -------------------------------------------------------------------------------
def test_dev_curve_is_scored_by_the_metric_engine(tmp_path, tiny_model, pairs) -> None:
    """The top-10 dev evaluation equals xeval.metrics over an exhaustive run."""
    from xeval.metrics import score
    from xeval.models import load_model
    from xeval.training.dev_eval import DevEval

    bench = make_tiny_benchmark().save(tmp_path / "bench")
    dev = DevEval(bench, max_queries=None)
    model = load_model(str(tiny_model), device="cpu")
    point = dev(model, step=7)
    assert point.step == 7 and set(point.mrr10) == {"mono", "cross"}
    qe, de = dev._encode(model)
    full = pl.DataFrame(
        {
            "query_id": [q for q in dev.queries["query_id"] for _ in range(de.shape[0])],
            "doc_id": dev.docs["doc_id"].to_list() * qe.shape[0],
            "score": (qe @ de.T).reshape(-1).double().numpy(),
        }
    )
    for kind in ("mono", "cross"):
        per = []
        for s in (s for s in dev.settings if s.kind == kind):
            langs = set(s.doc_langs)
            keep = dev.docs.filter(pl.col("lang").is_in(langs))["doc_id"]
            run = full.filter(
                pl.col("doc_id").is_in(keep.to_list()) & pl.col("query_id").is_in(s.query_ids)
            )
            per.append(score(run, s.qrels, "MRR@10")["value"].mean())
        assert point.mrr10[kind] == pytest.approx(sum(per) / len(per), abs=1e-12)


def test_dev_curve_in_result_and_card(tmp_path, tiny_model, pairs) -> None:
    bench = make_tiny_benchmark().save(tmp_path / "bench")
    r = finetune(
        _cfg(
            tiny_model,
            pairs,
            tmp_path / "ft",
            eval_benchmark=str(bench),
            eval_steps=3,
            allow_overlap=True,
            save_steps=100,
        )
    )
    assert [p.step for p in r.dev_curve] == [0, 3, 6]
    hist = r.card["evaluation"]["history"]
    assert r.card["evaluation"]["metric"] == "MRR@10"
    assert [h["step"] for h in hist] == [0, 3, 6]
    assert hist[-1]["MRR@10/mono"] == r.dev_curve[-1].mrr10["mono"]
    assert 0.0 <= hist[-1]["MRR@10/cross"] <= 1.0
    assert "dev MRR@10 at step 6" in r.summary()


def test_dev_curve_survives_a_resume(tmp_path, tiny_model, pairs) -> None:
    """A run stopped at a checkpoint and resumed keeps the points of its first call: the
    card's curve equals the uninterrupted run's, and the checkpoint's step is not evaluated
    twice."""
    bench = str(make_tiny_benchmark().save(tmp_path / "bench"))
    kw = dict(eval_benchmark=bench, eval_steps=2, allow_overlap=True)
    whole = finetune(_cfg(tiny_model, pairs, tmp_path / "whole", **kw))
    part = tmp_path / "part"
    first = finetune(_cfg(tiny_model, pairs, part, stop_after=4, **kw))
    assert [p.step for p in first.dev_curve] == [0, 2, 4]
    shutil.rmtree(part / "checkpoints" / "checkpoint-4")  # resume from step 2
    r = finetune(_cfg(tiny_model, pairs, part, resume=True, **kw))
    assert r.card["training"]["resumed_from"].endswith("checkpoint-2")
    assert [p.step for p in r.dev_curve] == [0, 2, 4, 6]
    assert r.dev_curve[:2] == first.dev_curve[:2]  # restored, not evaluated again
    assert r.dev_seconds == pytest.approx(sum(p.seconds for p in r.dev_curve[2:]))
    got, want = r.card["evaluation"]["history"], whole.card["evaluation"]["history"]
    for g, w in zip(got, want, strict=True):
        assert g["step"] == w["step"]
        assert g["MRR@10/mono"] == pytest.approx(w["MRR@10/mono"], abs=1e-6)
        assert g["MRR@10/cross"] == pytest.approx(w["MRR@10/cross"], abs=1e-6)
    assert all("xeval_dev" not in rec for rec in r.card["training"]["log"])


# ---- damaged checkpoints -------------------------------------------------------------------------
def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _flip(p: Path) -> None:
    b = bytearray(p.read_bytes())
    b[len(b) // 2] ^= 0xFF
    p.write_bytes(bytes(b))


def _head(p: Path) -> None:
    p.write_bytes(b"\xff" * 8 + p.read_bytes()[8:])


DAMAGE = {
    "weights truncated": (lambda c: _truncate(c / "model.safetensors"), "model.safetensors"),
    "weights header damaged": (lambda c: _head(c / "model.safetensors"), "model.safetensors"),
    "optimizer truncated": (lambda c: _truncate(c / "optimizer.pt"), "optimizer.pt"),
    "optimizer bit flip": (lambda c: _flip(c / "optimizer.pt"), "optimizer.pt"),
    "state not JSON": (lambda c: (c / "trainer_state.json").write_text("{"), "trainer_state"),
    "rng state missing": (lambda c: (c / "rng_state.pth").unlink(), "rng_state.pth missing"),
    "scheduler missing": (lambda c: (c / "scheduler.pt").unlink(), "scheduler.pt missing"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damage_is_found(interrupted: Path, damage: str) -> None:
    ck = interrupted / "checkpoints"
    assert checkpoint_problems(ck / "checkpoint-4") == []
    hurt, what = DAMAGE[damage]
    hurt(ck / "checkpoint-4")
    problems = checkpoint_problems(ck / "checkpoint-4")
    assert problems and what in "; ".join(problems)
    point = find_resume_point(ck)
    assert point.step == 2 and point.skipped[0][0] == "checkpoint-4"


def test_resume_falls_back_past_a_damaged_checkpoint(
    interrupted, tiny_model, pairs, uninterrupted
) -> None:
    _truncate(interrupted / "checkpoints" / "checkpoint-4" / "optimizer.pt")
    with pytest.warns(UserWarning, match=r"checkpoint-4 is damaged .*optimizer\.pt"):
        r = finetune(_cfg(tiny_model, pairs, interrupted, resume=True))
    assert r.card["training"]["resumed_from"].endswith("checkpoint-2")
    assert r.steps_this_call == 4 and r.finished
    skipped = r.card["training"]["damaged_checkpoints_skipped"]
    assert skipped[0]["checkpoint"] == "checkpoint-4"
    # resumed from step 2: the same losses and weights as the uninterrupted run
    assert [x["loss"] for x in r.loss_curve] == [x["loss"] for x in uninterrupted.loss_curve]
    from sentence_transformers import SentenceTransformer

    a = SentenceTransformer(str(uninterrupted.model_path)).state_dict()
    b = SentenceTransformer(str(r.model_path)).state_dict()
    assert all((a[k] == b[k]).all() for k in a)


def test_resume_refuses_when_every_checkpoint_is_damaged(interrupted, tiny_model, pairs) -> None:
    for n in (2, 4):
        (interrupted / "checkpoints" / f"checkpoint-{n}" / "rng_state.pth").unlink()
    with pytest.raises(XevalError, match=r"no intact checkpoint: checkpoint-4: rng_state"):
        finetune(_cfg(tiny_model, pairs, interrupted, resume=True))


def test_resume_refuses_without_the_training_config(interrupted, tiny_model, pairs) -> None:
    (interrupted / CONFIG_NAME).unlink()
    with pytest.raises(XevalError, match="settings are missing"):
        finetune(_cfg(tiny_model, pairs, interrupted, resume=True))
    (interrupted / CONFIG_NAME).write_text("[1]")
    with pytest.raises(XevalError, match="unreadable training settings"):
        finetune(_cfg(tiny_model, pairs, interrupted, resume=True))


def test_cli_finetune_dtype_and_damaged_resume(interrupted, tiny_model, pairs) -> None:
    from xeval.cli import main

    args = ["finetune", "-m", str(tiny_model), "-p", str(pairs), "-o", str(interrupted)]
    args += ["--batch-size", "4", "--max-steps", "6", "--save-steps", "2", "--seed", "3"]
    args += ["--logging-steps", "1", "--device", "cpu", "--no-progress", "--dtype", "fp32"]
    for n in (2, 4):
        (interrupted / "checkpoints" / f"checkpoint-{n}" / "trainer_state.json").write_text("x")
    r = CliRunner().invoke(main, [*args, "--resume"])
    assert r.exit_code == 2 and "no intact checkpoint" in r.output, r.output
    r = CliRunner().invoke(main, [*args, "--overwrite"])
    assert r.exit_code == 0, r.output
    assert "6 steps, fp32" in r.output and "s/step" in r.output
