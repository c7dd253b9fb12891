"""One store, one build of each input: the checks that keep a study's cells comparable.

Cells of one plan are made over days, often on other machines, from inputs rebuilt in each
work folder. They compare only if every evaluation of a benchmark used the same build,
every fine-tune of a source trained on the same pairs, and every evaluation of a
fine-tune evaluated the model its train cell stored. The runner refuses to store a cell
that would break one of these (:func:`check_benchmark`, :func:`check_pairs`); the report
states all three over the whole store (:func:`consistency_lines`).
"""

from __future__ import annotations

from collections.abc import Callable

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
    builds = _one_each(evals, "benchmark", _benchmark_fp)
    pairs = _one_each([*trains, *store.records("devcurve")], "source", _pairs_fp)
    lines = []
    if builds:
        lines.append(f"{builds[0]} of {builds[1]} benchmarks were evaluated on one build each "
                     f"(same fingerprint in every cell){_split('build', builds[2])}.")  # fmt: skip
    if pairs:
        lines.append(f"{pairs[0]} of {pairs[1]} training sources gave every fine-tune and dev "
                     f"curve the same pairs{_split('set of pairs', pairs[2])}.")  # fmt: skip
    return lines + _model_lines(trains, evals)


def _one_each(
    recs: list[CellRecord], key: str, fingerprint: Callable[[CellRecord], str | None]
) -> tuple[int, int, list[str]] | None:
    """(groups with one fingerprint, groups, the others) over ``recs`` grouped by meta ``key``."""
    seen: dict[str, set[str]] = {}
    for rec in recs:
        if fp := fingerprint(rec):
            seen.setdefault(str(rec.meta.get(key)), set()).add(fp)
    split = sorted(k for k, fps in seen.items() if len(fps) > 1)
    return (len(seen) - len(split), len(seen), split) if seen else None


def _split(what: str, names: list[str]) -> str:
    return f"; more than one {what}: {', '.join(names)}" if names else ""


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
