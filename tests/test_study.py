"""xeval study: plan parsing, balanced order, a two-cell plan end to end with kill and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import REPO, make_tiny_benchmark
from xeval.errors import XevalError
from xeval.study.cells import plan_cells
from xeval.study.plan import load_plan
from xeval.study.runner import RunOptions, run_study, study_status
from xeval.study.store import Store

PAIR_TEXT = {
    "en": ("Where does the {} live?", "The {} lives in the {}."),
    "de": ("Wo lebt der {}?", "Der {} lebt im {}."),
    "fr": ("Où vit le {} ?", "Le {} vit dans le {}."),
}
ANIMALS = ["fox", "owl", "bee", "cod", "elk", "yak", "ant", "bat", "eel", "emu", "gnu", "cat"]
PLACES = ["forest", "barn", "hive", "sea", "hills", "steppe", "nest", "cave", "river", "bush"]


def write_pairs(path: Path, n: int = 12) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            for lang, (q, p) in PAIR_TEXT.items():
                rec = {
                    "unit_id": f"u{i}",
                    "lang": lang,
                    "query": q.format(ANIMALS[i]),
                    "passage": p.format(ANIMALS[i], PLACES[i % 10]),
                }
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path


def write_plan(tmp: Path, model: Path, body: str = "", baselines: str = "[]") -> Path:
    bench = make_tiny_benchmark().save(tmp / "bench")
    pairs = write_pairs(tmp / "pairs.jsonl")
    text = f"""
[study]
name = "tiny"
base_model = "{model}"

[training]
steps = 3
steps_from = "test"
batch_size = 4
max_length = 32
seeds = [0]
save_steps = 2
logging_steps = 1

[[sources]]
name = "toy"
pairs = "parallel-jsonl"
source = "{pairs}"
dev_units = 4

[[strategies]]
name = "hybrid"
alpha = 0.5

[[benchmarks]]
name = "tiny"
path = "{bench}"
domain = "general"

[baselines]
models = {baselines}
{body}
"""
    (tmp / "plan.toml").write_text(text, encoding="utf-8")
    return tmp / "plan.toml"


def study(tmp: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "XEVAL_CACHE": str(tmp / "cache"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "xeval", "study", *args]
    return subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_plan_errors(tmp_path: Path) -> None:
    p = tmp_path / "p.toml"
    p.write_text('[study]\nbase_model = "m"\n[[benchmarks]]\nname = "b"\n')
    with pytest.raises(XevalError, match="give builder or path"):
        load_plan(p)
    p.write_text('[study]\nbase_model = "m"\n[training]\nsteps = "x" = 1\n')
    with pytest.raises(XevalError, match="not valid TOML"):
        load_plan(p)
    p.write_text('[study]\nbase_model = "m"\n[training]\nstep = 1\n[[benchmarks]]\nname="b"\n')
    with pytest.raises(XevalError, match=r"unknown key\(s\) \['step'\]"):
        load_plan(p)


def test_committed_plans_parse() -> None:
    for name in ("general", "in-domain"):
        plan = load_plan(REPO / "benchmarks" / "study" / f"{name}.toml")
        assert plan_cells(plan)


def test_balanced_order(tmp_path: Path) -> None:
    body = (
        '[[strategies]]\nname = "xx"\n[[strategies]]\nname = "xy"\n'
        "[alpha_curve]\nalphas = [0.25, 0.75]\nseeds = [0]\n"
    )
    p = write_plan(tmp_path, Path("m"), body, '["base"]')
    text = p.read_text().replace("seeds = [0]\nsave", "seeds = [0, 1, 2]\nsave")
    p.write_text(text)
    ids = [c.id for c in plan_cells(load_plan(p))]
    trains = [i for i in ids if i.startswith("train/")]
    assert ids[0] == "eval/base/tiny"
    seeds = [int(t.rsplit("-s", 1)[1]) for t in trains]
    assert seeds == sorted(seeds)  # every strategy gets seed 0 before any gets seed 1
    assert trains[:5] == [
        "train/toy-hybrid-a0.5-s0",
        "train/toy-xx-s0",
        "train/toy-xy-s0",
        "train/toy-hybrid-a0.25-s0",
        "train/toy-hybrid-a0.75-s0",
    ]
    assert len(trains) == 3 * 3 + 2
    # each fine-tune is followed by its evaluations
    i = ids.index("train/toy-xy-s1")
    assert ids[i + 1] == "eval/toy-xy-s1/tiny"


def test_waits_for_steps(tmp_path: Path, tiny_model: Path) -> None:
    p = write_plan(tmp_path, tiny_model)
    p.write_text(p.read_text().replace("steps = 3", "steps = 0"))
    st = study_status(load_plan(p), tmp_path / "store")
    assert all("not decided" in why for _, why in st.pending)


def test_two_cells_kill_resume_report(tmp_path: Path, tiny_model: Path) -> None:
    """Train + eval, killed after the first stored cell, resumed; equals an uninterrupted run."""
    plan = write_plan(tmp_path, tiny_model)
    store = tmp_path / "store"
    proc = study(tmp_path, "run", str(plan), "--store", str(store), "--work", str(tmp_path / "w"))
    first = None
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("stored "):
            first = line.split()[1]
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=120)
    assert first == "train/toy-hybrid-a0.5-s0"
    marker = store / "cells" / first / "result.json"
    before = marker.read_bytes()
    again = study(tmp_path, "run", str(plan), "--store", str(store), "--work", str(tmp_path / "w"))
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out
    assert f"stored {first}" not in out  # the finished cell is not redone
    assert "2 of 2 cells done" in out
    assert marker.read_bytes() == before

    # an uninterrupted run in another work folder gives the same per-unit scores
    ref = tmp_path / "ref"
    res = run_study(
        load_plan(plan), RunOptions(work=tmp_path / "w2", store=ref, log=lambda m: None)
    )
    assert res.ran == [first, "eval/toy-hybrid-a0.5-s0/tiny"]
    a, b = Store(store).scores(), Store(ref).scores()
    assert a.height > 0
    assert a.sort("unit_id", "kind", "query_lang").drop("system").equals(
        b.sort("unit_id", "kind", "query_lang").drop("system")
    )
    card = json.loads((store / "cells" / first / "card.json").read_text())
    assert card["training"]["global_step"] == 3
    assert pl.read_parquet(store / "cells" / first / "loss.parquet").height >= 1

    # the report reads the store alone (the work folders are gone)
    import shutil

    shutil.rmtree(tmp_path / "w")
    shutil.rmtree(tmp_path / "w2")
    from xeval.study.report import build_report

    rep = build_report(load_plan(plan), store, tmp_path / "rep")
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "toy-hybrid" in md and "missing" in md.lower()
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "<img" in html or "no figure" in html
    assert "verdict" in rep.summary().lower()

