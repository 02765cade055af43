"""benchmarks/teacher_selection.py on real OpenBookQA training questions with a real (small) LLM teacher:
the selection set stays outside the students' questions, every configuration is a row, the oracle reads the
gold fact, and nothing reads the evaluation split."""

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from ragdistill.data.example import load_examples
from ragdistill.data.split import choose_training, teacher_selection_set
from ragdistill.io import DataError

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "teacher_selection.py"


def _module():
    spec = importlib.util.spec_from_file_location("teacher_selection", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_selection_set_is_the_same_at_every_fraction_and_outside_every_students_part(tiny_examples):
    examples = tiny_examples(40)
    selection = teacher_selection_set(examples, 8, seed=1)
    ids = [e.id for e in selection]
    assert len(selection) == 8 and ids == [e.id for e in examples if e.id in set(ids)]  # training-set order
    for fraction in (0.25, 0.5, 0.8, 1.0):
        chosen, valid = choose_training(examples, fraction, 0.2, seed=1, held_out=8)
        assert not set(ids) & {e.id for e in chosen + valid}, fraction
        assert len(chosen) + len(valid) == (32 if fraction == 1.0 else int(fraction * 40))
    # Another seed, another set.
    assert teacher_selection_set(examples, 8, seed=2) != selection
    with pytest.raises(DataError, match="split.teacher_selection is 0"):
        teacher_selection_set(examples, 0, seed=1)


def test_the_students_part_refuses_a_fraction_the_held_out_questions_leave_no_room_for(tiny_examples):
    examples = tiny_examples(40)
    with pytest.raises(DataError, match=r"split.fraction 0.9 of 40 training questions is 36, and 32 are left"):
        choose_training(examples, 0.9, 0.2, seed=1, held_out=8)
    with pytest.raises(DataError, match="40 questions held out of 40"):
        choose_training(examples, 1.0, 0.2, seed=1, held_out=40)
    # With nothing held out, a fraction is drawn from the whole set.
    chosen, valid = choose_training(examples, 0.9, 0.2, seed=1)
    assert len(chosen) + len(valid) == 36


def test_at_fraction_one_the_students_get_every_question_but_the_selection_set(tiny_examples):
    examples = tiny_examples(40)
    chosen, valid = choose_training(examples, 1.0, 0.2, seed=1, held_out=8)
    selection = teacher_selection_set(examples, 8, seed=1)
    assert len(chosen) + len(valid) == 32 and len(selection) == 8
    assert {e.id for e in chosen + valid} | {e.id for e in selection} == {e.id for e in examples}


def test_every_configuration_is_a_row_chosen_on_training_questions(tmp_path, monkeypatch, data_root, smollm2_gguf):
    from ragdistill.config import load_params
    from ragdistill.pipeline.prepare import run as prepare

    monkeypatch.chdir(tmp_path)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"].update(root=str(data_root))
    params["teacher_model"].update(model="smollm2-135m-instruct", max_new_tokens=24)
    Path("params.yaml").write_text(yaml.safe_dump(params))
    prepare(load_params(), "openbookqa")
    selection = _module()
    selection.main(["--configs", "plain", "rag-dense-k1", "oracle", "plain-rationalize", "--n", "4", "--out",
                    "selection"])
    report = json.loads(Path("selection.json").read_text())
    assert list(report["rows"]) == ["plain", "rag-dense-k1", "oracle", "plain-rationalize"] and report["selection"] == 4
    # Rationalizing: shown the gold answer, with no facts; never chosen, and not a teacher to compare with plain.
    hinted = report["rows"].pop("plain-rationalize")
    assert hinted["gold_fact_read"] is None and "minus_plain" not in hinted and hinted["asked"] == 4
    assert report["rows"]["oracle"]["gold_fact_read"] == 100.0 and report["rows"]["plain"]["gold_fact_read"] is None
    assert report["rows"]["rag-dense-k1"]["facts_per_question"] == 1
    # Per question, whether the gold fact was read, and accuracy split on it against plain's on the same questions.
    k1 = report["rows"]["rag-dense-k1"]
    assert len(k1["gold_read"]) == 4 and 100 * sum(k1["gold_read"]) / 4 == k1["gold_fact_read"]
    parts = k1["by_gold_read"]
    assert parts["read"]["n"] + parts["not_read"]["n"] == 4
    assert report["rows"]["oracle"]["by_gold_read"]["read"]["n"] == 4
    assert report["chosen_rag"] == "rag-dense-k1"  # the oracle is never chosen
    assert "minus_plain" in report["rows"]["oracle"] and "minus_plain" not in report["rows"]["plain"]
    # The four questions are training questions outside the students' part at any fraction.
    train = load_examples(Path("data/prepared/openbookqa/train.jsonl"))
    asked = set(report["question_ids"])
    for fraction in (params["split"]["fraction"]["openbookqa"], 1.0):
        chosen, valid = choose_training(train, fraction, params["split"]["valid_size"], report["seed"],
                                        held_out=params["split"]["teacher_selection"])
        assert len(asked) == 4 and asked <= {e.id for e in train} and not asked & {e.id for e in chosen + valid}
    # A prompt two configurations share (the oracle's, where dense retrieval found the gold fact) is asked once.
    cached = [json.loads(line) for line in Path(".cache/teacher/openbookqa.jsonl").open()]
    assert len(cached) == sum(row["asked"] for row in report["rows"].values()) + 4
    assert report["rows"]["plain"]["asked"] == 4
    text = Path("selection.md").read_text()
    assert "| oracle (oracle: not deployable) |" in text and "**rag-dense-k1**" in text
    assert "| plain-rationalize (shown the gold answer) |" in text and "| read: questions |" in text
    # Without the reply cache (another machine), a rerun keeps the configurations the report holds and asks
    # only for the new one; a report of another setup would not be reused.
    Path(".cache/teacher/openbookqa.jsonl").unlink()
    selection.main(["--configs", "plain", "oracle", "rag-dense-k3", "--n", "4", "--out", "selection"])
    again = json.loads(Path("selection.json").read_text())
    assert again["rows"]["plain"] == report["rows"]["plain"] and again["rows"]["oracle"] == report["rows"]["oracle"]
    asked = [json.loads(line) for line in Path(".cache/teacher/openbookqa.jsonl").open()]
    assert len(asked) == again["rows"]["rag-dense-k3"]["asked"] == 4 and list(again["rows"]) == [
        "plain", "rag-dense-k1", "oracle", "plain-rationalize", "rag-dense-k3"]  # the earlier run's rows stay
