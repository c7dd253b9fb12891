"""Fuse several runs of one benchmark into a new run directory, through ``ranx.fuse``.

Methods (``method`` -> ranx method, default normalisation):

- ``rrf``      reciprocal rank fusion (Cormack et al. 2009): sum of 1 / (rrf_k + rank);
- ``combsum``  CombSUM (Fox & Shaw 1994): sum of normalised scores (default min-max);
- ``combmnz``  CombMNZ: CombSUM times the number of runs that retrieved the document;
- ``combmax``  CombMAX: the largest normalised score;
- ``wsum``     weighted sum of normalised scores (``weights``, one per run).

Every setting that all input runs hold is fused query by query; queries that some run
lacks are dropped (and counted). Rank-based methods see each input run ranked under the
project's tie rule (score descending, then doc_id descending): ranx orders documents
with an unstable sort, so they are given ``-rank`` as the score, which has no ties. The
fused run is ordered by the same tie rule and cut to ``k`` per query.

A fused run knows only the documents its inputs retrieved: it has no exact ranks over
the whole pool. Its ``run.json`` says so with ``"exact_ranks": false`` and it writes no
``ranks/`` folder, so metrics that need ranks beyond the cut-off (language bias) are
reported as unavailable rather than computed on the truncated run.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from xeval.errors import XevalError
from xeval.provenance import atomic_dir, provenance, sha256_text, write_json

TIE_RULE = "score descending, then doc_id descending"
RUN_SCHEMA = {"query_id": pl.String, "doc_id": pl.String, "score": pl.Float64, "rank": pl.Int32}
#: xeval method -> (ranx method, default normalisation, rank-based)
METHODS: dict[str, tuple[str, str | None, bool]] = {
    "rrf": ("rrf", None, True),
    "combsum": ("sum", "min-max", False),
    "combmnz": ("mnz", "min-max", False),
    "combmax": ("max", "min-max", False),
    "wsum": ("wsum", "min-max", False),
}
NORMS = ("min-max", "max", "sum", "zmuv", "rank")
BATCH_ROWS = 500_000
_SEP = "\x1f"  # joins setting and query_id into one ranx query key


@dataclass(frozen=True)
class FusionConfig:
    """How to fuse: method, normalisation (score-based methods), parameters, output."""

    method: str = "rrf"
    norm: str | None = None  # default per method (min-max for score-based ones)
    rrf_k: int = 60
    weights: tuple[float, ...] | None = None  # wsum only, one per run
    k: int | None = None  # documents kept per query; default: the deepest input run's k
    label: str | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise XevalError(f"unknown fusion method {self.method!r}; choose from {list(METHODS)}")
        if self.norm is not None and self.norm not in NORMS:
            raise XevalError(f"unknown normalisation {self.norm!r}; choose from {list(NORMS)}")
        if self.norm is not None and METHODS[self.method][2]:
            raise XevalError(f"{self.method} fuses ranks: it takes no normalisation")
        if (self.weights is not None) != (self.method == "wsum"):
            raise XevalError("weights go with --method wsum, and wsum needs weights")
        if self.k is not None and self.k < 1:
            raise XevalError(f"k must be at least 1, got {self.k}")
        if self.rrf_k < 1:
            raise XevalError(f"rrf_k must be at least 1, got {self.rrf_k}")

    @property
    def normalisation(self) -> str | None:
        return self.norm if self.norm is not None else METHODS[self.method][1]

    def ranx_params(self) -> dict[str, Any]:
        if self.method == "rrf":
            return {"k": self.rrf_k}
        if self.method == "wsum":
            return {"weights": list(self.weights or ())}
        return {}


@dataclass
class InputRun:
    """One run directory to fuse."""

    path: Path
    info: dict[str, Any]
    settings: list[str]

    @property
    def label(self) -> str:
        model = self.info.get("model") or {}
        return str(model.get("label") or model.get("name") or self.path.name)

    @property
    def short(self) -> str:
        """The model's short name (for the fused run's default label)."""
        model = self.info.get("model") or {}
        return str(model.get("name") or model.get("label") or self.path.name)

    @classmethod
    def read(cls, path: str | Path) -> InputRun:
        path = Path(path)
        meta = path / "run.json"
        if not path.is_dir():
            raise XevalError("run directory does not exist", file=path)
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise XevalError("not a run directory (no run.json)", file=path) from None
        except json.JSONDecodeError as exc:
            raise XevalError(f"invalid JSON: {exc}", file=meta) from None
        if not isinstance(info, dict) or not isinstance(info.get("benchmark"), dict):
            raise XevalError("run.json has no 'benchmark' object", file=meta)
        names = info.get("settings") or sorted(p.stem for p in (path / "runs").glob("*.parquet"))
        return cls(path, info, list(names))

    def n_rows(self, settings: list[str]) -> dict[str, int]:
        """Run lines per setting (0 where unreadable: :meth:`frame` reports those)."""
        try:
            counts = self._scan(settings).group_by("setting").len().collect()
        except Exception:  # polars raises several types for bad files
            return dict.fromkeys(settings, 0)
        return dict(zip(counts["setting"], counts["len"], strict=True))

    def _scan(self, settings: list[str]) -> pl.LazyFrame:
        paths = [self.path / "runs" / f"{s}.parquet" for s in settings]
        return pl.scan_parquet(paths, include_file_paths="_path").with_columns(
            setting=pl.col("_path").str.extract(r"([^/\\]+)\.parquet$")
        )

    def frames(self, settings: list[str]) -> pl.DataFrame:
        """setting, query_id, doc_id, score of several settings (one scan when the files
        are sound, else file by file so that the bad one is named)."""
        try:
            df = (
                self._scan(settings)
                .select("setting", pl.col("query_id", "doc_id").cast(pl.String),
                        pl.col("score").cast(pl.Float64))
                .collect()
            )  # fmt: skip
        except Exception:  # polars raises several types: find and name the bad file
            df = pl.concat([self.frame(s).with_columns(setting=pl.lit(s)) for s in settings])
        if df["score"].is_nan().any() or df["score"].is_null().any():
            bad = df.filter(pl.col("score").is_nan() | pl.col("score").is_null())["setting"][0]
            raise XevalError("NaN or missing scores", file=self.path / "runs" / f"{bad}.parquet")
        return df

    def frame(self, setting: str) -> pl.DataFrame:
        """query_id, doc_id, score of one setting."""
        p = self.path / "runs" / f"{setting}.parquet"
        try:
            df = pl.read_parquet(p)
        except FileNotFoundError:
            raise XevalError(f"missing run of setting {setting}", file=p) from None
        except Exception as exc:  # polars raises several types for corrupt files
            raise XevalError(f"unreadable parquet: {exc}", file=p) from None
        lacking = [c for c in ("query_id", "doc_id", "score") if c not in df.columns]
        if lacking:
            raise XevalError(f"lacks column(s) {lacking}; has {df.columns}", file=p)
        df = df.select(
            pl.col("query_id", "doc_id").cast(pl.String), pl.col("score").cast(pl.Float64)
        )
        if df["score"].is_nan().any() or df["score"].is_null().any():
            raise XevalError("NaN or missing scores", file=p)
        return df


@dataclass
class FusionResult:
    """What :func:`fuse_runs` wrote."""

    out: Path
    method: str
    norm: str | None
    inputs: list[str]
    settings: list[str]
    k: int
    n_dropped_queries: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        how = f"{self.method}" + (f" over {self.norm} scores" if self.norm else "")
        lines = [
            f"wrote {self.out}: {how} of {len(self.inputs)} runs ({', '.join(self.inputs)}), "
            f"{len(self.settings)} settings, k={self.k}; no exact ranks (language bias unavailable)"
        ]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def _check_inputs(runs: list[InputRun], cfg: FusionConfig) -> list[str]:
    if len(runs) < 2:
        raise XevalError(f"fusion needs at least two runs, got {len(runs)}")
    if cfg.weights is not None and len(cfg.weights) != len(runs):
        raise XevalError(f"{len(cfg.weights)} weights for {len(runs)} runs: give one per run")
    first = runs[0].info["benchmark"]
    for r in runs[1:]:
        b = r.info["benchmark"]
        if b.get("fingerprint") != first.get("fingerprint") or b.get("name") != first.get("name"):
            raise XevalError(
                f"runs are over different benchmarks: {runs[0].path} has {first.get('name')!r} "
                f"({str(first.get('fingerprint'))[:12]}), this one {b.get('name')!r} "
                f"({str(b.get('fingerprint'))[:12]})",
                file=r.path / "run.json",
            )
    common = [s for s in runs[0].settings if all(s in r.settings for r in runs[1:])]
    if not common:
        raise XevalError("the runs share no setting: nothing to fuse")
    return common


def _tie_order(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort(["query_id", "score", "doc_id"], descending=[False, True, True])


def _to_dict(df: pl.DataFrame, rank_based: bool) -> dict[str, dict[str, float]]:
    """{query_id: {doc_id: score}}; rank-based: score = -rank under the tie rule."""
    df = _tie_order(df)
    if rank_based:
        df = df.with_columns(score=-(pl.int_range(pl.len()).over("query_id") + 1).cast(pl.Float64))
    q = df["query_id"].to_numpy()
    bounds = np.flatnonzero(q[1:] != q[:-1]) + 1
    starts, ends = np.r_[0, bounds], np.r_[bounds, len(q)]
    docs, scores = df["doc_id"].to_list(), df["score"].to_list()
    return {
        str(q[a]): dict(zip(docs[a:b], scores[a:b], strict=True))
        for a, b in zip(starts, ends, strict=True)
    }


def fuse_setting(
    frames: Sequence[pl.DataFrame], cfg: FusionConfig, k: int
) -> tuple[pl.DataFrame, int]:
    """Fuse one setting's runs (query_id, doc_id, score); return the top-k run and the
    number of queries dropped because some run lacks them."""
    from ranx import Run, fuse

    method, _, rank_based = METHODS[cfg.method]
    sets = [set(f["query_id"].unique().to_list()) for f in frames]
    common = set.intersection(*sets)
    dropped = len(set.union(*sets) - common)
    if not common:
        return pl.DataFrame(schema=RUN_SCHEMA), dropped
    keep = pl.DataFrame({"query_id": sorted(common)}, schema={"query_id": pl.String})
    runs = [
        Run.from_dict(_to_dict(f.join(keep, on="query_id", how="semi"), rank_based), name=str(i))
        for i, f in enumerate(frames)
    ]
    with warnings.catch_warnings():  # numba's uint64 -> int64 cast notes inside ranx
        warnings.simplefilter("ignore")
        fused = fuse(runs, norm=cfg.normalisation, method=method, params=cfg.ranx_params())
    rows = [(q, doc, float(s)) for q, docs in fused.run.items() for doc, s in docs.items()]
    df = pl.DataFrame(rows, schema=["query_id", "doc_id", "score"], orient="row")
    df = _tie_order(df.cast({"query_id": pl.String, "doc_id": pl.String, "score": pl.Float64}))
    df = df.with_columns(rank=(pl.int_range(pl.len()).over("query_id") + 1).cast(pl.Int32))
    return df.filter(pl.col("rank") <= k).select(list(RUN_SCHEMA)), dropped


def fuse_runs(
    rundirs: Sequence[str | Path], out: str | Path, config: FusionConfig | None = None
) -> FusionResult:
    """Fuse the run directories ``rundirs`` setting by setting; write a run directory."""
    cfg = config or FusionConfig()
    out = Path(out)
    if out.exists() and not cfg.overwrite:
        raise XevalError(f"{out} exists; pass --overwrite to replace it")
    runs = [InputRun.read(p) for p in rundirs]
    settings = _check_inputs(runs, cfg)
    k = cfg.k or max(int(r.info.get("k") or 100) for r in runs)
    labels = [r.label for r in runs]
    notes: list[str] = []
    skipped = sorted({s for r in runs for s in r.settings} - set(settings))
    if skipped:
        notes.append(
            f"{len(skipped)} setting(s) not held by every run were left out, e.g. {skipped[0]}"
        )
    n_dropped = 0
    with atomic_dir(out, overwrite=cfg.overwrite) as tmp:
        (tmp / "runs").mkdir()
        for batch in _batches(runs, settings):
            n_dropped += _fuse_batch(runs, batch, cfg, k, tmp / "runs")
        if n_dropped:
            notes.append(f"{n_dropped} (setting, query) pairs held by only some runs were dropped")
        write_json(tmp / "run.json", _run_json(runs, cfg, settings, k, notes))
    return FusionResult(out, cfg.method, cfg.normalisation, labels, settings, k, n_dropped, notes)


def _batches(runs: list[InputRun], settings: list[str], rows: int = BATCH_ROWS):
    """Settings grouped so that one ranx call fuses about ``rows`` run lines: ranx's
    per-call cost (numba dispatch, typed containers) dominates for small settings."""
    batch: list[str] = []
    size = 0
    sizes = runs[0].n_rows(settings)
    for s in settings:
        batch.append(s)
        size += sizes.get(s, 0)
        if size >= rows:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _fuse_batch(
    runs: list[InputRun], batch: list[str], cfg: FusionConfig, k: int, folder: Path
) -> int:
    """Fuse several settings in one ranx call (query keys ``setting<SEP>query_id``)."""
    key = pl.concat_str(pl.col("setting"), pl.lit(_SEP), pl.col("query_id"))
    frames = [r.frames(batch).with_columns(query_id=key).drop("setting") for r in runs]
    fused, dropped = fuse_setting(frames, cfg, k)
    parts = fused.with_columns(
        pl.col("query_id").str.split_exact(_SEP, 1).struct.rename_fields(["setting", "qid"])
    ).unnest("query_id")
    by_setting = parts.partition_by("setting", as_dict=True, include_key=False)
    for s in batch:
        part = by_setting.get((s,))
        part = pl.DataFrame(schema=RUN_SCHEMA) if part is None else part.rename({"qid": "query_id"})
        part.select(list(RUN_SCHEMA)).write_parquet(folder / f"{s}.parquet")
    return dropped


def _run_json(
    runs: list[InputRun], cfg: FusionConfig, settings: list[str], k: int, notes: list[str]
) -> dict[str, Any]:
    from importlib import metadata

    inputs = [
        {
            "path": str(r.path.resolve()),
            "label": r.label,
            "fingerprint": (r.info.get("model") or {}).get("fingerprint"),
            "k": r.info.get("k"),
            "exact_ranks": r.info.get("exact_ranks", True),
        }
        for r in runs
    ]
    label = cfg.label or f"{cfg.method}({'+'.join(r.short for r in runs)})"
    fusion = {
        "method": cfg.method,
        "ranx_method": METHODS[cfg.method][0],
        "norm": cfg.normalisation,
        "params": cfg.ranx_params(),
        "library": f"ranx {metadata.version('ranx')}",
        "inputs": inputs,
        "rank_inputs": "rank-based methods score each input by -rank under the tie rule",
    }
    return provenance(
        model={
            "name": label,
            "label": label,
            "path": None,
            "fingerprint": sha256_text(json.dumps(fusion, sort_keys=True, default=str)),
        },
        benchmark=runs[0].info["benchmark"],
        prompts=None,
        backend="ranx.fuse",
        k=k,
        settings=settings,
        seed=0,
        tie_rule=TIE_RULE,
        exact_ranks=False,
        fusion=fusion,
        notes=notes,
    )
