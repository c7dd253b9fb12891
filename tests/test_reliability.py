"""Hostile inputs for the shared readers and writers: an error naming file and record, exit 2.

Every case is a row of a table: how to damage a freshly written benchmark (or a single
table / JSON file), the file the message must name and words it must contain. Each is
checked through the library (the error class) and through the CLI (exit status 2, no
traceback). Writers: exclusive commits, stale ``.partial`` folders, read-only targets.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from conftest import make_tiny_benchmark

from xeval.benchmark.schema import Benchmark, check_lang, load_benchmark
from xeval.benchmark.settings import enumerate_settings
from xeval.cli import main
from xeval.errors import XevalError
from xeval.provenance import atomic_dir, atomic_path, write_json
from xeval.tables import QRELS, RUN, TABLES, read_json


# ---- damaging a benchmark directory --------------------------------------------------------------
def _rewrite(name: str, fn: Callable[[pl.DataFrame], pl.DataFrame]) -> Callable[[Path], None]:
    def damage(d: Path) -> None:
        p = d / f"{name}.parquet"
        fn(pl.read_parquet(p)).write_parquet(p)

    return damage


def _manifest(fn: Callable[[dict], object]) -> Callable[[Path], None]:
    def damage(d: Path) -> None:
        p = d / "benchmark.json"
        p.write_text(json.dumps(fn(json.loads(p.read_text()))), encoding="utf-8")

    return damage


def _set(key: str, value: object) -> Callable[[dict], dict]:
    return lambda m: {**m, key: value}


def _replace_with_dir(name: str) -> Callable[[Path], None]:
    def damage(d: Path) -> None:
        (d / name).unlink()
        (d / name).mkdir()

    return damage


def _symlink_loop(name: str) -> Callable[[Path], None]:
    def damage(d: Path) -> None:
        (d / name).unlink()
        (d / name).symlink_to(d / name)

    return damage


def _truncate(name: str) -> Callable[[Path], None]:
    def damage(d: Path) -> None:
        (d / name).write_bytes((d / name).read_bytes()[:50])

    return damage


def _drop(name: str) -> Callable[[Path], None]:
    return lambda d: (d / name).unlink()


_F = pl.col("relevance")
BENCH_CASES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    # id: (damage, file named, words in the message)
    "qrels-edited": (_rewrite("qrels", lambda df: df.head(-1)), "qrels.parquet", "changed"),
    "qrels-relevance-flipped": (
        _rewrite("qrels", lambda df: df.with_columns(_F * 0)),
        "qrels.parquet",
        "changed",
    ),
    "corpus-text-edited": (
        _rewrite("corpus", lambda df: df.with_columns(pl.col("text") + "!")),
        "corpus.parquet",
        "changed",
    ),
    "queries-row-added": (
        _rewrite(
            "queries", lambda df: pl.concat([df, df.head(1).with_columns(query_id=pl.lit("z"))])
        ),
        "queries.parquet",
        "changed",
    ),
    "qrels-empty": (_rewrite("qrels", lambda df: df.clear()), "qrels.parquet", "changed"),
    "qrels-inf": (
        _rewrite("qrels", lambda df: df.with_columns(_F.cast(pl.Float64) * float("inf"))),
        "qrels.parquet",
        "whole number",
    ),
    "qrels-fraction": (
        _rewrite("qrels", lambda df: df.with_columns(_F.cast(pl.Float64) + 0.5)),
        "qrels.parquet",
        "whole number",
    ),
    "qrels-huge": (
        _rewrite("qrels", lambda df: df.with_columns(_F.cast(pl.Int64) * 10**12)),
        "qrels.parquet",
        "wrong type",
    ),
    "qrels-text-relevance": (
        _rewrite("qrels", lambda df: df.with_columns(_F.cast(pl.String) + "x")),
        "qrels.parquet",
        "wrong type",
    ),
    "qrels-no-column": (
        _rewrite("qrels", lambda df: df.drop("relevance")),
        "qrels.parquet",
        "lacks",
    ),
    "qrels-null-id": (
        _rewrite("qrels", lambda df: df.with_columns(query_id=pl.lit(None, pl.String))),
        "qrels.parquet",
        "query_id has a null value",
    ),
    "qrels-truncated": (_truncate("qrels.parquet"), "qrels.parquet", "unreadable parquet"),
    "qrels-missing": (_drop("qrels.parquet"), "qrels.parquet", "missing file"),
    "qrels-is-directory": (_replace_with_dir("qrels.parquet"), "qrels.parquet", "is a directory"),
    "qrels-symlink-loop": (_symlink_loop("qrels.parquet"), "qrels.parquet", "symbolic links"),
    "corpus-is-directory": (_replace_with_dir("corpus.parquet"), "corpus.parquet", "directory"),
    "manifest-missing": (_drop("benchmark.json"), "benchmark.json", "not a benchmark"),
    "manifest-is-directory": (_replace_with_dir("benchmark.json"), "benchmark.json", "directory"),
    "manifest-symlink-loop": (_symlink_loop("benchmark.json"), "benchmark.json", "symbolic"),
    "manifest-truncated": (_truncate("benchmark.json"), "benchmark.json", "invalid JSON"),
    "manifest-binary": (
        lambda d: (d / "benchmark.json").write_bytes(b"\xff\xfe{"),
        "benchmark.json",
        "unreadable",
    ),
    "manifest-array": (_manifest(lambda m: [m]), "benchmark.json", "expected a JSON object"),
    "manifest-name-number": (_manifest(_set("name", 3)), "benchmark.json", "record name"),
    "manifest-languages-string": (
        _manifest(_set("languages", "en de")),
        "benchmark.json",
        "record languages",
    ),
    "manifest-language-number": (
        _manifest(_set("languages", [1, "en"])),
        "benchmark.json",
        "languages[0]",
    ),
    "manifest-language-path": (
        _manifest(_set("languages", ["../en"])),
        "benchmark.json",
        "invalid language code",
    ),
    "manifest-counts-list": (_manifest(_set("counts", [])), "benchmark.json", "record counts"),
    "manifest-fingerprint-number": (
        _manifest(_set("fingerprint", 1)),
        "benchmark.json",
        "record fingerprint",
    ),
    "manifest-no-fingerprint": (
        _manifest(lambda m: {k: v for k, v in m.items() if k != "fingerprint"}),
        "benchmark.json",
        "no fingerprint",
    ),
    "manifest-deep-nesting": (
        lambda d: (d / "benchmark.json").write_text("[" * 100_000 + "]" * 100_000),
        "benchmark.json",
        "benchmark.json",
    ),
}


@pytest.fixture
def bench_dir(tmp_path: Path) -> Path:
    return make_tiny_benchmark(n_units=3).save(tmp_path / "bench")


@pytest.mark.parametrize("case", sorted(BENCH_CASES))
def test_damaged_benchmark_is_refused(bench_dir: Path, case: str) -> None:
    damage, file, words = BENCH_CASES[case]
    damage(bench_dir)
    with pytest.raises(XevalError) as info:
        load_benchmark(bench_dir)
    msg = str(info.value)
    assert file in msg and words in msg, msg
    r = CliRunner().invoke(main, ["settings", str(bench_dir)])
    assert r.exit_code == 2, (r.output, r.exception)
    assert file in r.output and "Traceback" not in r.output


def test_untouched_benchmark_loads_and_is_verified_once(bench_dir: Path) -> None:
    from xeval.benchmark import schema

    schema._VERIFIED.clear()
    load_benchmark(bench_dir)
    assert len(schema._VERIFIED) == 1
    load_benchmark(bench_dir)  # same sizes and mtimes: not hashed again
    assert len(schema._VERIFIED) == 1
    r = CliRunner().invoke(main, ["settings", str(bench_dir)])
    assert r.exit_code == 0 and "cross-de-en" in r.output


# ---- single tables ---------------------------------------------------------------------------
def _table_cases(tmp: Path) -> dict[str, tuple[Path, str]]:
    good = pl.DataFrame({"query_id": ["q"], "doc_id": ["d"], "relevance": [1], "score": [1.0]})
    cases: dict[str, tuple[Path, str]] = {}
    p = tmp / "header-only.parquet"
    good.clear().select("query_id", "doc_id").write_parquet(p)
    cases["header-only-without-columns"] = (p, "lacks column")
    p = tmp / "wrong-type.parquet"
    good.with_columns(pl.col("score").cast(pl.String) + "x").write_parquet(p)
    cases["text-score"] = (p, "wrong type")
    p = tmp / "csv-not-parquet.parquet"
    p.write_text("query_id,doc_id\nq,d\n")
    cases["csv-not-parquet"] = (p, "unreadable parquet")
    p = tmp / "empty-file.parquet"
    p.write_bytes(b"")
    cases["empty-file"] = (p, "unreadable parquet")
    p = tmp / "a-dir.parquet"
    p.mkdir()
    cases["directory"] = (p, "is a directory")
    p = tmp / "loop.parquet"
    p.symlink_to(p)
    cases["symlink-loop"] = (p, "symbolic links")
    p = tmp / "fifo.parquet"
    os.mkfifo(p)
    cases["fifo"] = (p, "not a regular file")
    return cases


@pytest.mark.parametrize("spec", TABLES, ids=lambda s: s.name)
def test_every_table_reader_names_the_file(tmp_path: Path, spec) -> None:
    for case, (path, words) in _table_cases(tmp_path).items():
        if case == "text-score" and "score" not in spec.columns:
            continue
        with pytest.raises(XevalError) as info:
            spec.read(path)
        assert str(path) in str(info.value) and words in str(info.value), (case, info.value)


def test_header_only_qrels_reads_as_empty_and_a_benchmark_refuses_it(tmp_path: Path) -> None:
    p = tmp_path / "qrels.parquet"
    QRELS.write(QRELS.empty(), p)
    assert QRELS.read(p).height == 0
    b = make_tiny_benchmark(n_units=2)
    empty = Benchmark(b.name, b.corpus, b.queries, b.qrels.clear(), b.manifest)
    with pytest.raises(XevalError, match="no relevant qrels"):
        empty.save(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_fractional_rank_names_its_row(tmp_path: Path) -> None:
    p = tmp_path / "run.parquet"
    pl.DataFrame({"query_id": ["q"], "doc_id": ["d"], "score": [1.0], "rank": [1.5]}).write_parquet(
        p
    )
    with pytest.raises(
        XevalError, match=r"record row 0: run\.rank must be a whole number, got 1\.5"
    ):
        RUN.read(p)


# ---- JSON --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content, expect, words",
    [
        ('{"a": 1', dict, "invalid JSON"),
        ("[1, 2]", dict, "expected a JSON object, got array"),
        ('"text"', list, "expected a JSON array, got string"),
        ("", dict, "invalid JSON"),
    ],
)
def test_read_json_types(tmp_path: Path, content: str, expect: type, words: str) -> None:
    p = tmp_path / "x.json"
    p.write_text(content)
    with pytest.raises(XevalError, match=words) as info:
        read_json(p, expect=expect)
    assert str(p) in str(info.value)


# ---- language codes and setting names --------------------------------------------------------
def test_language_codes_normalised_and_checked() -> None:
    assert [check_lang(c) for c in (" EN ", "pt-br", "zh_hant", "de\n")] == [
        "en",
        "pt_BR",
        "zh_Hant",
        "de",
    ]
    for bad in ("../en", "en/de", "a.b", "all", "e n", "", "x" * 9, 3):
        with pytest.raises(XevalError, match="language code"):
            check_lang(bad)


def _two_langs(a: str, b: str) -> Benchmark:
    corpus = pl.DataFrame(
        {"doc_id": ["d1", "d2"], "lang": [a, b], "text": ["one", "two"], "unit_id": ["u", "u"]}
    )
    queries = pl.DataFrame(
        {"query_id": ["q1", "q2"], "lang": [a, b], "text": ["x", "y"], "unit_id": ["u", "u"]}
    )
    qrels = pl.DataFrame(
        {"query_id": ["q1", "q1", "q2", "q2"], "doc_id": ["d1", "d2", "d1", "d2"], "relevance": 1}
    )
    return Benchmark("t", corpus, queries, qrels)


def test_setting_names_are_unambiguous() -> None:
    first = {s.name for s in enumerate_settings(_two_langs("ab-cd", "ef"))}
    second = {s.name for s in enumerate_settings(_two_langs("ab", "cd-ef"))}
    assert "cross-ab_CD-ef" in first and "cross-ab-cd_EF" in second
    assert not first & second
    assert enumerate_settings(_two_langs("EN", " de"))[0].name == "mono-de"


def test_two_spellings_of_one_language_are_refused() -> None:
    with pytest.raises(XevalError, match="language codes 'EN' and 'en' both mean 'en'"):
        _two_langs("en", "EN")


def test_language_with_a_path_names_its_record() -> None:
    with pytest.raises(XevalError, match=r"record doc_id 'd1'.*invalid language code '\.\./a'"):
        _two_langs("../a", "bb")


# ---- writers: exclusive, atomic, no leftovers ----------------------------------------------
def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_second_writer_fails_while_the_first_writes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "a").write_text("first")
        with pytest.raises(XevalError, match="another xeval process is writing"), atomic_dir(out):
            pass
    assert (out / "a").read_text() == "first"
    with pytest.raises(XevalError, match="exists; pass --overwrite"), atomic_dir(out):
        pass
    with atomic_dir(out, overwrite=True) as tmp:
        (tmp / "b").write_text("second")
    assert sorted(p.name for p in out.iterdir()) == ["b"]
    assert _leftovers(tmp_path) == []


def test_path_appearing_during_the_write_is_not_replaced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(XevalError, match="exists"), atomic_dir(out) as tmp:
        (tmp / "mine").write_text("x")
        out.mkdir()
        (out / "theirs").write_text("y")
    assert [p.name for p in out.iterdir()] == ["theirs"]
    assert _leftovers(tmp_path) == []


def test_stale_partials_of_dead_writers_are_cleaned(tmp_path: Path) -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    stale = tmp_path / f".out.{proc.pid}.abc.partial"
    stale.mkdir()
    live = tmp_path / f".out.{os.getpid()}.xyz.partial"
    live.mkdir()
    other = tmp_path / f".other.{proc.pid}.abc.partial"
    other.mkdir()
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "x").write_text("new")
    assert not stale.exists() and live.exists() and other.exists()


def test_interrupted_swap_puts_the_old_version_back(tmp_path: Path) -> None:
    old = tmp_path / ".out.old"
    old.mkdir()
    (old / "v").write_text("1")
    with pytest.raises(XevalError, match="exists"), atomic_dir(tmp_path / "out"):
        pass
    assert (tmp_path / "out" / "v").read_text() == "1"


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[str]:
    """Make ``folder`` unwritable: chmod for users; ``chattr +i`` for root (chmod binds
    nobody there); skip when neither holds."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield "chmod"
        finally:
            folder.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    ok = chattr and subprocess.run([chattr, "+i", str(folder)], capture_output=True).returncode == 0
    if not ok:
        pytest.skip("running as root without chattr +i: no way to make a folder read-only")
    try:
        yield "chattr"
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)


