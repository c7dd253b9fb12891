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
from xeval.study.runner import Runner, RunOptions, run_study
from xeval.study.status import study_status
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
    p.write_text(
        '[study]\nbase_model = "m"\n[[benchmarks]]\nname = "b"\nbuilder = "x"\n'
        "options = { size = 10, seed = 0 }\n"
    )
    with pytest.raises(XevalError, match=r"set \['seed'\] as keys of \[\[benchmarks\]\]"):
        load_plan(p)


def test_committed_plans_parse() -> None:
    for name in ("general", "in-domain"):
        plan = load_plan(REPO / "benchmarks" / "study" / f"{name}.toml")
        assert plan_cells(plan)


def test_committed_plans_build_shared_benchmarks_alike() -> None:
    """The in-domain report sets general fine-tunes beside its own only on identical builds."""
    general, in_domain = (
        load_plan(REPO / "benchmarks" / "study" / f"{n}.toml") for n in ("general", "in-domain")
    )
    spec = {b.name: b for b in general.benchmarks}
    for b in in_domain.benchmarks:
        g = spec[b.name]
        assert (b.builder, b.source, b.sample_queries, b.seed, b.options) == (
            g.builder,
            g.source,
            g.sample_queries,
            g.seed,
            g.options,
        ), b.name


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


