"""Collect evaluated runs from a folder, check they are comparable, group seed replicas.

A run folder holds ``run.json`` and ``eval/per_query.parquet`` (columns ``setting, kind,
query_lang, doc_lang, query_id, metric, value``), as written by ``xeval run`` and
``xeval evaluate``.

Comparability: every run must be made on the same benchmark (same fingerprint), cover the
same settings and, in each setting, the same query ids. Anything else is refused with a
message naming the runs and the difference, because a paired test over different queries
is meaningless.

System name: the run's own label (``run.json`` ``label``, set by ``xeval run --label``),
else the model's short name; a trailing ``-seedN``/``_seedN`` is stripped.

Unit ids: the question each query belongs to (``unit_id`` of the benchmark's
``queries.parquet``, found through ``run.json`` ``benchmark.path``); see :func:`unit_ids`.

Seed replicas: runs whose configuration is the same except for the seed are one *system*.
The configuration is the run label, the model label (else name; a trailing ``-seedN``/``_seedN`` is
stripped), the benchmark fingerprint, prompts, backend, k and the list of settings. The
model path and fingerprint are not part of it, so fine-tunes with different training
seeds group together. Replicas must differ in their run seed or their model's seed (read
from the model's ``xeval-model.json`` card: ``made.seed`` or ``made.config.seed``); runs of
one configuration whose seeds coincide but whose models differ are kept apart as separate
systems, and two runs with the same seeds and model are refused (counted twice). A
system's per-query value is the mean over its replicas; its scores are reported as
mean ± std over replicas.
"""

from __future__ import annotations

import glob
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from xeval.compare.metrics import valid_range
from xeval.errors import XevalError
from xeval.tables import PER_QUERY, QUERIES, read_json

PER_QUERY_FILE = Path("eval") / "per_query.parquet"
KEYS = PER_QUERY.key
_SEED_SUFFIX = re.compile(r"[-_.]seed[-_=]?\d+$", re.IGNORECASE)