def test_read_only_targets(tmp_path: Path, bench_dir: Path) -> None:
    ro = tmp_path / "ro"
    units = tmp_path / "u.jsonl"
    units.write_text(
        "\n".join(
            json.dumps({"unit_id": str(i), "lang": lang, "query": f"q{i}", "passage": f"p{i}"})
            for i in range(3)
            for lang in ("en", "de")
        )
    )
    with read_only(ro):
        calls: list[Callable[[], object]] = [
            lambda: write_json(ro / "x.json", {}),
            lambda: QRELS.write(QRELS.empty(), ro / "q.parquet"),
            lambda: atomic_dir(ro / "a" / "b").__enter__(),
            lambda: make_tiny_benchmark(2).save(ro / "bench"),
        ]
        for call in calls:
            with pytest.raises(XevalError, match="cannot write here") as info:
                call()
            assert str(ro) in str(info.value)
        with pytest.raises(XevalError, match="cannot write here"), atomic_path(ro / "f"):
            pass
        cli = [
            ["build-benchmark", "parallel-jsonl", "-s", str(units), "-o", str(ro / "b")],
            ["export", str(bench_dir), "-o", str(ro / "e")],
        ]
        for args in cli:
            r = CliRunner().invoke(main, args)
            assert r.exit_code == 2 and str(ro) in r.output and "cannot write" in r.output, r.output
        assert list(ro.iterdir()) == []


