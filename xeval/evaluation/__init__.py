"""Run directory -> per-query, per-setting and summary tables (``xeval evaluate``)."""

from __future__ import annotations

from xeval.evaluation.evaluate import EvaluationResult, evaluate_run, read_run_json, write_eval

__all__ = ["EvaluationResult", "evaluate_run", "read_run_json", "write_eval"]
