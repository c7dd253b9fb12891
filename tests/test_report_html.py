"""The HTML report is self-contained and renders in headless Chromium without errors.

Chromium is Debian's ``chromium`` package; without it the browser test is skipped with a
message (CI installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_compare import make_runs

from xeval.compare import CompareOptions, compare_folder, write_report

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_runs(tmp_path_factory.mktemp("cmp") / "runs")
    comp = compare_folder(root, CompareOptions(metrics=("MRR@10", "LB"), baseline="xx"))
    return write_report(comp, root.parent / "report")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("chromium is not installed (Debian: apt-get install -y chromium); CI installs it")


def test_report_is_self_contained(report: Path) -> None:
    html = (report / "report.html").read_text(encoding="utf-8")
    srcs = re.findall(r'\ssrc="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/svg+xml;base64,") for s in srcs)
    assert not re.search(r'(href|src)="(https?:)?//', html)  # nothing fetched from outside
    n_svg = len(list((report / "figures").glob("*.svg")))
    assert len(srcs) == n_svg
    for run in ("hybrid-seed0", "hybrid-seed2", "xx", "xy"):  # provenance of every run
        assert f"run.json of {report.parent / 'runs' / run}" in html
    assert "Language bias" in html and "macro mean" in html
    assert "<sup>" in html  # significance marks


def test_report_names_the_pairing_unit_n_and_intervals(report: Path) -> None:
    html = (report / "report.html").read_text(encoding="utf-8")
    md = (report / "report.md").read_text(encoding="utf-8")
    # the generated runs' benchmark folder does not exist: no unit ids, so query ids
    assert "Pairing unit: query id" in html and "n = 120 queries" in html
    assert "n = 120 queries" in md and "95% CI (boot)" in md and "seed sd" in md
    assert "bootstrap (BCa" in html


def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    exe = _chromium()
    url = (report / "report.html").resolve().as_uri()
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(
        [exe, *flags, "--enable-logging=stderr", "--v=0", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stdout[:500]
    attrs = dict(re.findall(r'(data-xeval-[a-z]+)="([^"]*)"', body.group(0)))
    # the inline script ran after load: every figure decoded, no script error
    assert attrs.get("data-xeval-rendered") == "ok", attrs
    assert int(attrs["data-xeval-images"]) > 5 and attrs["data-xeval-broken"] == "0"
    assert int(attrs["data-xeval-tables"]) >= 4
    console = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert not console, console
    shot = tmp_path / "report.png"
    res = subprocess.run(
        [exe, *flags, "--window-size=1280,2400", f"--screenshot={shot}", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