def test_os_errors_are_one_line_with_exit_2(monkeypatch, bench_dir: Path) -> None:
    import xeval.benchmark.settings as settings

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(bench_dir))

    monkeypatch.setattr(settings, "list_settings", full)
    r = CliRunner().invoke(main, ["settings", str(bench_dir)])
    assert r.exit_code == 2 and "No space left on device" in r.output
    assert str(bench_dir) in r.output and "Traceback" not in r.output
    monkeypatch.setenv("XEVAL_DEBUG", "1")
    r = CliRunner().invoke(main, ["settings", str(bench_dir)])
    assert isinstance(r.exception, OSError)


def test_read_only_targets_of_every_stage(
    tmp_path: Path, bench_dir: Path, tiny_model: Path
) -> None:
    from xeval.training.pairs import benchmark_pairs, save_pairs

    run = tmp_path / "run"
    pairs = save_pairs(benchmark_pairs(make_tiny_benchmark()), tmp_path / "pairs.parquet")
    model = ["-m", str(tiny_model)]
    r = CliRunner().invoke(main, ["run", *model, "-b", str(bench_dir), "-o", str(run), "-q"])
    assert r.exit_code == 0, r.output
    ro = tmp_path / "ro"
    cases = {
        ro: [
            ["run", *model, "-b", str(bench_dir), "-o", str(ro / "run"), "-q"],
            ["finetune", *model, "-p", str(pairs), "-o", str(ro / "ft"), "--batch-size", "2"],
        ],
        run: [["evaluate", str(run)]],
    }
    for folder, commands in cases.items():
        with read_only(folder):
            for args in commands:
                r = CliRunner().invoke(main, args)
                assert r.exit_code == 2, (args, r.output, r.exception)
                assert "Traceback" not in r.output and str(folder) in r.output, r.output


