"""The one adapter between the study harness and the rest of xeval.

Every call into the library (benchmark builders, pair sources, the fine-tuner, the run
and evaluate stages) goes through this module, so a change of their signatures is
absorbed here. Each function works in the work folder (heavy intermediates) and returns
compact tables for the store.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from xeval.errors import XevalError
from xeval.study.plan import BenchmarkSpec, Plan, Source

METRICS = ("MRR@10", "R@10", "R@100", "MAP", "LB")
UNIT_KEYS = ("unit_id", "kind", "query_lang")
DEV_SEED = 0  # which units are held out for the dev curve does not vary with the seed


@dataclass
class TrainOutput:
    """What a fine-tune leaves for the store (the model stays in the work folder)."""

    model_dir: Path
    card: dict[str, Any]
    loss: pl.DataFrame
    dev: pl.DataFrame | None


# ---- benchmarks and pairs ----------------------------------------------------------------
def benchmark_dir(spec: BenchmarkSpec, work: Path) -> Path:
    """The built benchmark (built once into ``work/bench/<name>``)."""
    if spec.path:
        return Path(spec.path)
    out = work / "bench" / spec.name
    if not (out / "benchmark.json").is_file():
        from xeval.benchmark.registry import build_benchmark

        build_benchmark(
            spec.builder,
            out,
            spec.source,
            overwrite=True,
            sample_queries=spec.sample_queries,
            seed=spec.seed,
            **spec.options,
        )
    return out


def benchmark_info(bench_dir: Path) -> dict[str, Any]:
    """Name, fingerprint, languages and counts of a built benchmark."""
    from xeval.benchmark.schema import load_benchmark

    b = load_benchmark(bench_dir)
    return {
        "name": b.name,
        "fingerprint": b.fingerprint,
        "languages": b.languages,
        "queries": b.queries.height,
        "documents": b.corpus.height,
    }


def pairs_to_benchmark(df: pl.DataFrame, name: str) -> Any:
    """A benchmark from pairs: each unit's queries are relevant to each of its passages."""
    from xeval.benchmark.schema import Benchmark

    q = df.select("unit_id", lang="query_lang", text="query").unique(["unit_id", "lang"])
    d = df.select("unit_id", lang="passage_lang", text="passage").unique(["unit_id", "lang"])
    q = q.with_columns(query_id=pl.concat_str("lang", pl.lit("-q-"), "unit_id")).sort("query_id")
    d = d.with_columns(doc_id=pl.concat_str("lang", pl.lit("-d-"), "unit_id")).sort("doc_id")
    qrels = q.select("query_id", "unit_id").join(d.select("doc_id", "unit_id"), on="unit_id")
    langs = sorted(set(q["lang"]) | set(d["lang"]))
    return Benchmark(
        name,
        d.select("doc_id", "lang", "text", "unit_id"),
        q.select("query_id", "lang", "text", "unit_id"),
        qrels.select("query_id", "doc_id", relevance=pl.lit(1, pl.Int32)),
        manifest={"domain": "dev", "languages": langs},
    )


def prepare_pairs(src: Source, work: Path) -> tuple[Path, Path | None, dict[str, Any]]:
    """Training pairs (dev units held out) and the dev benchmark; built once into work."""
    from xeval.training.pairs import build_pairs, sample_units, save_pairs, summarize_pairs

    folder = work / "pairs" / src.name
    train, dev = folder / "train.parquet", folder / "dev-bench"
    if not train.is_file():
        df = build_pairs(src.pairs, src.source, **src.options)
        units = df["unit_id"].unique().sort()
        held = units.sample(min(src.dev_units, units.len()), seed=DEV_SEED) if src.dev_units else []
        rest = df.filter(~pl.col("unit_id").is_in(pl.Series(held, dtype=pl.String).implode()))
        if src.max_units:
            rest = sample_units(rest, src.max_units, seed=DEV_SEED)
        if src.dev_units:
            dev_df = df.filter(pl.col("unit_id").is_in(pl.Series(held, dtype=pl.String).implode()))
            pairs_to_benchmark(dev_df, f"{src.name}-dev").save(dev, overwrite=True)
        save_pairs(rest, train, source=src.pairs, dev_units=len(held), max_units=src.max_units)
    meta = json.loads((folder / "train.parquet.json").read_text(encoding="utf-8"))
    summary = meta.get("summary") or summarize_pairs(pl.read_parquet(train))
    info = {"fingerprint": meta.get("fingerprint"), "summary": summary, "dev_units": src.dev_units}
    return train, (dev if src.dev_units else None), info


# ---- fine-tuning ---------------------------------------------------------------------------
def _finetune_config(plan: Plan, pairs: Path, out: Path, **over: Any) -> Any:
    from xeval.training.finetune import FinetuneConfig

    t = plan.training
    names = {f.name for f in dataclasses.fields(FinetuneConfig)}
    extra: dict[str, Any] = {}
    if "dtype" in names:
        extra["dtype"] = t.precision
    elif t.precision != "fp32":
        raise XevalError(f"precision {t.precision!r}: this build's fine-tuner has no dtype")
    resume = (out / "checkpoints").is_dir() and any((out / "checkpoints").iterdir())
    cfg = dict(
        model=plan.base_model,
        pairs=str(pairs),
        out=str(out),
        batch_size=t.batch_size,
        lr=t.lr,
        warmup=t.warmup,
        scale=t.scale,
        max_length=t.max_length,
        freeze_embeddings=t.freeze_embeddings,
        save_steps=t.save_steps,
        logging_steps=t.logging_steps,
        progress=False,
        resume=resume,
        overwrite=not resume,
        device="cpu" if _no_accelerator() else None,
    )
    return FinetuneConfig(**{**cfg, **extra, **over})