def test_only_selects_cells_by_glob(tmp_path: Path) -> None:
    from xeval.errors import XevalError
    from xeval.study.runner import select_cells

    body = '[[strategies]]\nname = "xx"\n[[strategies]]\nname = "xy"\n'
    plan = load_plan(write_plan(tmp_path, Path("m"), body, '["base"]'))
    kinds = ("eval", "train", "devcurve")
    every = plan_cells(plan)
    assert select_cells(every, kinds) == every
    ids = [c.id for c in select_cells(every, kinds, ("train/toy-x*", "eval/toy-xy-*"))]
    assert ids == ["train/toy-xx-s0", "train/toy-xy-s0", "eval/toy-xy-s0/tiny"]
    assert [c.id for c in select_cells(every, ("eval",), ("*/toy-xx-s0*",))] == [
        "eval/toy-xx-s0/tiny"
    ]
    with pytest.raises(XevalError, match="matches no cell"):
        select_cells(every, kinds, ("train/legal-*",), plan.name)
    from click.testing import CliRunner

    from xeval.cli import main

    plan_file = tmp_path / "plan.toml"
    args = ["study", "run", str(plan_file), "--work", str(tmp_path / "w"), "--only", "x/y"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2 and "matches no cell" in res.output


def test_two_workers_share_a_plan(tmp_path: Path, tiny_model: Path) -> None:
    """Two `xeval study run` on one plan and work folder: every cell runs exactly once."""
    body = '[[strategies]]\nname = "xx"\n'
    plan = write_plan(tmp_path, tiny_model, body, baselines='["base"]')
    args = ("run", str(plan), "--store", str(tmp_path / "s"), "--work", str(tmp_path / "w"))
    procs = [study(tmp_path, *args, "--poll", "0.5") for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    stored = [ln.split()[1] for out in outs for ln in out.splitlines() if ln.startswith("stored ")]
    ids = [c.id for c in plan_cells(load_plan(plan))]
    assert sorted(stored) == sorted(ids) and len(ids) == 5  # each cell once, none twice
    assert all(Store(tmp_path / "s").done(c) for c in ids)


def test_claims(tmp_path: Path) -> None:
    """A held claim is refused to a second holder; errors of the claimed work pass through."""

    opts = RunOptions(work=tmp_path / "w", store=tmp_path / "s", log=lambda m: None)
    runner = Runner(load_plan(write_plan(tmp_path, Path("m"))), opts)
    with runner.claim("eval/x") as first, runner.claim("eval/x") as second:
        assert first and not second
    with runner.claim("eval/x") as again:
        assert again  # released with its holder
    with pytest.raises(XevalError, match="another xeval process"), runner.claim("eval/y"):
        raise XevalError("another xeval process is writing it")


def test_status_shows_the_cells_workers_hold(tmp_path: Path) -> None:
    """A claim held by a live process reads as running; a released or stale one does not."""
    import subprocess
    import sys

    plan = load_plan(write_plan(tmp_path, Path("m")))
    opts = RunOptions(work=tmp_path / "w", store=tmp_path / "s", log=lambda m: None)
    runner = Runner(plan, opts)
    cell = study_status(plan, tmp_path / "s").pending[0][0]
    with runner.claim(cell) as mine:
        assert mine
    assert study_status(plan, tmp_path / "s", tmp_path / "w").running == []
    lock = runner.claim_path(cell)
    lock = lock.with_name(f".{lock.name}.lock")
    lock.touch()  # left behind by a killed worker: nobody holds it
    assert study_status(plan, tmp_path / "s", tmp_path / "w").running == []
    code = (
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR);"
        "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(lock)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout and holder.stdout.readline().strip() == b"held"
        st = study_status(plan, tmp_path / "s", tmp_path / "w")
        assert [c for c, _ in st.running] == [cell]
        assert f"running: {cell}" in st.summary() and f"next: {cell}" not in st.summary()
        with runner.claim(cell) as mine:  # the probe left the holder's lock intact
            assert not mine
    finally:
        holder.kill()
        holder.wait()


def test_waits_for_steps(tmp_path: Path, tiny_model: Path) -> None:
    p = write_plan(tmp_path, tiny_model)
    p.write_text(p.read_text().replace("steps = 3", "steps = 0"))
    st = study_status(load_plan(p), tmp_path / "store")
    assert all("not decided" in why for _, why in st.pending)
    assert st.untimed == len(st.pending) and "no estimate" in st.summary()


def test_status_costs_fine_tunes_from_the_dev_curve(tmp_path: Path) -> None:
    """Before any fine-tune is stored, its cost is the dev curve's seconds per step times
    the source's planned steps."""
    from xeval.study.cells import Cell

    plan = load_plan(write_plan(tmp_path, Path("m")))  # source toy, 3 steps
    store = Store(tmp_path / "store")
    card = {"training": {"seconds_per_step": 12.5}}
    store.write(Cell("devcurve", source="toy"), {"source": "toy"}, {}, {"card": card})
    st = study_status(plan, tmp_path / "store")
    trains = [c for c, _ in st.pending if c.startswith("train/")]
    assert trains and st.untimed == len(st.pending) - len(trains)
    assert st.left_s == pytest.approx(12.5 * 3 * len(trains))


def test_status_costs_a_resumed_fine_tune_as_a_whole(tmp_path: Path) -> None:
    """A fine-tune resumed at step 350 of 400 timed only its last 50 steps; status costs
    it at its seconds per step times all 400 (plus what the cell spent outside training)."""
    p = write_plan(tmp_path, Path("m"))  # source toy, 3 steps, seed 0
    train = next(c for c in plan_cells(load_plan(p)) if c.kind == "train")
    tr = {"resumed_from": "ckpt-2", "seconds_per_step": 10.0, "max_steps": 3}
    card = {"training": {**tr, "train_seconds_this_call": 10.0}}
    meta = {"source": "toy", "system": train.system.name, "seconds": 15.0}
    Store(tmp_path / "store").write(train, meta, {}, {"card": card})
    more = p.with_name("more.toml")
    more.write_text(p.read_text().replace("seeds = [0]\nsave", "seeds = [0, 1]\nsave"))
    st = study_status(load_plan(more), tmp_path / "store")
    trains = [c for c, _ in st.pending if c.startswith("train/")]
    assert trains == ["train/toy-hybrid-a0.5-s1"]
    assert st.left_s == pytest.approx(15.0 - 10.0 + 10.0 * 3)


def test_status_divides_the_work_left_by_the_workers_running() -> None:
    from xeval.study.status import StatusResult

    pending = [("eval/a", ""), ("eval/b", ""), ("eval/c", "")]
    st = StatusResult("p", Path("s"), [], pending, left_s=3 * 3600.0)
    assert "3.0 h of work left" in st.summary() and "wall" not in st.summary()
    st.running = [("eval/a", 0.0), ("eval/b", 0.0)]
    assert "1.5 h of wall time with the 2 workers running now" in st.summary()


def test_figures_grey_every_baseline_the_plan_names() -> None:
    """A baseline model named like a source ("multilingual-e5-base") is untrained, not a
    training source called "multilingual"."""
    from xeval.study.figures import source_colors, training_source

    groups = ["base", "multilingual-e5-base", "legal-xx", "legal-hybrid-a0.5"]
    colors = source_colors(groups, ("base", "multilingual-e5-base"))
    assert colors["base"] == colors["multilingual-e5-base"] == "#8c8c8c"
    assert colors["legal-xx"] == colors["legal-hybrid-a0.5"] != "#8c8c8c"
    assert training_source("multilingual-e5-base", ("multilingual-e5-base",)) == "untrained"


def test_a_training_source_keeps_its_colour_across_figures() -> None:
    """Given the report's source order, a source's colour does not depend on which other
    sources one figure shows (it did: mlqa was green beside legal, blue beside technical)."""
    from xeval.study.figures import source_colors

    order = ["legal", "mlqa", "technical"]
    one = source_colors(["base", "legal-xx", "mlqa-xx"], ("base",), order)
    two = source_colors(["base", "mlqa-xx", "technical-xx"], ("base",), order)
    assert one["mlqa-xx"] == two["mlqa-xx"]
    assert len({one["legal-xx"], one["mlqa-xx"], two["technical-xx"], one["base"]}) == 4


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
    assert (
        a.sort("unit_id", "kind", "query_lang")
        .drop("system")
        .equals(b.sort("unit_id", "kind", "query_lang").drop("system"))
    )
    card = json.loads((store / "cells" / first / "card.json").read_text())
    assert card["training"]["global_step"] == 3
    assert pl.read_parquet(store / "cells" / first / "loss.parquet").height >= 1

    # each cell records its cost; status estimates the cells left from them
    secs = [json.loads(m.read_text())["seconds"] for m in sorted(store.rglob("result.json"))]
    assert len(secs) == 2 and all(x > 0 for x in secs)
    more = plan.with_name("more.toml")
    more.write_text(plan.read_text().replace("seeds = [0]\nsave", "seeds = [0, 1]\nsave"))
    st = study_status(load_plan(more), store)
    assert len(st.pending) == 2 and st.untimed == 0
    assert st.left_s == pytest.approx(sum(secs))

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


def test_a_model_retrained_elsewhere_must_be_the_stored_one(
    tmp_path: Path, tiny_model: Path
) -> None:
    """A new machine (work folder gone) retrains a fine-tune before evaluating it, and
    evaluates it only when the retrain equals the model its stored train cell records."""
    import shutil

    plan = load_plan(write_plan(tmp_path, tiny_model))
    store, work, ev = tmp_path / "store", tmp_path / "w", "eval/toy-hybrid-a0.5-s0/tiny"
    run_study(plan, RunOptions(work=work, store=store, log=lambda m: None))
    before = Store(store).get(ev)
    assert before is not None

    def on_a_new_machine() -> list[str]:
        shutil.rmtree(work)
        shutil.rmtree(Store(store).folder(ev))
        lines: list[str] = []
        run_study(plan, RunOptions(work=work, store=store, log=lines.append))
        return lines

    lines = on_a_new_machine()
    assert any("retrained toy-hybrid-a0.5-s0: same fingerprint" in x for x in lines)
    after = Store(store).get(ev)
    assert after is not None and after.meta["model"] == before.meta["model"]

    marker = Store(store).folder("train/toy-hybrid-a0.5-s0") / "result.json"
    meta = json.loads(marker.read_text())
    meta["model"]["fingerprint"] = "0" * 64  # as if the first machine trained another model
    marker.write_text(json.dumps(meta))
    from xeval.study.report import build_report

    build_report(plan, store, tmp_path / "rep")  # the report finds the mismatch too
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "0 of 1 evaluations of a fine-tune evaluated the model its train cell stored" in md
    assert f"they differ for {ev}" in md
    with pytest.raises(XevalError, match="not reproducible on this machine") as err:
        on_a_new_machine()
    assert err.value.file == str(marker)
    assert not Store(store).done(ev)  # nothing half-written


def test_a_store_holds_one_build_of_each_input(tmp_path: Path, tiny_model: Path) -> None:
    """A benchmark or pairs rebuilt differently (new machine, changed sources) is refused
    before a cell is stored, and the report's consistency checks name the split."""
    import shutil

    from xeval.study.consistency import consistency_lines

    plan = load_plan(write_plan(tmp_path, tiny_model, baselines='["base"]'))
    store, work = Store(tmp_path / "store"), tmp_path / "w"
    ev = "eval/toy-hybrid-a0.5-s0/tiny"
    run_study(plan, RunOptions(work, store.root, log=lambda m: None))
    assert consistency_lines(store)[:2] == [
        "1 of 1 benchmarks were evaluated on one build each (same fingerprint in every cell).",
        "1 of 1 training sources gave every fine-tune and dev curve the same pairs.",
    ]

    def tamper(cell_id: str, key: str) -> Path:
        marker = store.folder(cell_id) / "result.json"
        meta = json.loads(marker.read_text())
        if key == "benchmark_info":
            meta[key]["fingerprint"] = "b" * 64
        else:
            meta[key] = "p" * 64
        marker.write_text(json.dumps(meta))
        return marker

    marker = tamper("eval/base/tiny", "benchmark_info")  # as if built from other sources
    assert "more than one build: tiny" in consistency_lines(store)[0]
    shutil.rmtree(store.folder(ev))
    with pytest.raises(XevalError, match="evaluated on build bbbbbbbbbbbb") as err:
        run_study(plan, RunOptions(work, store.root, log=lambda m: None))
    assert err.value.file == str(marker) and not store.done(ev)

    shutil.rmtree(store.folder("eval/base/tiny"))
    marker = tamper("train/toy-hybrid-a0.5-s0", "pairs_fingerprint")
    shutil.rmtree(work)  # a new machine: the model is retrained, from pairs built anew
    with pytest.raises(XevalError, match="trained on pairs pppppppppppp") as err:
        run_study(plan, RunOptions(work, store.root, log=lambda m: None))
    assert err.value.file == str(marker) and not store.done(ev)


def test_until_parses_clock_times_and_durations() -> None:
    """--until HH:MM is the next such local time; +DURATION counts from now."""
    from datetime import datetime

    from xeval.cli.study import parse_until

    now = datetime(2026, 11, 30, 6, 20).timestamp()
    assert parse_until("+90m", now) == now + 5400
    assert parse_until("+1h30m", now) == parse_until("+5400s", now) == now + 5400
    assert parse_until("06:50", now) == datetime(2026, 11, 30, 6, 50).timestamp()
    assert parse_until("6:05", now) == datetime(2026, 12, 1, 6, 5).timestamp()  # tomorrow
    for bad in ("+", "25:00", "soon", "90m", "+1d"):
        with pytest.raises(ValueError, match="neither HH:MM nor"):
            parse_until(bad, now)


def test_until_rejects_a_bad_deadline_with_exit_2(tmp_path: Path, tiny_model: Path) -> None:
    from click.testing import CliRunner

    from xeval.cli import main

    plan = write_plan(tmp_path, tiny_model)
    r = CliRunner().invoke(main, ["study", "run", str(plan), "--until", "later"])
    assert r.exit_code == 2 and "neither HH:MM nor +DURATION" in r.output


def test_too_late_spares_fine_tunes_but_not_long_evaluations(tmp_path: Path) -> None:
    """An evaluation must fit before the deadline; a fine-tune needs only min_start_s,
    since it checkpoints and stops in time."""
    import time

    from xeval.study.cells import Cell, System
    from xeval.study.costs import CellCosts
    from xeval.study.plan import Strategy
    from xeval.study.runner import too_late

    costs = CellCosts({("eval", "tiny"): 600.0})
    ft = System("toy-xx-s0", "toy", Strategy("xx"), 0)
    ev, tr, other = Cell("eval", ft, "tiny"), Cell("train", ft), Cell("eval", ft, "big")

    def opts(left_s: float) -> RunOptions:
        return RunOptions(tmp_path, tmp_path, deadline=time.time() + left_s, min_start_s=300)

    assert too_late(ev, costs, opts(900)) is None
    assert "needs ≈ 10 min" in (too_late(ev, costs, opts(420)) or "")
    assert too_late(tr, costs, opts(420)) is None
    assert too_late(other, costs, opts(420)) is None  # no cost known: it starts
    assert "min to the deadline" in (too_late(tr, costs, opts(100)) or "")


def test_stop_by_saves_and_stops_before_the_deadline() -> None:
    import time

    from transformers import TrainerControl, TrainerState

    from xeval.training.callbacks import StopBy

    far, near = StopBy(time.time() + 3600, margin_s=60), StopBy(time.time() + 30, margin_s=60)
    for cb in (far, near):
        state, control = TrainerState(global_step=4), TrainerControl()
        cb.on_step_begin(None, state, control)
        cb.on_step_end(None, state, control)
        stopped = cb is near
        assert (control.should_save, control.should_training_stop) == (stopped, stopped)
        assert cb.stopped_at == (4 if stopped else None)


def test_a_deadline_checkpoints_the_fine_tune_and_the_next_run_resumes(
    tmp_path: Path, tiny_model: Path
) -> None:
    import time

    plan = load_plan(write_plan(tmp_path, tiny_model))
    store, work = tmp_path / "store", tmp_path / "w"
    late = run_study(plan, RunOptions(work, store, deadline=time.time() - 1, log=print))
    assert late.ran == [] and len(late.late) == 2
    assert "2 cell(s) not started before the deadline" in late.summary()

    opts = RunOptions(work, store, deadline=time.time() + 55, min_start_s=0, log=print)
    res = run_study(plan, opts)  # StopBy's 60 s margin: it stops after the first step
    assert res.ran == [] and res.stopped is not None
    assert res.stopped.startswith("train/toy-hybrid-a0.5-s0: stopped for the deadline at step 1")
    assert not Store(store).done("train/toy-hybrid-a0.5-s0")
    ckpt = work / "tiny" / "ft" / "toy-hybrid-a0.5-s0" / "checkpoints"
    assert [p.name for p in ckpt.iterdir()] == ["checkpoint-1"]

    res = run_study(plan, RunOptions(work, store, log=print))
    assert res.ran == ["train/toy-hybrid-a0.5-s0", "eval/toy-hybrid-a0.5-s0/tiny"]
    card = Store(store).get("train/toy-hybrid-a0.5-s0").json("card")
    assert card["training"]["global_step"] == 3
    assert "checkpoint-1" in str(card["training"]["resumed_from"])


def fake_store(
    tmp: Path,
    shift: dict[str, float],
    source: str = "toy",
    extra: str = "",
    seed_shift: dict[str, list[float]] | None = None,
) -> tuple[Path, Path]:
    """A store with eval cells of made-up per-unit scores (no model involved)."""
    import numpy as np

    from xeval.study.store import default_store

    body = '[[strategies]]\nname = "xx"\n[[strategies]]\nname = "xy"\n'
    body += "[alpha_curve]\nalphas = [0.25]\nseeds = [0]\n"
    plan_path = write_plan(tmp, Path("m"), body, '["base"]')
    text = plan_path.read_text().replace("seeds = [0]\nsave", "seeds = [0, 1]\nsave")
    text = text.replace('name = "toy"', f'name = "{source}"').replace("[study]", "[study]" + extra)
    plan_path.write_text(text.replace('name = "tiny"\nbase', f'name = "{source}-plan"\nbase'))
    plan = load_plan(plan_path)
    store = Store(default_store(plan))
    rng = np.random.default_rng(0)
    base = rng.uniform(0.3, 0.7, size=60)
    for cell in plan_cells(plan):
        if cell.id == f"eval/{source}-hybrid-a0.25-s0/tiny":
            continue  # left missing on purpose
        s = cell.system
        assert s is not None
        if cell.kind == "train":
            store.write(cell, {"system": s.name, "source": source, "languages": ["en"]}, {}, {})
            continue
        group = s.name.rsplit("-s", 1)[0].replace(source, "toy") if s.trained else s.name
        rows = []
        for kind in ("mono", "cross", "multi"):
            for lang in ("en", "de"):
                by_seed = (seed_shift or {}).get(group, [0.0, 0.0])
                v = base + shift.get(group, 0.0) + rng.normal(0, 0.01, size=base.size)
                v = v + (by_seed[s.seed] if s.seed is not None else 0.0)
                for u, x in enumerate(v):
                    lb = 5.0 if kind == "multi" else None
                    rows.append((f"u{u}", kind, lang, x, x, x, x, lb))
        cols = ["unit_id", "kind", "query_lang", "MRR@10", "R@10", "R@100", "MAP", "LB"]
        df = pl.DataFrame(
            rows,
            schema=dict.fromkeys(cols[:3], pl.String) | dict.fromkeys(cols[3:], pl.Float64),
            orient="row",
        )
        meta = {"system": s.name, "benchmark": cell.benchmark, "seed": s.seed}
        store.write(cell, meta, {"scores": df}, {})
    return plan_path, store.root


@pytest.mark.parametrize(
    ("shift", "expected"),
    [
        ({"toy-hybrid-a0.5": 0.05, "toy-xx": 0.0, "toy-xy": 0.02}, "supports"),
        ({"toy-hybrid-a0.5": -0.05, "toy-xx": 0.0, "toy-xy": 0.0}, "contradicts"),
        ({"toy-hybrid-a0.5": 0.0, "toy-xx": 0.0, "toy-xy": 0.0}, "inconclusive"),
    ],
)
def test_report_from_store(tmp_path: Path, shift: dict[str, float], expected: str) -> None:
    from xeval.study.report import build_report

    plan_path, store = fake_store(tmp_path, shift)
    rep = build_report(load_plan(plan_path), store, tmp_path / "rep")
    assert list(rep.verdicts.values()) == [expected]
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "Missing cells (1): eval/toy-hybrid-a0.25-s0/tiny" in md
    assert "| mono | toy-hybrid-a0.5 | 2 |" in md  # two seeds averaged
    assert "p (Holm)" in md and "seen" in md
    behind = md.split("### The tests behind the verdicts")[1].split("\n## ")[0]
    assert behind.count("| tiny |") == 6  # 3 kinds x (hybrid - xx, hybrid - xy)
    assert {p.name for p in rep.figures} >= {"bars-tiny.png", "alpha-toy.png"}
    alpha = md.split("## Alpha curve")[1].split("\n## ")[0]
    assert "| benchmark | kind | 0 (X-Y) | 0.5 | 1 (X-X) | seed SD |" in alpha
    assert alpha.count("| tiny |") == 3  # one row per kind, one column per alpha
    html = (tmp_path / "rep" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(rep.figures)


def test_verdict_counts_the_seeds(tmp_path: Path) -> None:
    """A mean gain that one seed makes and the other undoes is no evidence: with the seeds
    counted, the same +0.02 that is clear over units alone decides nothing."""
    from xeval.study.report import build_report

    shift = {"toy-hybrid-a0.5": 0.02, "toy-xx": 0.0, "toy-xy": 0.0}
    plan_path, store = fake_store(tmp_path / "a", shift)
    assert list(build_report(load_plan(plan_path), store, tmp_path / "ra").verdicts.values()) == [
        "supports"
    ]
    plan_path, store = fake_store(
        tmp_path / "b", shift, seed_shift={"toy-hybrid-a0.5": [0.06, -0.06]}
    )
    rep = build_report(load_plan(plan_path), store, tmp_path / "rb")
    assert list(rep.verdicts.values()) == ["inconclusive"]
    md = (tmp_path / "rb" / "report.md").read_text()
    assert "| 2 v 2 |" in md and "seed-aware" in md


def test_no_verdict_from_part_of_the_seeds(tmp_path: Path) -> None:
    """Seed 0 alone, however clear, is not a verdict: the report waits for every seed."""
    import shutil

    from xeval.study.report import build_report

    plan_path, store = fake_store(tmp_path, {"toy-hybrid-a0.5": 0.05, "toy-xy": 0.02})
    shutil.rmtree(Store(store).folder("eval/toy-xx-s1/tiny"))
    rep = build_report(load_plan(plan_path), store, tmp_path / "rep")
    assert list(rep.verdicts.values()) == ["incomplete"]
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "incomplete: 1 of 6 cells missing" in md
    assert "**Seeds still missing.**" in md  # the one-seed tests are flagged as optimistic
    full = build_report(load_plan(plan_path), fake_store(tmp_path / "f", {})[1], tmp_path / "rf")
    assert "Seeds still missing" not in full.markdown.read_text()


def test_devcurve_cell(tmp_path: Path, tiny_model: Path) -> None:
    from xeval.study.analysis import suggest_steps
    from xeval.study.report import devcurve_summary

    body = "[devcurve]\nsource = 'toy'\nevery = 2\nmax_steps = 4\n"
    plan = load_plan(write_plan(tmp_path, tiny_model, body))
    opts = RunOptions(
        work=tmp_path / "w", store=tmp_path / "store", kinds=("devcurve",), log=lambda m: None
    )
    res = run_study(plan, opts)
    assert res.ran == ["devcurve/toy"]
    rec = Store(tmp_path / "store").get("devcurve/toy")
    assert rec is not None and rec.meta["dev_benchmark"]["queries"] == 4 * 3  # 4 units x 3 langs
    dev = rec.table("dev")
    assert dev is not None and dev["step"].to_list() == [0, 2, 4]
    assert suggest_steps(dev) in (0, 2, 4)
    assert "suggested steps" in devcurve_summary(plan, Store(tmp_path / "store"))
    # held-out units never reach training
    folder = tmp_path / "w" / "tiny" / "pairs" / "toy"
    train = set(pl.read_parquet(folder / "train.parquet")["unit_id"])
    dev_units = set(pl.read_parquet(folder / "dev-bench" / "queries.parquet")["unit_id"])
    assert len(train) == 12 - 4 and len(dev_units) == 4 and not train & dev_units


def test_suggest_steps() -> None:
    from xeval.study.analysis import suggest_steps

    dev = pl.DataFrame(
        {"step": [0, 50, 100, 150, 200], "MRR@10/mono": [0.5, 0.6, 0.65, 0.652, 0.651]}
    )
    assert suggest_steps(dev) == 100
    from xeval.study.analysis import suggestion_text

    assert suggestion_text(dev) == "100" and suggestion_text(dev, 400) == "100"
    assert suggestion_text(dev, 50).startswith("50 (the plateau rule says 100")


def test_baseline_reused_from_compare_with_plan(tmp_path: Path, tiny_model: Path) -> None:
    """A baseline the compared plan stored (same model, build, precision) is copied, not rerun."""
    from xeval.study.store import default_store

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plan_a = load_plan(write_plan(tmp_path / "a", tiny_model, baselines='["base"]'))
    path_b = write_plan(tmp_path / "b", tiny_model, baselines='["base"]')
    text = path_b.read_text().replace("[study]", '[study]\ncompare_with = ["../a/plan.toml"]')
    path_b.write_text(text)
    plan_b = load_plan(path_b)
    for plan, work in ((plan_a, "wa"), (plan_b, "wb")):
        opts = RunOptions(tmp_path / work, default_store(plan), max_cells=1, log=lambda m: None)
        assert run_study(plan, opts).ran == ["eval/base/tiny"]
    rec = Store(default_store(plan_b)).get("eval/base/tiny")
    assert rec is not None and rec.meta["reused_from"]["plan_file"] == "../a/plan.toml"
    assert not (tmp_path / "wb" / "tiny" / "runs").exists()  # nothing was encoded
    a = Store(default_store(plan_a)).scores().drop("system", "seed")
    assert a.equals(Store(default_store(plan_b)).scores().drop("system", "seed"))


def test_report_sets_other_plans_beside(tmp_path: Path) -> None:
    """compare_with: general-domain and in-domain fine-tunes side by side, one Holm family."""
    from xeval.study.report import build_report

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    fake_store(tmp_path / "a", {"toy-hybrid-a0.5": 0.05}, source="gen")
    plan_b, store_b = fake_store(
        tmp_path / "b", {"toy-xx": 0.03}, source="dom", extra='\ncompare_with = ["../a/plan.toml"]'
    )
    rep = build_report(load_plan(plan_b), store_b, tmp_path / "rep")
    assert list(rep.verdicts) == [
        "trained on dom (general) → general",
        "trained on gen (general) → general",
    ]
    assert rep.verdicts["trained on gen (general) → general"] == "supports"
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "dom-hybrid-a0.5 − gen-hybrid-a0.5" in md
    assert "| mono | gen-xx | 2 |" in md
    side = md.split("## General-domain vs in-domain training")[1].split("\n## ")[0]
    assert "| dom − gen hybrid |" in side
    rows = [r for r in side.splitlines() if r.startswith("| tiny | mono |")]
    assert len(rows) == 1 and "Holm p" in rows[0]


def test_baselines_bm25_skipped_when_absent(tmp_path: Path, tiny_model: Path) -> None:
    """A baseline this build cannot run is reported as skipped; the study goes on."""
    path = write_plan(tmp_path, tiny_model, baselines='["base", "bm25"]')
    path.write_text(path.read_text().replace("steps = 3", "steps = 0"))
    opts = RunOptions(work=tmp_path / "w", store=tmp_path / "s", log=lambda m: None)
    res = run_study(load_plan(path), opts)
    assert "eval/base/tiny" in res.ran
    assert "eval/bm25/tiny" in res.ran or [c for c, _ in res.skipped] == ["eval/bm25/tiny"]
    for cell in res.ran:  # BM25 too records what it was: its run's fingerprint
        rec = Store(tmp_path / "s").get(cell)
        assert rec is not None and rec.meta["model"]["fingerprint"]
    assert [c for c, _ in res.waiting] == [
        "train/toy-hybrid-a0.5-s0",
        "eval/toy-hybrid-a0.5-s0/tiny",
    ]
    assert "wait" in res.summary()


def test_git_commit_of_a_cell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xeval.study.cells import Cell, System

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "root"], check=True)
    store = Store(repo / "store")
    cell = Cell("eval", System("base"), "tiny")
    df = pl.DataFrame({"unit_id": ["u1"], "MRR@10": [1.0]})
    store.write(cell, {"system": "base", "benchmark": "tiny"}, {"scores": df}, {})
    for var in ("GIT_AUTHOR", "GIT_COMMITTER"):
        monkeypatch.setenv(f"{var}_NAME", "t")
        monkeypatch.setenv(f"{var}_EMAIL", "t@t")
    store.git_commit(cell)
    log = subprocess.run(
        [*git, "log", "--name-only", "-1", "--format=%s"], capture_output=True, text=True
    )
    assert "study store: eval/base/tiny" in log.stdout
    assert "store/cells/eval/base/tiny/result.json" in log.stdout


def test_git_commit_waits_for_the_index_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit made by hand beside a running study holds index.lock: the cell waits for it."""
    import threading

    from xeval.study.cells import Cell, System

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "root"], check=True)
    for var in ("GIT_AUTHOR", "GIT_COMMITTER"):
        monkeypatch.setenv(f"{var}_NAME", "t")
        monkeypatch.setenv(f"{var}_EMAIL", "t@t")
    store = Store(repo / "store")
    cell = Cell("eval", System("base"), "tiny")
    store.write(cell, {"system": "base"}, {"scores": pl.DataFrame({"unit_id": ["u1"]})}, {})
    lock = repo / ".git" / "index.lock"
    lock.write_text("")
    threading.Timer(1.5, lock.unlink).start()
    store.git_commit(cell)
    log = subprocess.run([*git, "log", "-1", "--format=%s"], capture_output=True, text=True)
    assert log.stdout.strip() == "study store: eval/base/tiny"
    lock.write_text("")  # held for good: a clear error after the last try
    store.write(Cell("eval", System("base"), "tiny2"), {"system": "base"},
                {"scores": pl.DataFrame({"unit_id": ["u1"]})}, {})  # fmt: skip
    with pytest.raises(XevalError, match=r"index\.lock"):
        store.git_commit(Cell("eval", System("base"), "tiny2"), tries=2)


def test_seed_aware_t_is_paired_t_with_one_seed() -> None:
    import numpy as np
    from scipy import stats as sst

    from xeval.compare.stats import seed_aware_t

    rng = np.random.default_rng(1)
    a = rng.uniform(0, 1, size=(1, 80))
    b = a + rng.normal(0.03, 0.1, size=(1, 80))
    r = seed_aware_t(a, b)
    ref = sst.ttest_rel(b[0], a[0])
    ci = ref.confidence_interval()
    assert r.p == pytest.approx(ref.pvalue) and r.df == 79 and r.seed_share == 0
    assert (r.ci_low, r.ci_high) == (pytest.approx(ci.low), pytest.approx(ci.high))


def _equal_but_for_seeds(rng, n: int, k: int):
    """Two (k seeds x n units) score matrices of equal strategies: each fine-tune adds one
    shift N(0, 0.01) to every unit, and noise N(0, 0.05) per unit."""
    unit = rng.uniform(0.2, 0.8, size=n)
    xa = unit + rng.normal(0, 0.01, size=(k, 1)) + rng.normal(0, 0.05, size=(k, n))
    xb = unit + rng.normal(0, 0.01, size=(k, 1)) + rng.normal(0, 0.05, size=(k, n))
    return xa, xb


def test_seed_aware_t_holds_its_level_under_seed_noise() -> None:
    """Two strategies that are equal except for seed-to-seed shifts (3 seeds each): the
    unit-only paired t on seed means rejects far too often, the seed-aware t near 5 %."""
    import numpy as np
    from scipy import stats as sst

    from xeval.compare.stats import seed_aware_t

    rng = np.random.default_rng(7)
    n, k, sims = 200, 3, 400
    seed_aware = unit_only = 0
    for _ in range(sims):
        xa, xb = _equal_but_for_seeds(rng, n, k)
        seed_aware += seed_aware_t(xa, xb).p < 0.05
        unit_only += sst.ttest_rel(xb.mean(0), xa.mean(0)).pvalue < 0.05
    assert unit_only / sims > 0.25
    assert 0.01 <= seed_aware / sims <= 0.08


def test_seed_bootstrap_is_the_paired_bootstrap_with_one_seed() -> None:
    import numpy as np

    from xeval.compare.stats import bootstrap_ci, seed_bootstrap_ci

    rng = np.random.default_rng(3)
    a = rng.uniform(0, 1, size=(1, 60))
    b = a + rng.normal(0.02, 0.1, size=(1, 60))
    assert seed_bootstrap_ci(a, b, 999, 5) == bootstrap_ci(a[0], b[0], 999, 5)


def test_seed_bootstrap_counts_the_seeds() -> None:
    """Equal strategies up to seed-to-seed shifts (3 seeds each): an interval over units
    alone misses 0 in about half the cases; one that resamples the seeds as well rarely
    does (a little more often than the seed-aware t's 5 %: three seeds estimate their
    spread poorly and a bootstrap cannot know it)."""
    import numpy as np

    from xeval.compare.stats import bootstrap_ci, seed_bootstrap_ci

    rng = np.random.default_rng(7)
    n, k, sims = 100, 3, 60
    both = units = 0
    for i in range(sims):
        xa, xb = _equal_but_for_seeds(rng, n, k)
        lo, hi = seed_bootstrap_ci(xa, xb, 499, i)
        both += not lo <= 0 <= hi
        lo, hi = bootstrap_ci(xa.mean(0), xb.mean(0), 499, i)
        units += not lo <= 0 <= hi
    assert units / sims > 0.3
    assert both / sims <= 0.2


def _recheck_module():  # benchmarks/study/recheck.py, loaded by path
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "recheck", Path(__file__).parents[1] / "benchmarks" / "study" / "recheck.py"
    )
    assert spec is not None and spec.loader is not None
    recheck = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recheck)
    return recheck


def test_committed_general_report_agrees_with_its_store(tmp_path: Path) -> None:
    """The committed report's deciding tests are what the committed Parquet files give."""
    import shutil

    store = Path(__file__).parents[1] / "benchmarks" / "results" / "study" / "general"
    copy = tmp_path / "general"
    shutil.copytree(store / "cells", copy / "cells")
    shutil.copy(store / "report.md", copy / "report.md")
    assert _recheck_module().main(copy) == 0
    assert (
        "36 of 36 rows agree with the report; 3 of 3 provenance checks hold"
        in (copy / "recheck.md").read_text()
    )


def test_recheck_recomputes_the_report_without_xeval(tmp_path: Path) -> None:
    """benchmarks/study/recheck.py agrees with the report, and notices a changed store."""
    import polars as pl

    from xeval.study.report import build_report

    recheck = _recheck_module()
    shift = {"toy-hybrid-a0.5": 0.03, "toy-xx": 0.0, "toy-xy": 0.01}
    plan_path, store = fake_store(tmp_path, shift, seed_shift={"toy-xx": [0.0, 0.01]})
    build_report(load_plan(plan_path), store, store)
    assert recheck.main(store) == 0
    out = (store / "recheck.md").read_text()
    assert "6 of 6 rows agree" in out and out.count("| tiny |") == 6
    marker = store / "cells" / "train" / "toy-xx-s1" / "result.json"
    meta = json.loads(marker.read_text())
    marker.write_text(json.dumps(meta | {"pairs_fingerprint": "other pairs"}))
    assert recheck.main(store) == 1  # one source, two sets of pairs
    assert (
        "one set of pairs per source (1): **broken by toy**" in (store / "recheck.md").read_text()
    )
    marker.write_text(json.dumps(meta))
    scores = next((store / "cells" / "eval").glob("toy-xy-s1/*/scores.parquet"))
    df = pl.read_parquet(scores)
    df.with_columns(pl.col("MRR@10") * 0.5, pl.col("MAP") * 0.5).write_parquet(scores)
    assert recheck.main(store) == 1
    assert "**NO**" in (store / "recheck.md").read_text()