def test_overwrite_replaces_a_file_or_a_link_whole(tmp_path: Path) -> None:
    for make in (lambda p: p.write_text("old file"), lambda p: p.symlink_to(tmp_path)):
        out = tmp_path / "out"
        _remove_any(out)
        make(out)
        with atomic_dir(out, overwrite=True) as tmp:
            (tmp / "new").write_text("x")
        assert out.is_dir() and not out.is_symlink() and [p.name for p in out.iterdir()] == ["new"]
        assert _leftovers(tmp_path) == []


def _remove_any(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()


def test_benchmark_written_before_code_normalisation_still_loads(tmp_path: Path) -> None:
    """Tables stored with ``pt-BR`` (older xeval) match their manifest as stored: accepted."""
    import json

    from tests.conftest import make_tiny_benchmark
    from xeval.benchmark.schema import _raw_fingerprint

    path = make_tiny_benchmark(langs=("en", "de")).save(tmp_path / "b")
    raw = {n: pl.read_parquet(path / f"{n}.parquet") for n in ("corpus", "queries", "qrels")}
    for n in ("corpus", "queries"):
        raw[n] = raw[n].with_columns(pl.col("lang").replace({"de": "de-CH"}))
        raw[n].write_parquet(path / f"{n}.parquet")
    manifest = json.loads((path / "benchmark.json").read_text())
    manifest["fingerprint"] = _raw_fingerprint(raw)
    manifest.pop("table_digests", None)
    manifest["languages"] = ["de-CH", "en"]
    (path / "benchmark.json").write_text(json.dumps(manifest))
    assert load_benchmark(path).languages == ["de_CH", "en"]
    raw["corpus"].with_columns(pl.col("text") + "!").write_parquet(path / "corpus.parquet")
    with pytest.raises(XevalError, match="tables changed"):
        load_benchmark(path)
