"""Runs -> per-query, per-setting and summary tables (``xeval evaluate``, ``xeval.evaluate``)."""

from __future__ import annotations

from xeval.evaluation.evaluate import EvalConfig, evaluate_run, read_run_json
from xeval.evaluation.report import EvaluationResult, write_eval

__all__ = ["EvalConfig", "EvaluationResult", "evaluate_run", "read_run_json", "write_eval"]
