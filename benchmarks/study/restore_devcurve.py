"""Restore dev-curve points that a resumed run lost, from the run's console logs.

    python benchmarks/study/restore_devcurve.py \
        benchmarks/results/study/in-domain/cells/devcurve/legal LOG [LOG ...]

Before commit d5cd8a5 a fine-tune resumed from a checkpoint kept only the dev points of its
last call: the stored curve of a cell trained across sessions started at the step of its
last resume. Every point was printed as it was evaluated (``[xeval eval] step N:
MRR@10/mono X, MRR@10/cross Y``, 4 decimals), so the lost ones can be read back.

The script reads those lines from the given logs, checks that a step printed twice (once
before a stop, once again after the resume re-evaluated it) and a step also in the store
agree to the printed 4 decimals, and adds the missing steps to ``dev.parquet``. Stored
points keep their full precision; restored ones have 4 decimals. ``result.json`` records
which steps were restored and from what (``dev_restored``), and the log lines themselves
go beside it (``dev-log.txt``). Exits 1, writing nothing, when two readings disagree.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import polars as pl

from xeval.provenance import atomic_path, write_json, write_text

LINE = re.compile(r"\[xeval eval\] step (\d+): (.*)")
VALUE = re.compile(r"(MRR@10/\w+) ([0-9.]+)")


def read_logs(
    paths: list[Path], stored: set[int]
) -> tuple[dict[int, dict[str, float]], list[str], list[str]]:
    """(step -> metric -> value, the matched lines, problems).

    The logs name no cell, so each must share a step with the store or another log (the
    step a resume evaluated again): that, and equal values there, ties it to this run.
    """
    points: dict[int, dict[str, float]] = {}
    lines, bad, steps = [], [], {}
    for path in paths:
        found = {}
        for m in LINE.finditer(path.read_text(encoding="utf-8", errors="replace")):
            step, vals = int(m.group(1)), {k: float(v) for k, v in VALUE.findall(m.group(2))}
            lines.append(f"{path.name}: {m.group(0)}")
            if step in points and points[step] != vals:
                bad.append(f"step {step}: {points[step]} vs {vals} ({path})")
            points.setdefault(step, vals)
            found[step] = vals
        steps[path] = set(found)
    for path, own in steps.items():
        others = stored.union(*(s for p, s in steps.items() if p != path))
        if not own & others:
            bad.append(f"{path}: shares no step with the store or the other logs")
    return points, lines, bad


def main(cell: Path, logs: list[Path]) -> int:
    stored = pl.read_parquet(cell / "dev.parquet")
    points, lines, bad = read_logs(logs, set(stored["step"].to_list()))
    for row in stored.iter_rows(named=True):
        logged = points.get(row["step"])
        if logged and any(abs(row[k] - v) > 5e-5 for k, v in logged.items()):
            bad.append(f"step {row['step']}: stored {row} vs logged {logged}")
    if bad:
        print("readings disagree; nothing written:\n  " + "\n  ".join(bad), file=sys.stderr)
        return 1
    have = set(stored["step"].to_list())
    missing = sorted(set(points) - have)
    if not missing:
        print(f"{cell}: nothing to restore ({stored.height} points stored)")
        return 0
    extra = pl.DataFrame(
        [{"step": s, **points[s]} for s in missing], schema=stored.schema, orient="row"
    )
    merged = pl.concat([stored, extra]).sort("step")
    with atomic_path(cell / "dev.parquet") as tmp:
        merged.write_parquet(tmp)
    write_text(cell / "dev-log.txt", "\n".join(lines) + "\n")
    meta = json.loads((cell / "result.json").read_text(encoding="utf-8"))
    meta["dev_restored"] = {
        "steps": missing,
        "from": "the run's console logs (dev-log.txt), 4 decimals",
        "why": "a resumed run kept only its last call's dev points (fixed in d5cd8a5)",
        "logs": [p.name for p in logs],
    }
    write_json(cell / "result.json", meta)
    print(f"{cell}: restored {len(missing)} points ({missing[0]}-{missing[-1]}); "
          f"{merged.height} in all")  # fmt: skip
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), [Path(a) for a in sys.argv[2:]]))