def _no_accelerator() -> bool:
    import torch

    return not torch.cuda.is_available()


def _curves(card: dict[str, Any]) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    log = card.get("training", {}).get("log", [])
    loss = pl.DataFrame(
        {
            "step": [int(r["step"]) for r in log],
            "loss": [float(r["loss"]) for r in log],
            "learning_rate": [float(r.get("learning_rate", float("nan"))) for r in log],
        },
        schema={"step": pl.Int32, "loss": pl.Float64, "learning_rate": pl.Float64},
    )
    hist = (card.get("evaluation") or {}).get("history") or []
    dev = pl.DataFrame(hist).drop("seconds", strict=False) if hist else None
    return loss, dev


class DeadlineStop(XevalError):
    """A fine-tune saved a checkpoint and stopped for the deadline; the next run resumes."""


def finetune(
    plan: Plan, pairs: Path, out: Path, deadline: float | None = None, **over: Any
) -> TrainOutput:
    """Fine-tune into ``out`` (resuming from its checkpoints); reuse a finished model.

    With a ``deadline`` (a ``time.time()`` value) it checkpoints and stops in time for it,
    raising :class:`DeadlineStop`.
    """
    from xeval.training.callbacks import StopBy
    from xeval.training.finetune import CARD_NAME
    from xeval.training.finetune import finetune as _finetune

    card_path = out / CARD_NAME
    if (out / "model").is_dir() and card_path.is_file():
        card = json.loads(card_path.read_text(encoding="utf-8"))
    else:
        cfg = _finetune_config(plan, pairs, out, **over)
        stop = [StopBy(deadline)] if deadline is not None else []
        card = _finetune(cfg, callbacks=stop).card
        if stop and stop[0].stopped_at is not None:
            raise DeadlineStop(f"stopped for the deadline at step {stop[0].stopped_at} "
                               "(checkpoint saved; the next run resumes)", file=out)  # fmt: skip
        if card.get("status") != "finished":
            raise XevalError(f"fine-tune stopped early: {card.get('status')}", file=out)
    loss, dev = _curves(card)
    return TrainOutput(out / "model", card, loss, dev)


def overlap_figures(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The overlap guard's figures from a training card (empty when not checked)."""
    ov = card.get("overlap")
    return ov if isinstance(ov, list) else []


# ---- evaluation ----------------------------------------------------------------------------
def evaluate(
    model: str | Path, bench_dir: Path, rundir: Path, cache: Path, precision: str = "fp32"
) -> pl.DataFrame:
    """Run ``model`` on every setting and score it; return per-unit metrics.

    One row per (unit_id, kind, query_lang) with a column per metric of :data:`METRICS`:
    the query's value, averaged over document languages for cross-lingual settings.
    """
    from xeval.evaluation import evaluate_run
    from xeval.retrieval import RunConfig, run_benchmark

    kw: dict[str, Any] = {"overwrite": True, "progress": False, "cache_dir": cache}
    params = {f.name for f in dataclasses.fields(RunConfig)}  # run_benchmark options
    if "device" in params and _no_accelerator():
        kw["device"] = "cpu"
    kw["dtype"] = precision  # explicit: the run stage's own default is "auto"
    run_benchmark(str(model), bench_dir, rundir, **kw)
    res = evaluate_run(rundir, metrics=list(METRICS), write=False)
    return per_unit(res.per_query, bench_dir)


def per_unit(per_query: pl.DataFrame, bench_dir: Path) -> pl.DataFrame:
    """Per-query values -> one row per (unit, kind, query language), metrics as columns."""
    from xeval.benchmark.schema import load_benchmark

    q = load_benchmark(bench_dir).queries
    unit = pl.col("unit_id").fill_null(pl.col("query_id")) if "unit_id" in q.columns else None
    units = q.select("query_id", unit_id=unit if unit is not None else pl.col("query_id"))
    long = (
        per_query.join(units, on="query_id", how="left")
        .group_by([*UNIT_KEYS, "metric"])
        .agg(pl.col("value").mean())
    )
    wide = long.pivot(on="metric", index=list(UNIT_KEYS), values="value")
    for m in METRICS:
        if m not in wide.columns:
            wide = wide.with_columns(pl.lit(None, pl.Float64).alias(m))
    return wide.select(*UNIT_KEYS, *[pl.col(m).cast(pl.Float32) for m in METRICS]).sort(UNIT_KEYS)


def run_model_fingerprint(rundir: Path, model: str | Path) -> str | None:
    """The model fingerprint the run recorded in its ``run.json`` (BM25's covers its
    parameters, libraries and analyzers), else :func:`model_fingerprint`."""
    try:
        meta = json.loads((rundir / "run.json").read_text(encoding="utf-8"))
        fp = (meta.get("model") or {}).get("fingerprint")
    except (OSError, ValueError):
        fp = None
    return fp or model_fingerprint(model)


def model_fingerprint(model: str | Path) -> str | None:
    """The fingerprint xeval records for a model (None when it cannot be read)."""
    try:
        from xeval.models import model_info

        return model_info(str(model)).get("fingerprint")
    except (XevalError, OSError):
        return None
