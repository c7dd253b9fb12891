"""The hand-off tables: round trip, clear errors naming the file, atomic writes."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from xeval.errors import XevalError
from xeval.tables import KINDS, TABLES, TIE_RULE, TableSpec, read_json, write_json

_VALUES = {
    pl.String: ["a", "b"],
    pl.Float64: [0.5, 0.25],
    pl.Int32: [1, 2],
    pl.Int64: [3, 4],
}


def _sample(spec: TableSpec) -> pl.DataFrame:
    return pl.DataFrame({c: _VALUES[type(t)] for c, t in spec.schema.items()}, schema=spec.schema)


def _ids(spec: TableSpec) -> str:
    return spec.name


@pytest.mark.parametrize("spec", TABLES, ids=_ids)
def test_round_trip(spec: TableSpec, tmp_path: Path) -> None:
    df = _sample(spec)
    path = spec.write(df, tmp_path / f"{spec.name}.parquet")
    back = spec.read(path)
    assert back.equals(df)
    assert back.schema == pl.Schema(spec.schema)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


@pytest.mark.parametrize("spec", TABLES, ids=_ids)
def test_read_casts_to_schema(spec: TableSpec, tmp_path: Path) -> None:
    raw = _sample(spec).select(pl.all().cast(pl.String)).with_columns(extra=pl.lit("x"))
    path = tmp_path / "t.parquet"
    raw.write_parquet(path)
    assert spec.read(path).equals(_sample(spec))


@pytest.mark.parametrize("spec", TABLES, ids=_ids)
def test_missing_column_names_the_file(spec: TableSpec, tmp_path: Path) -> None:
    col = next(iter(spec.columns))
    path = tmp_path / f"{spec.name}.parquet"
    _sample(spec).drop(col).write_parquet(path)
    with pytest.raises(XevalError, match=rf"{spec.name}\.parquet: .*lacks column\(s\) \['{col}'\]"):
        spec.read(path)


@pytest.mark.parametrize("spec", TABLES, ids=_ids)
def test_damaged_and_missing_file(spec: TableSpec, tmp_path: Path) -> None:
    path = tmp_path / f"{spec.name}.parquet"
    spec.write(_sample(spec), path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(XevalError, match=rf"{spec.name}\.parquet: unreadable parquet"):
        spec.read(path)
    with pytest.raises(XevalError, match=r"nope\.parquet: missing file"):
        spec.read(tmp_path / "nope.parquet")


@pytest.mark.parametrize("spec", TABLES, ids=_ids)
def test_failed_write_keeps_the_old_file(spec: TableSpec, tmp_path: Path) -> None:
    path = spec.write(_sample(spec), tmp_path / "t.parquet")
    with pytest.raises(XevalError, match=r"t\.parquet: .*lacks column"):
        spec.write(pl.DataFrame({"other": [1]}), path)
    assert spec.read(path).equals(_sample(spec))
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("spec", TABLES, ids=_ids)
def test_empty_has_the_required_columns(spec: TableSpec) -> None:
    empty = spec.empty()
    assert empty.height == 0
    assert empty.schema == pl.Schema(spec.columns)
    assert set(spec.key) <= set(spec.schema)


def test_wrong_type_is_an_error() -> None:
    run = next(t for t in TABLES if t.name == "run")
    bad = pl.DataFrame({"query_id": ["q"], "doc_id": ["d"], "score": ["high"]})
    with pytest.raises(XevalError, match=r"runs/x\.parquet: run columns have the wrong type"):
        run.validate(bad, "runs/x.parquet")


def test_json_round_trip_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    write_json(path, {"k": [1, "ü"]})
    assert read_json(path) == {"k": [1, "ü"]}
    assert list(tmp_path.iterdir()) == [path]
    with pytest.raises(XevalError, match=r"b\.json: no b here"):
        read_json(tmp_path / "b.json", missing="no b here")
    path.write_text('{"k": \n[1,', encoding="utf-8")
    with pytest.raises(XevalError, match=r"a\.json, record line 2: invalid JSON"):
        read_json(path)
    path.write_bytes(b"\xff\xfe{")
    with pytest.raises(XevalError, match=r"a\.json: unreadable JSON file"):
        read_json(path)


def test_one_tie_rule_and_one_kind_order() -> None:
    from xeval.benchmark import settings
    from xeval.metrics import TIE_RULE as METRICS_TIE_RULE
    from xeval.retrieval import TIE_RULE as RETRIEVAL_TIE_RULE

    assert METRICS_TIE_RULE is TIE_RULE and RETRIEVAL_TIE_RULE is TIE_RULE
    assert settings.KINDS is KINDS == ("mono", "cross", "multi")
