"""Correctness per dataset kind, accuracy, bootstrap intervals and paired tests.

Nothing outside this package computes a metric.
"""

from __future__ import annotations

import numpy as np

from ragdistill.evaluation.arith import same_value, try_eval
from ragdistill.io import read_jsonl


def normalize_answer(text: str) -> str:
    return " ".join(text.lower().strip().rstrip(".").split())


def is_correct(prediction: str | None, gold: str, kind: str) -> bool:
    """Whether a predicted label matches the gold one: equal value for arithmetic (equations are
    evaluated safely), equal normalized text otherwise."""
    if not prediction:
        return False
    if kind == "arithmetic":
        return same_value(try_eval(prediction), try_eval(gold))
    return normalize_answer(prediction) == normalize_answer(gold)


def correct_by_id(predictions_file) -> dict[str, bool]:
    """Per question id, whether a student was right, from its predictions file (stage evaluate)."""
    return {row["id"]: bool(row["correct"]) for row in read_jsonl(predictions_file)}


def bootstrap_interval(correct: list[bool] | np.ndarray, resamples: int = 1000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the accuracy."""
    values = np.asarray(correct, dtype=float)
    if values.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def accuracy_summary(correct: list[bool], resamples: int = 1000, seed: int = 0) -> dict:
    low, high = bootstrap_interval(correct, resamples, seed)
    n = len(correct)
    return {"accuracy": round(sum(correct) / n, 4) if n else float("nan"),
            "ci_low": round(low, 4), "ci_high": round(high, 4), "n": n}


def paired_bootstrap(a: list[bool], b: list[bool], resamples: int = 10000, seed: int = 0) -> dict:
    """Accuracy difference a - b on the same examples, its 95% interval, and the two-sided
    bootstrap p-value of "no difference"."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError("paired_bootstrap needs predictions on the same examples")
    rng = np.random.default_rng(seed)
    index = rng.integers(0, x.size, size=(resamples, x.size))
    diffs = (x[index] - y[index]).mean(axis=1)
    observed = float((x - y).mean())
    p = 2 * min((diffs <= 0).mean(), (diffs >= 0).mean())
    return {"difference": round(observed, 4), "ci_low": round(float(np.percentile(diffs, 2.5)), 4),
            "ci_high": round(float(np.percentile(diffs, 97.5)), 4), "p_value": round(float(min(1.0, p)), 4)}
