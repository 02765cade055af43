"""The learning gate: every student against the untrained student, paired on the same questions."""

from __future__ import annotations

import json

import pytest

from ragdistill import paths
from ragdistill.pipeline.summarize import learning_gate


def _predictions(dataset: str, method: str, correct: list[bool]) -> None:
    path = paths.predictions(dataset, method)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": f"q{i}", "correct": c}) + "\n" for i, c in enumerate(correct)))


def test_a_student_learned_only_when_the_paired_interval_is_above_zero(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = [i % 3 == 0 for i in range(300)]  # 33.3%
    _predictions("obqa", "untrained", base)
    _predictions("obqa", "finetune", [c or i % 3 == 1 for i, c in enumerate(base)])  # 66.7%: 100 more right
    _predictions("obqa", "sbs", [not c if i % 30 in (0, 1) else c for i, c in enumerate(base)])  # 10 each way: noise
    gate = learning_gate("obqa", ["finetune", "sbs"], resamples=2000, seed=0)
    assert gate["untrained"] == {"accuracy": 33.33} and gate["questions"] == 300
    finetune, sbs = gate["rows"]
    assert finetune["name"] == "finetune" and finetune["accuracy"] == 66.67 and finetune["learned"] is True
    assert finetune["minus_untrained"]["diff"] == pytest.approx(33.33)
    assert 0 < finetune["minus_untrained"]["low"] < 33.33 < finetune["minus_untrained"]["high"]
    assert sbs["minus_untrained"]["diff"] == 0.0 and sbs["learned"] is False
    assert sbs["minus_untrained"]["low"] < 0 < sbs["minus_untrained"]["high"]


def test_students_scored_on_other_questions_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _predictions("obqa", "untrained", [True, False, True])
    _predictions("obqa", "sbs", [True, False])
    with pytest.raises(ValueError, match="not the questions of"):
        learning_gate("obqa", ["sbs"], resamples=100, seed=0)
