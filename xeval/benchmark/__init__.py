"""Benchmarks: the canonical on-disk format, LaReQA settings, builders and exporters."""

from xeval.benchmark.schema import Benchmark, load_benchmark
from xeval.benchmark.settings import Setting, enumerate_settings

__all__ = ["Benchmark", "Setting", "enumerate_settings", "load_benchmark"]
