"""The committed results store of a study: one small folder per finished cell.

Layout under ``<store>/cells/<cell id>/`` (written atomically: the folder appears only
complete, and its ``result.json`` is the marker that the cell is done)::

    result.json        provenance: cell, system, seed, precision, fingerprints, versions,
                       command, seconds
    scores.parquet     eval cells: unit_id, kind, query_lang, MRR@10, R@10, R@100, MAP, LB
    card.json          train / devcurve cells: the training card (no weights)
    loss.parquet       train / devcurve cells: step, loss, learning_rate
    dev.parquet        devcurve cells (and train cells that evaluated): step, MRR@10/<kind>
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from xeval.errors import XevalError
from xeval.provenance import atomic_dir, provenance, write_json
from xeval.study.cells import Cell
from xeval.study.plan import Plan

MARKER = "result.json"


def default_store(plan: Plan) -> Path:
    """``benchmarks/results/study/<name>`` beside a plan in ``benchmarks/study/``."""
    here = plan.path.resolve().parent
    if here.name == "study" and here.parent.name == "benchmarks":
        return here.parent / "results" / "study" / plan.name
    return here / "results" / plan.name


def compare_with_stores(plan: Plan) -> list[tuple[str, Store]]:
    """(plan file as written, its store) of each ``compare_with`` plan."""
    from xeval.study.plan import load_plan

    return [
        (rel, Store(default_store(load_plan(plan.path.parent / rel)))) for rel in plan.compare_with
    ]


@dataclass
class CellRecord:
    """A stored cell: its provenance and where its files are."""

    id: str
    folder: Path
    meta: dict[str, Any]

    def table(self, name: str) -> pl.DataFrame | None:
        p = self.folder / f"{name}.parquet"
        return pl.read_parquet(p) if p.is_file() else None

    def json(self, name: str) -> dict[str, Any] | None:
        p = self.folder / f"{name}.json"
        return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None


class Store:
    """Read and write the cells of one plan's store."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def folder(self, cell_id: str) -> Path:
        return self.root / "cells" / cell_id

    def done(self, cell: Cell | str) -> bool:
        cid = cell if isinstance(cell, str) else cell.id
        return (self.folder(cid) / MARKER).is_file()

    def write(
        self,
        cell: Cell,
        meta: dict[str, Any],
        tables: dict[str, pl.DataFrame | None],
        docs: dict[str, Any],
    ) -> Path:
        """Write a finished cell atomically; ``result.json`` is written last."""
        out = self.folder(cell.id)
        with atomic_dir(out, overwrite=True) as tmp:
            for name, df in tables.items():
                if df is not None:
                    df.write_parquet(tmp / f"{name}.parquet", compression="zstd")
            for name, obj in docs.items():
                write_json(tmp / f"{name}.json", obj)
            write_json(tmp / MARKER, provenance(cell=cell.id, **meta))
        return out

    def get(self, cell_id: str) -> CellRecord | None:
        f = self.folder(cell_id)
        if not (f / MARKER).is_file():
            return None
        return CellRecord(cell_id, f, json.loads((f / MARKER).read_text(encoding="utf-8")))

    def records(self, kind: str) -> list[CellRecord]:
        """Every stored cell of ``kind`` (eval | train | devcurve)."""
        base = self.root / "cells" / kind
        if not base.is_dir():
            return []
        out = []
        for marker in sorted(base.rglob(MARKER)):
            cid = str(marker.parent.relative_to(self.root / "cells"))
            out.append(CellRecord(cid, marker.parent, json.loads(marker.read_text("utf-8"))))
        return out

    def scores(self) -> pl.DataFrame:
        """Every eval cell's per-unit scores with system, benchmark, seed, fingerprint."""
        frames = []
        for rec in self.records("eval"):
            df = rec.table("scores")
            if df is None or df.height == 0:
                continue
            m = rec.meta
            frames.append(
                df.with_columns(
                    system=pl.lit(m["system"]),
                    benchmark=pl.lit(m["benchmark"]),
                    seed=pl.lit(m.get("seed"), pl.Int64),
                    fingerprint=pl.lit((m.get("benchmark_info") or {}).get("fingerprint")),
                )
            )
        return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()

    def git_commit(self, cell: Cell, tries: int = 6) -> str:
        """Commit one cell's folder at once (``--git-commit``); return git's message.

        Another git command holding the repository's index lock (a commit made by hand
        beside a running study) is waited for: up to ``tries`` attempts, 1, 2, 4 ... s apart.
        """
        import time

        f = self.folder(cell.id)
        for attempt in range(tries):
            try:
                subprocess.run(["git", "add", "--", str(f)], cwd=f, check=True, capture_output=True)
                r = subprocess.run(
                    ["git", "commit", "-m", f"study {self.root.name}: {cell.id}", "--", str(f)],
                    cwd=f,
                    capture_output=True,
                    text=True,
                )
            except subprocess.CalledProcessError as exc:
                r = subprocess.CompletedProcess(exc.cmd, exc.returncode, "", str(exc.stderr))
            except OSError as exc:
                raise XevalError(f"--git-commit failed: {exc}", file=f) from None
            if r.returncode == 0 or "index.lock" not in (r.stderr or "") or attempt == tries - 1:
                break
            time.sleep(2**attempt)
        if r.returncode != 0:
            raise XevalError(f"--git-commit failed: {r.stderr.strip() or r.stdout.strip()}", file=f)
        return r.stdout.strip().splitlines()[0] if r.stdout.strip() else "committed"
