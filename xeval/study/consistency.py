"""One store, one build of each input: the checks that keep a study's cells comparable.

Cells of one plan are made over days, often on other machines, from inputs rebuilt in each
work folder. They compare only if every evaluation of a benchmark used the same build,
every fine-tune of a source trained on the same pairs, and every evaluation of a
fine-tune evaluated the model its train cell stored. The runner refuses to store a cell
that would break one of these (:func:`check_benchmark`, :func:`check_pairs`); the report
states all three over the whole store (:func:`consistency_lines`).
"""

from __future__ import annotations

from xeval.errors import XevalError
from xeval.study.store import CellRecord, Store


def _benchmark_fp(rec: CellRecord) -> str | None:
    return (rec.meta.get("benchmark_info") or {}).get("fingerprint")


def _pairs_fp(rec: CellRecord) -> str | None:
    return rec.meta.get("pairs_fingerprint") or (rec.meta.get("pairs") or {}).get("fingerprint")


def check_benchmark(store: Store, benchmark: str, fingerprint: str | None) -> None:
    """An :class:`XevalError` when the store's evaluations of ``benchmark`` used another build."""
    for rec in store.records("eval"):
        have = _benchmark_fp(rec)
        if rec.meta.get("benchmark") == benchmark and have and fingerprint and have != fingerprint:
            raise XevalError(
                f"benchmark {benchmark} built here has fingerprint {fingerprint[:12]}, but "
                f"{rec.id} was evaluated on build {have[:12]}: the builder or its sources "
                "changed, and cells on two builds would be compared as one. Restore the "
                "sources (or the xeval version) that built it, or start a new store.",
                file=rec.folder / "result.json",
            )


def check_pairs(store: Store, source: str, fingerprint: str | None) -> None:
    """An :class:`XevalError` when the store's fine-tunes of ``source`` used other pairs."""
    for rec in [*store.records("train"), *store.records("devcurve")]:
        have = _pairs_fp(rec)
        if rec.meta.get("source") == source and have and fingerprint and have != fingerprint:
            raise XevalError(
                f"training pairs of source {source} built here have fingerprint "
                f"{fingerprint[:12]}, but {rec.id} trained on pairs {have[:12]}: seeds and "
                "strategies would differ in their data, not only in what they test. Restore "
                "the sources (or the xeval version) that built them, or start a new store.",
                file=rec.folder / "result.json",
            )


def consistency_lines(store: Store) -> list[str]:
    """One sentence per check, over every stored cell (empty for an empty store)."""
    evals, trains = store.records("eval"), store.records("train")
    lines = []
    builds: dict[str, set[str]] = {}
    for rec in evals:
        if fp := _benchmark_fp(rec):
            builds.setdefault(str(rec.meta.get("benchmark")), set()).add(fp)
    if builds:
        split = sorted(b for b, fps in builds.items() if len(fps) > 1)
        lines.append(
            f"{len(builds) - len(split)} of {len(builds)} benchmarks were evaluated on one "
            "build each (same fingerprint in every cell)"
            + (f"; more than one build: {', '.join(split)}" if split else "")
            + "."
        )
    pairs: dict[str, set[str]] = {}
    for rec in [*trains, *store.records("devcurve")]:
        if fp := _pairs_fp(rec):
            pairs.setdefault(str(rec.meta.get("source")), set()).add(fp)
    if pairs:
        split = sorted(s for s, fps in pairs.items() if len(fps) > 1)
        lines.append(
            f"{len(pairs) - len(split)} of {len(pairs)} training sources gave every fine-tune "
            "and dev curve the same pairs"
            + (f"; more than one set of pairs: {', '.join(split)}" if split else "")
            + "."
        )
    return lines + _model_lines(trains, evals)


def _model_lines(trains: list[CellRecord], evals: list[CellRecord]) -> list[str]:
    models = {
        str(r.meta.get("system")): (r.meta.get("model") or {}).get("fingerprint") for r in trains
    }
    mine = [r for r in evals if str(r.meta.get("system")) in models]
    if not mine:
        return []
    odd = [r.id for r in mine
           if (r.meta.get("model") or {}).get("fingerprint") != models[str(r.meta["system"])]]  # fmt: skip
    text = (f"{len(mine) - len(odd)} of {len(mine)} evaluations of a fine-tune evaluated "
            "the model its train cell stored (same fingerprint)")  # fmt: skip
    return [text + (f"; they differ for {', '.join(odd)}" if odd else "") + "."]
