"""The study's statistics: intervals that include seed variance, paired seeds, the sign-flip p-value, Holm,
and the pre-specified primary comparison as the report computes and records it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ragdistill.io import DataError
from ragdistill.study.plan import Plan, load_plan
from ragdistill.study.report import build_report_and_primary
from ragdistill.study.stats import hierarchical_interval, holm, paired, paired_hierarchical, sign_flip_p
from tests.test_study import _snapshot


def _random_matrix(rng: np.random.Generator, accuracies: list[float], questions: int = 300) -> np.ndarray:
    return np.array([(rng.random(questions) < a).astype(float) for a in accuracies])


def test_the_interval_widens_with_seed_to_seed_spread():
    rng = np.random.default_rng(1)
    steady = _random_matrix(rng, [0.5, 0.5, 0.5])
    spread = np.vstack([steady[0] * (rng.random(300) < 0.5), steady[1], np.maximum(steady[2], rng.random(300) < 0.5)])
    width = {name: np.diff(hierarchical_interval(m)).item() for name, m in (("steady", steady), ("spread", spread))}
    # One seed, or seeds that agree on every question: the questions are the only source of variation.
    one = steady[:1]
    alike = np.repeat(one, 3, axis=0)
    assert np.isclose(np.diff(hierarchical_interval(alike)).item(), np.diff(hierarchical_interval(one)).item(),
                      atol=0.01)
    assert width["spread"] > 1.5 * width["steady"]


def test_rows_run_at_the_same_seeds_are_paired_on_them():
    rng = np.random.default_rng(2)
    shared = _random_matrix(rng, [0.3, 0.5, 0.7])  # the seed moves both rows alike
    a = np.maximum(shared, rng.random(shared.shape) < 0.1)
    paired_width = np.diff([paired_hierarchical(a, shared, True)[k] for k in ("ci_low", "ci_high")]).item()
    independent = np.diff([paired_hierarchical(a, shared, False)[k] for k in ("ci_low", "ci_high")]).item()
    assert paired_width < independent / 2
    entries = [{"runs": {s: {"correct": {f"q{i}": c for i, c in enumerate(m[k])}} for k, s in enumerate((0, 1, 2))}}
               for m in (a, shared)]
    assert paired(*entries)["paired_seeds"] is True
    teacher = {"runs": {None: entries[1]["runs"][0]}}
    assert paired(entries[0], teacher)["paired_seeds"] is False


def test_sign_flip_p_value_is_exact_on_few_questions_and_one_when_nothing_differs():
    right, wrong = np.ones(10), np.zeros(10)
    assert sign_flip_p(right, wrong) == pytest.approx(2 / 2 ** 10)
    assert sign_flip_p(right, right) == 1.0
    mixed = np.array([1, 0] * 5, dtype=float)
    assert sign_flip_p(mixed, 1 - mixed) == pytest.approx(1.0)


def test_holm_adjusts_step_down_and_keeps_the_order():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]
    assert holm([0.2, 0.9, 0.6, 0.8]) == pytest.approx([0.8, 1.0, 1.0, 1.0])  # capped at 1


def _grid(seeds: int, sbs_plain: list[int], untrained: list[int]) -> list[dict]:
    better = [1] * 30 + [0] * 10
    return [_snapshot(variant, seed, {"untrained": untrained, "finetune": better, "distill": better,
                                       "sbs": better if variant == "rag" else sbs_plain})
            for variant in ("plain", "rag") for seed in range(seeds)]


def test_the_primary_comparison_is_reported_as_planned_and_left_out_of_holm(tmp_path):
    plan = Plan(dataset="openbookqa", fraction=0.1, a="sbs (rag teacher)", b="sbs (plain teacher)", min_seeds=5,
                metric="accuracy")
    untrained = [1] * 10 + [0] * 30
    plainer = [1] * 20 + [0] * 20
    text, record = build_report_and_primary(_grid(5, plainer, untrained), figures=tmp_path, plan=plan)
    assert record["seeds"] == 5 and record["a"] == 75.0 and record["b"] == 50.0 and record["diff"] == 25.0
    assert record["low"] > 0 and record["learned"] is True and 0 <= record["p"] < 0.05
    assert set(record) >= {"dataset", "fraction", "seeds", "metric", "a", "b", "diff", "low", "high", "p", "method"}
    assert "sbs (rag teacher) − sbs (plain teacher) on openbookqa, 10% of the training set, 5 seeds" in text
    assert "sbs (plain teacher) **(primary)** |" in text
    assert ": sbs (plain teacher) − finetune | -25.0 points" in text  # a secondary one carries its Holm p
    holm_cells = [line.rsplit("|", 2)[1].strip() for line in text.splitlines() if " − " in line and "| 0." in line]
    assert "–" in holm_cells and any(cell != "–" for cell in holm_cells)

    # Fewer seeds than planned: shown, but not recorded as the primary result.
    text, record = build_report_and_primary(_grid(3, plainer, untrained), figures=tmp_path, plan=plan)
    assert record is None and "Fewer seeds than planned" in text
    # A student of the comparison that does not beat the untrained one: not interpretable.
    text, record = build_report_and_primary(_grid(5, untrained, untrained), figures=tmp_path, plan=plan)
    assert record["learned"] is False and "Not interpretable" in text
    # A plan whose size is not fixed yet: nothing is primary, and every comparison gets its Holm p.
    text, record = build_report_and_primary(_grid(5, plainer, untrained), figures=tmp_path,
                                            plan=Plan(**{**plan.__dict__, "fraction": None}))
    assert record is None and "That size is not fixed yet" in text and "(primary)" not in text


def test_secondary_comparisons_need_the_holm_adjusted_p_value_too(tmp_path):
    untrained = [0] * 40
    snapshots = [_snapshot(v, 0, {"untrained": untrained, "finetune": [1] * 20 + [0] * 20,
                                  "distill": [1] * 20 + [0] * 20, "sbs": [1] * 26 + [0] * 14})
                 for v in ("plain", "rag")]
    text, _ = build_report_and_primary(snapshots, figures=tmp_path)
    line = next(x for x in text.splitlines() if "sbs (plain teacher) − finetune" in x)
    # +15 points on 6 of 40 questions: the interval excludes zero; p about 0.03 before and above 0.05 after Holm.
    assert "not decided after Holm's correction, though the interval excludes zero" in line


def test_the_plan_names_a_bad_field(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"dataset": "openbookqa", "fraction": None, "a": "x", "b": "y", "seeds": 5}))
    with pytest.raises(DataError, match=r"plan.json: missing min_seeds, metric; unknown seeds"):
        load_plan(path)
    assert load_plan(tmp_path / "none.json") is None
    committed = load_plan()
    assert committed.a == "sbs (rag teacher)" and committed.b == "sbs (plain teacher)" and committed.min_seeds >= 5


def test_the_teachers_comparison_counts_once_per_dataset_in_the_holm_family(tmp_path):
    half = [1, 0] * 20
    snapshots = []
    for fraction in (0.1, 0.2):
        for variant in ("plain", "rag"):
            snapshot = _snapshot(variant, 0, {f"teacher-{variant}": half, "finetune": half, "distill": half,
                                              "sbs": half})
            snapshots.append({**snapshot, "fraction": fraction, "cell": f"{snapshot['cell']}-{fraction}"})
    text, _ = build_report_and_primary(snapshots, figures=tmp_path)
    # Five comparisons in each of two tables, the teachers' one the same test in both.
    assert "Secondary comparisons (9 in this report)" in text
