"""Correctness, accuracy and bootstrap statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ragdistill.evaluation import accuracy_summary, bootstrap_interval, is_correct, paired_bootstrap
from ragdistill.evaluation.metrics import normalize_answer


def _pattern(n: int, accuracy: float) -> list[bool]:
    """A deterministic list of n booleans with exactly round(n * accuracy) True values, spread out."""
    rng = np.random.default_rng(123)
    values = np.zeros(n, dtype=bool)
    values[: round(n * accuracy)] = True
    rng.shuffle(values)
    return values.tolist()


def test_bootstrap_interval_brackets_the_mean():
    correct = _pattern(200, 0.7)
    low, high = bootstrap_interval(correct, resamples=2000, seed=0)
    assert low < 0.7 < high
    assert 0.55 < low and high < 0.85


def test_bootstrap_interval_narrows_with_more_data():
    small = bootstrap_interval(_pattern(50, 0.6), resamples=2000, seed=1)
    large = bootstrap_interval(_pattern(2000, 0.6), resamples=2000, seed=1)
    assert (large[1] - large[0]) < 0.5 * (small[1] - small[0])
    # Roughly the normal-approximation width 2 * 1.96 * sqrt(p (1 - p) / n).
    expected = 2 * 1.96 * math.sqrt(0.6 * 0.4 / 2000)
    assert large[1] - large[0] == pytest.approx(expected, rel=0.08)
    low90, high90 = bootstrap_interval(_pattern(2000, 0.6), resamples=2000, seed=1, level=0.9)
    assert high90 - low90 == pytest.approx(expected * 1.645 / 1.96, rel=0.08)


def test_bootstrap_interval_is_seeded_and_degenerate_cases():
    data = _pattern(100, 0.5)
    assert bootstrap_interval(data, 500, seed=3) == bootstrap_interval(data, 500, seed=3)
    assert bootstrap_interval([True] * 30) == (1.0, 1.0)
    assert bootstrap_interval([False] * 30) == (0.0, 0.0)
    low, high = bootstrap_interval([])
    assert math.isnan(low) and math.isnan(high)


def test_accuracy_summary():
    correct = [True, True, False, True]
    summary = accuracy_summary(correct, resamples=1000, seed=0)
    assert summary["accuracy"] == 0.75
    assert summary["n"] == 4
    assert summary["ci_low"] <= 0.75 <= summary["ci_high"]
    assert set(summary) == {"accuracy", "ci_low", "ci_high", "n"}
    assert accuracy_summary([False, False])["accuracy"] == 0.0
    assert math.isnan(accuracy_summary([])["accuracy"])


def test_paired_bootstrap_detects_a_clear_difference():
    a = _pattern(300, 0.8)
    # b is wrong on a third of a's correct answers.
    b = list(a)
    flipped = 0
    for i, value in enumerate(b):
        if value and i % 3 == 0:
            b[i] = False
            flipped += 1
    result = paired_bootstrap(a, b, resamples=5000, seed=0)
    assert result["difference"] == pytest.approx(flipped / 300, abs=1e-4)
    assert result["p_value"] < 0.05
    assert 0 < result["ci_low"] < result["difference"] < result["ci_high"]
    reverse = paired_bootstrap(b, a, resamples=5000, seed=0)
    assert reverse["difference"] == pytest.approx(-result["difference"], abs=1e-4)
    assert reverse["p_value"] < 0.05


def test_paired_bootstrap_identical_lists():
    a = _pattern(100, 0.5)
    result = paired_bootstrap(a, list(a), resamples=1000, seed=0)
    assert result["difference"] == 0
    assert result["p_value"] == 1.0
    assert result["ci_low"] == result["ci_high"] == 0


def test_paired_bootstrap_small_noisy_difference_is_not_significant():
    a = [True, False] * 20
    b = list(a)
    b[0] = False  # one example of forty
    assert paired_bootstrap(a, b, resamples=2000, seed=0)["p_value"] > 0.05


def test_paired_bootstrap_rejects_unpaired_lists():
    with pytest.raises(ValueError):
        paired_bootstrap([True, False], [True])


@pytest.mark.parametrize(
    ("prediction", "gold", "expected"),
    [
        ("( 84.0 / 2.0 )", "42", True),
        ("42", "( 84.0 / 2.0 )", True),
        ("84 / 2", "( 84.0 / 2.0 )", True),
        ("( 10.0 - ( 6.0 + 3.0 ) )", "1", True),
        ("( 84.0 * 2.0 )", "( 84.0 / 2.0 )", False),
        ("41.99", "42", False),
        ("forty-two", "42", False),
        ("__import__('os')", "42", False),
        ("", "42", False),
        (None, "42", False),
    ],
)
def test_is_correct_arithmetic(prediction, gold, expected):
    assert is_correct(prediction, gold, "arithmetic") is expected


@pytest.mark.parametrize(
    ("prediction", "gold", "expected"),
    [
        ("Math Problem.", "math problem", True),
        ("  math   problem ", "math problem", True),
        ("MATH PROBLEM", "Math problem.", True),
        ("math problems", "math problem", False),
        ("gravity", "math problem", False),
        ("", "math problem", False),
        (None, "math problem", False),
    ],
)
def test_is_correct_text(prediction, gold, expected):
    assert is_correct(prediction, gold, "choice") is expected


def test_normalize_answer():
    assert normalize_answer("  The  Answer. ") == "the answer"


def test_is_correct_survives_zero_to_negative_power():
    assert is_correct("( 0.0 ** -1.0 )", "1", "arithmetic") is False