@dataclass
class EvaluatedRun:
    """One evaluated run folder: its metadata and its per-query values."""

    path: Path
    meta: dict[str, Any]
    per_query: pl.DataFrame

    @property
    def label(self) -> str:
        """The model's descriptive label (its card's), else its name, else the folder name."""
        model = self.meta.get("model") or {}
        return str(model.get("label") or model.get("name") or self.path.name)

    @property
    def run_label(self) -> str | None:
        """The run's own label (``xeval run --label``), None when the run has none."""
        label = self.meta.get("label")
        return str(label) if label else None

    @property
    def short_name(self) -> str:
        """The run's label, else the model's short name (else label, else folder), without
        a ``-seedN`` suffix."""
        model = self.meta.get("model") or {}
        name = self.run_label or str(model.get("name") or model.get("label") or self.path.name)
        return _SEED_SUFFIX.sub("", name)

    @property
    def seed(self) -> Any:
        return self.meta.get("seed")

    @property
    def model_seed(self) -> Any:
        """The model's training / initialisation seed from its ``xeval-model.json`` card.

        ``made.seed`` (e.g. the tiny model) or ``made.config.seed`` (``xeval finetune``);
        None when the card is absent or names no seed.
        """
        model = self.meta.get("model") or {}
        if "seed" in model:
            return model["seed"]
        path = model.get("path")
        if not path:
            return None
        try:
            card = json.loads((Path(path) / "xeval-model.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        made = card.get("made") or {}
        if not isinstance(made, dict):
            return None
        config = made.get("config") if isinstance(made.get("config"), dict) else {}
        return made.get("seed", config.get("seed"))

    @property
    def seed_id(self) -> tuple[str, str]:
        """(run seed, model seed): replicas of one system must differ here."""
        return json.dumps(self.seed, default=str), json.dumps(self.model_seed, default=str)

    @property
    def model_fingerprint(self) -> str | None:
        return (self.meta.get("model") or {}).get("fingerprint")

    @property
    def benchmark_fingerprint(self) -> str | None:
        return (self.meta.get("benchmark") or {}).get("fingerprint")

    def config_key(self) -> str:
        """Everything that makes a run a different system; the seed is not part of it."""
        model = self.meta.get("model") or {}
        bench = self.meta.get("benchmark") or {}
        key = {
            "run_label": _SEED_SUFFIX.sub("", self.run_label or ""),
            "label": _SEED_SUFFIX.sub("", self.label),
            "model_name": _SEED_SUFFIX.sub("", str(model.get("name") or "")),
            "benchmark": bench.get("fingerprint"),
            "prompts": self.meta.get("prompts"),
            "backend": self.meta.get("backend"),
            "k": self.meta.get("k"),
            "settings": sorted(self.meta.get("settings") or []),
        }
        return json.dumps(key, sort_keys=True, default=str)


@dataclass
class System:
    """Runs that differ only by seed; ``per_query`` holds the mean over them."""

    name: str
    runs: list[EvaluatedRun]
    per_query: pl.DataFrame = field(repr=False)

    @property
    def n_runs(self) -> int:
        return len(self.runs)

    @property
    def seeds(self) -> list[Any]:
        return [r.seed for r in self.runs]


def find_run_dirs(root: str | Path) -> list[Path]:
    """Folders under ``root`` (itself included) that hold a ``run.json``, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise XevalError("not a folder of runs", file=root)
    return sorted({p.parent for p in root.rglob("run.json") if not _hidden(p, root)})


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def load_run(path: str | Path, metrics: Iterable[str] | None = None) -> EvaluatedRun:
    """Read one evaluated run folder, keeping only ``metrics`` (all when None)."""
    path = Path(path)
    meta_file = path / "run.json"
    meta = read_json(meta_file, missing="no run.json: not a run folder")
    pq_file = path / PER_QUERY_FILE
    if not pq_file.is_file():
        raise XevalError(
            f"not evaluated: no {PER_QUERY_FILE}; run `xeval evaluate {path}`", file=path
        )
    df = PER_QUERY.read(pq_file)
    if metrics is not None:
        df = df.filter(pl.col("metric").is_in(list(metrics)))
    _check_values(df, pq_file)
    return EvaluatedRun(path=path, meta=meta, per_query=df)


def _check_values(df: pl.DataFrame, file: Path) -> None:
    bad = df.filter(~pl.col("value").is_finite() | pl.col("value").is_null())
    if bad.height:
        row = bad.row(0, named=True)
        raise XevalError(
            f"{bad.height} non-finite values, e.g. {row['metric']} of query "
            f"{row['query_id']!r} in {row['setting']} is {row['value']}",
            file=file,
        )
    for metric in df["metric"].unique().sort():
        lo, hi = valid_range(metric)
        out = df.filter((pl.col("metric") == metric) & ~pl.col("value").is_between(lo, hi))
        if out.height:
            row = out.row(0, named=True)
            raise XevalError(
                f"{out.height} {metric} values outside [{lo}, {hi}], e.g. query "
                f"{row['query_id']!r} in {row['setting']} has {row['value']}",
                file=file,
            )
    dup = df.group_by("setting", "query_id", "metric").len().filter(pl.col("len") > 1)
    if dup.height:
        row = dup.row(0, named=True)
        raise XevalError(
            f"duplicate rows: {row['metric']} of query {row['query_id']!r} in "
            f"{row['setting']} appears {row['len']} times",
            file=file,
        )


def expand_paths(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    """Run folders named by ``paths``: folders (searched for ``run.json``) and globs."""
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    dirs: list[Path] = []
    for item in items:
        text = str(item)
        hits = sorted(glob.glob(text)) if glob.has_magic(text) else [text]
        if not hits:
            raise XevalError("the pattern matches nothing", file=text)
        for hit in hits:
            found = find_run_dirs(hit)
            if not found:
                raise XevalError("no run folders (run.json) found", file=hit)
            dirs += found
    return list(dict.fromkeys(p.resolve() for p in dirs))


def load_runs(
    paths: str | Path | Sequence[str | Path], metrics: Iterable[str] | None = None
) -> list[EvaluatedRun]:
    """Every evaluated run in ``paths`` (folders or globs); un-evaluated runs are an error."""
    wanted = None if metrics is None else list(metrics)
    return [load_run(d, wanted) for d in expand_paths(paths)]


def unit_ids(run: EvaluatedRun) -> pl.DataFrame | None:
    """``query_id, unit_id`` of the run's benchmark, None when it has no unit ids.

    Read from ``queries.parquet`` in the folder ``run.json`` names as ``benchmark.path``;
    a benchmark folder that is gone also gives None (pairing then falls back to query ids).
    """
    bench = (run.meta.get("benchmark") or {}).get("path")
    file = Path(bench) / "queries.parquet" if bench else None
    if file is None or not file.is_file():
        return None
    queries = QUERIES.read(file)
    if "unit_id" not in queries.columns:
        return None
    table = queries.select("query_id", "unit_id")
    if table["unit_id"].null_count():
        return None
    return table


def check_comparable(runs: Sequence[EvaluatedRun], metrics: Sequence[str] = ()) -> None:
    """Refuse runs that cannot be compared query by query, saying why."""
    if len(runs) < 2:
        raise XevalError(f"need at least two evaluated runs to compare, found {len(runs)}")
    ref = runs[0]
    fps = {str(r.path): r.benchmark_fingerprint for r in runs}
    if any(fp is None for fp in fps.values()):
        bad = [p for p, fp in fps.items() if fp is None]
        raise XevalError("run.json has no benchmark fingerprint", file=Path(bad[0]) / "run.json")
    if len(set(fps.values())) > 1:
        lines = "; ".join(f"{p}: {fp[:12]}" for p, fp in fps.items())
        raise XevalError(
            "runs were made on different benchmarks (benchmark fingerprints differ), so "
            f"their queries cannot be paired: {lines}"
        )
    ref_sets = _query_sets(ref.per_query)
    for run in runs[1:]:
        sets = _query_sets(run.per_query)
        only_ref = sorted(set(ref_sets) - set(sets))
        only_run = sorted(set(sets) - set(ref_sets))
        if only_ref or only_run:
            raise XevalError(
                f"runs cover different settings: only in {ref.path}: {_few(only_ref)}; "
                f"only in {run.path}: {_few(only_run)}. Compare runs made with the same "
                "settings.",
                file=run.path / PER_QUERY_FILE,
            )
        for setting, qids in ref_sets.items():
            other = sets[setting]
            if qids != other:
                raise XevalError(
                    f"different query sets in setting {setting}: {len(qids)} queries in "
                    f"{ref.path} vs {len(other)} here; only in the first: "
                    f"{_few(sorted(qids - other))}; only here: {_few(sorted(other - qids))}",
                    file=run.path / PER_QUERY_FILE,
                    record=setting,
                )
    for metric in metrics:
        have = {
            str(r.path): set(r.per_query.filter(pl.col("metric") == metric)["setting"])
            for r in runs
        }
        if not any(have.values()):
            known = sorted(set().union(*(set(r.per_query["metric"]) for r in runs)))
            raise XevalError(f"metric {metric!r} is in no run; loaded metrics: {known}")
        first = next(iter(have.values()))
        for p, s in have.items():
            if s != first:
                raise XevalError(
                    f"metric {metric!r} was evaluated on different settings "
                    f"({len(s)} here vs {len(first)} in {runs[0].path})",
                    file=Path(p) / PER_QUERY_FILE,
                )


def _query_sets(df: pl.DataFrame) -> dict[str, frozenset[str]]:
    g = df.group_by("setting").agg(pl.col("query_id").unique())
    return {s: frozenset(q) for s, q in zip(g["setting"], g["query_id"], strict=True)}


def _few(items: Sequence[str], n: int = 5) -> str:
    if not items:
        return "none"
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(map(str, items[:n])) + more


def group_seeds(runs: Sequence[EvaluatedRun]) -> list[System]:
    """Group runs that differ only by seed into systems (in first-seen order).

    Runs with one configuration (see the module doc) are replicas when their seeds (run
    seed, model training seed) all differ. When some share their seeds but not their model
    fingerprint, nothing says they are replicas: each model becomes its own system. Two
    runs with the same seeds and the same model would be counted twice and are refused.
    """
    groups: dict[str, list[EvaluatedRun]] = {}
    for run in runs:
        groups.setdefault(run.config_key(), []).append(run)
    systems: list[System] = []
    for members in groups.values():
        seen: dict[tuple[Any, ...], EvaluatedRun] = {}
        for r in members:
            ident = (*r.seed_id, r.model_fingerprint)
            if ident in seen:
                raise XevalError(
                    f"runs {seen[ident].path} and {r.path} are the same system "
                    f"({r.label!r}) with the same seed ({r.seed}) and model; one would be "
                    "counted twice. Remove one or give them distinct model labels.",
                    file=r.path / "run.json",
                )
            seen[ident] = r
        if len({r.seed_id for r in members}) == len(members):
            parts = [members]
        else:  # same seeds, different models: not replicas
            by_model: dict[Any, list[EvaluatedRun]] = {}
            for r in members:
                by_model.setdefault(r.model_fingerprint, []).append(r)
            parts = list(by_model.values())
        fps = [str(part[0].model_fingerprint) for part in parts]
        width = next((n for n in range(8, 65) if len({f[:n] for f in fps}) == len(fps)), 64)
        for part, fp in zip(parts, fps, strict=True):
            name = part[0].short_name
            if len(parts) > 1:
                name += f" [model {fp[:width]}]"
            systems.append(System(name=name, runs=part, per_query=_mean_over_runs(part)))
    _unique_names(systems)
    return systems


def _mean_over_runs(members: Sequence[EvaluatedRun]) -> pl.DataFrame:
    if len(members) == 1:
        return members[0].per_query
    return (
        pl.concat([r.per_query for r in members])
        .group_by(*KEYS, maintain_order=True)
        .agg(pl.col("value").mean())
    )


def _unique_names(systems: list[System]) -> None:
    """Systems sharing a name get what tells them apart: their label, else the first
    configuration field (or sub-field) that differs, else a number."""
    by_name: dict[str, list[System]] = {}
    for s in systems:
        by_name.setdefault(s.name, []).append(s)
    for name, group in by_name.items():
        if len(group) < 2:
            continue
        keys = [json.loads(s.runs[0].config_key()) for s in group]
        if len({k["label"] for k in keys}) == len(group):
            for s, key in zip(group, keys, strict=True):
                s.name = f"{name} [{key['label']}]" if key["label"] != name else name
            continue
        diff = [k for k in keys[0] if len({json.dumps(x[k], default=str) for x in keys}) > 1]
        if not diff:
            continue
        field_ = diff[0]
        for s, key in zip(group, keys, strict=True):
            value = key[field_]
            if isinstance(value, dict):
                subs = [k for k in value if len({json.dumps(x[field_].get(k)) for x in keys}) > 1]
                text = ", ".join(f"{field_}.{k}={_short(value.get(k))}" for k in subs)
            else:
                text = f"{field_}={_short(value)}"
            s.name = f"{name} [{text}]"
    names = [s.name for s in systems]
    for i, s in enumerate(systems):
        if names.count(s.name) > 1:
            s.name = f"{s.name} #{i + 1}"


def _short(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 24 else text[:21] + "..."
