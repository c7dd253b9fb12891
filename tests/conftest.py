"""Shared fixtures: a tiny generated benchmark, the tiny test model, the real data root."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from xeval.benchmark.schema import Benchmark

REPO = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: pass --runslow (nox -s tests does)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def shared_data_root() -> Path | None:
    """../shared/data (or $XEVAL_SOURCES) when present."""
    for cand in (os.environ.get("XEVAL_SOURCES"), REPO.parent / "shared" / "data"):
        if cand and Path(cand).is_dir():
            return Path(cand)
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data root; tests that need it skip with a message when it is absent."""
    root = shared_data_root()
    if root is None:
        pytest.skip("../shared/data is absent (set XEVAL_SOURCES): real-data test not run")
    return root


def make_tiny_benchmark(n_units: int = 6, langs: tuple[str, ...] = ("en", "de", "fr")) -> Benchmark:
    """A small parallel benchmark: unit i has a question and an answer in every language."""
    words = {
        "en": ("What is the colour of", "The colour of {} is"),
        "de": ("Welche Farbe hat", "Die Farbe von {} ist"),
        "fr": ("Quelle est la couleur de", "La couleur de {} est"),
        "es": ("¿De qué color es", "El color de {} es"),
    }
    things = ["sky", "grass", "snow", "coal", "blood", "sun", "sea", "sand", "milk", "rust"]
    colours = [
        "blue",
        "green",
        "white",
        "black",
        "red",
        "yellow",
        "teal",
        "beige",
        "cream",
        "brown",
    ]
    docs, queries, qrels = [], [], []
    for i in range(n_units):
        for lang in langs:
            q, a = words[lang]
            queries.append(
                {
                    "query_id": f"{lang}-q{i}",
                    "lang": lang,
                    "text": f"{q} {things[i % 10]}?",
                    "unit_id": f"q{i}",
                }
            )
            docs.append(
                {
                    "doc_id": f"{lang}-d{i}",
                    "lang": lang,
                    "text": a.format(things[i % 10]) + f" {colours[i % 10]}.",
                }
            )
        for qlang in langs:
            for dlang in langs:
                qrels.append(
                    {"query_id": f"{qlang}-q{i}", "doc_id": f"{dlang}-d{i}", "relevance": 1}
                )
    return Benchmark(
        "tiny",
        pl.DataFrame(docs),
        pl.DataFrame(queries),
        pl.DataFrame(qrels),
        manifest={"domain": "test", "languages": list(langs)},
    )


@pytest.fixture
def tiny_benchmark() -> Benchmark:
    return make_tiny_benchmark()


@pytest.fixture
def tiny_benchmark_dir(tmp_path: Path) -> Path:
    return make_tiny_benchmark().save(tmp_path / "tiny-bench")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny deterministic test model (random 2-layer BERT, cut-down XLM-R tokenizer)."""
    from xeval.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")
