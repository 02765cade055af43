"""The glue between the teacher and the students: which examples are annotated, how annotations reach
the split, and the fixed demonstrations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragdistill.data.registry import DATASETS, load_dataset
from ragdistill.data.split import choose_training, with_annotations
from ragdistill.pipeline.annotate_teacher import annotation_record
from ragdistill.teachers.demonstrations import pick_demonstrations


def test_choose_training_is_deterministic_and_sized(tiny_examples):
    examples = tiny_examples(20)
    first, valid = choose_training(examples, 0.5, 0.0, seed=3)
    again, _ = choose_training(examples, 0.5, 0.0, seed=3)
    assert [e.id for e in first] == [e.id for e in again] and len(first) == 10 and valid == []
    other, _ = choose_training(examples, 0.5, 0.0, seed=4)
    assert [e.id for e in other] != [e.id for e in first]
    everything, held_out = choose_training(examples, 1.0, 0.2, seed=0)
    assert len(everything) + len(held_out) == 20 and len(held_out) == 4
    assert not {e.id for e in everything} & {e.id for e in held_out}


def test_annotations_reach_the_split(tiny_examples):
    palm, plain, none = tiny_examples(3), tiny_examples(3), tiny_examples(3)
    original = palm[0].rationale
    # palm: the record only points at data/prepared, the prepared teacher output stays.
    merged = with_annotations(palm, {palm[0].id: {"id": palm[0].id, "split": "train", "source": "data/prepared"}})
    assert merged[0].rationale == original
    # none: no teacher output at all.
    merged = with_annotations(none, {e.id: {"id": e.id, "split": "train", "source": None} for e in none})
    assert all(e.rationale is None and e.teacher_label is None for e in merged)
    # plain / rag: the record carries the teacher's output and its meta.
    annotated = plain[1]
    annotated.rationale, annotated.teacher_label = "Because kids play.", "play"
    annotated.meta["prompt_hash"] = "abc"
    record = annotation_record(annotated, "train")
    fresh = tiny_examples(3)
    merged = with_annotations(fresh, {record["id"]: record})
    assert (merged[1].rationale, merged[1].teacher_label, merged[1].meta["prompt_hash"]) == (
        "Because kids play.", "play", "abc")
    assert merged[0].rationale == fresh[0].rationale  # examples without a record are untouched


@pytest.mark.parametrize("dataset", ["openbookqa", "cqa", "svamp", "strategyqa"])
def test_demonstrations_exist_in_each_training_set(dataset, data_root):
    train = load_dataset(dataset, data_root, "train")
    demos = pick_demonstrations(dataset, train, 3)
    assert len(demos) == 3 and all(d.rationale for d in demos)
    assert all(d.label in (d.choices or [d.label]) for d in demos)
    handwritten = DATASETS[dataset].demonstrations
    if handwritten:
        assert [d.id for d in demos] == list(handwritten)[:3]
    # The training examples themselves keep their own (teacher) fields.
    by_id = {e.id: e for e in train}
    assert all(by_id[d.id].rationale != d.rationale or dataset == "strategyqa" for d in demos)
    with pytest.raises(ValueError, match="demonstrations"):
        pick_demonstrations(dataset, train[:0], 2)


def test_environment_overrides_the_configured_data_root(monkeypatch, tmp_path):
    from ragdistill.data.registry import resolve_data_root

    monkeypatch.setenv("RAGDISTILL_DATA", str(tmp_path))
    assert resolve_data_root("/no/such/folder") == tmp_path
    monkeypatch.delenv("RAGDISTILL_DATA")
    with pytest.raises(FileNotFoundError, match="data.root"):
        resolve_data_root(tmp_path / "missing")


def test_finetune_and_evaluation_inputs_do_not_depend_on_the_teacher(tiny_examples, tmp_path, monkeypatch):
    """split writes train-finetune.jsonl and eval.jsonl without teacher outputs: byte-identical whichever
    teacher annotated, so DVC skips finetune (train, evaluate, cost) after `-S teacher=...`."""
    from dataclasses import replace

    import yaml

    from ragdistill import paths
    from ragdistill.config import load_params
    from ragdistill.data.example import save_examples
    from ragdistill.pipeline.split import run as split

    monkeypatch.chdir(tmp_path)
    examples = tiny_examples(12)
    save_examples(paths.prepared("cqa", "train"), examples[:8])
    save_examples(paths.prepared("cqa", "eval"), examples[8:])
    params = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())
    outputs = {}
    for teacher in ("plain", "rag"):
        records = [annotation_record(replace(e, rationale=f"{teacher} says {e.label}", teacher_label=e.label,
                                             meta={"prompt_hash": teacher}), "train" if i < 8 else "eval")
                   for i, e in enumerate(examples)]
        paths.annotations("cqa", teacher).parent.mkdir(parents=True, exist_ok=True)
        paths.annotations("cqa", teacher).write_text("".join(json.dumps(r) + "\n" for r in records))
        params.update(teacher=teacher)
        params["split"]["fraction"]["cqa"] = 0.5
        params["split"]["valid_size"] = 0.25
        Path("params.yaml").write_text(yaml.safe_dump(params))
        split(load_params(), "cqa")
        outputs[teacher] = {name: paths.split_file("cqa", name).read_bytes()
                            for name in ("train-distill", "train-sbs", "train-finetune", "valid", "eval")}
    plain, rag = outputs["plain"], outputs["rag"]
    assert plain["train-finetune"] == rag["train-finetune"] and plain["eval"] == rag["eval"]
    assert plain["valid"] == rag["valid"] and plain["valid"]
    assert plain["train-sbs"] != rag["train-sbs"] and b"plain says" in plain["train-sbs"]
    assert plain["train-distill"] == plain["train-sbs"]
    gold = [json.loads(line) for line in plain["train-finetune"].decode().splitlines()]
    train = [json.loads(line) for line in plain["train-sbs"].decode().splitlines()]
    assert [row["id"] for row in gold] == [row["id"] for row in train] and len(gold) == 3
    held_out = [json.loads(line) for line in plain["valid"].decode().splitlines()]
    for row in gold + held_out + [json.loads(line) for line in plain["eval"].decode().splitlines()]:
        assert row.get("rationale") is None and row.get("teacher_label") is None
        assert "prompt_hash" not in row["meta"]
    assert [paths.training_file("cqa", m).name for m in ("finetune", "distill", "sbs")] == [
        "train-finetune.jsonl", "train-distill.jsonl", "train-sbs.jsonl"]


def _stage_dir(tmp_path, monkeypatch, tiny_examples, teacher: str, valid_size: float = 0.0):
    """A scratch working directory with prepared OpenBookQA-like examples and a params.yaml for ``teacher``."""
    import yaml

    from ragdistill import paths
    from ragdistill.data.example import save_examples

    monkeypatch.chdir(tmp_path)
    examples = tiny_examples(12)
    for i, example in enumerate(examples):
        example.rationale = example.teacher_label = None
        example.meta = {"gold_fact": f"fact number {i}" if i != 3 else None}
    save_examples(paths.prepared("openbookqa", "train"), examples[:8])
    save_examples(paths.prepared("openbookqa", "eval"), examples[8:])
    params = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())
    params.update(teacher=teacher, datasets=["openbookqa"])
    params["split"].update(valid_size=valid_size, fraction={"openbookqa": 1.0})
    Path("params.yaml").write_text(yaml.safe_dump(params))
    return examples


def test_gold_fact_control_annotates_every_training_question_with_its_fact(tmp_path, monkeypatch, tiny_examples):
    from ragdistill import paths
    from ragdistill.config import load_params
    from ragdistill.data.example import load_examples
    from ragdistill.io import read_jsonl
    from ragdistill.pipeline.annotate_teacher import run as annotate_stage
    from ragdistill.pipeline.split import run as split

    examples = _stage_dir(tmp_path, monkeypatch, tiny_examples, "gold_fact")
    report = annotate_stage(load_params(), "openbookqa")
    assert report == {"dataset": "openbookqa", "teacher": "gold_fact", "train": 8, "with_fact": 7, "eval": None}
    records = {r["id"]: r for r in read_jsonl(paths.annotations("openbookqa", "gold_fact"))}
    assert records[examples[0].id]["rationale"] == "fact number 0" and records[examples[3].id]["rationale"] is None
    assert all(records[e.id]["teacher_label"] == e.label for e in examples[:8])
    split(load_params(), "openbookqa")
    sbs = {e.id: e for e in load_examples(paths.split_file("openbookqa", "train-sbs"))}
    assert sbs[examples[5].id].rationale == "fact number 5" and sbs[examples[3].id].rationale is None


def test_gold_fact_control_needs_facts(tmp_path, monkeypatch, tiny_examples):
    from ragdistill import paths
    from ragdistill.config import load_params
    from ragdistill.data.example import load_examples, save_examples
    from ragdistill.pipeline.annotate_teacher import run as annotate_stage

    _stage_dir(tmp_path, monkeypatch, tiny_examples, "gold_fact")
    train = load_examples(paths.prepared("openbookqa", "train"))
    for example in train:
        example.meta = {}
    save_examples(paths.prepared("openbookqa", "train"), train)
    with pytest.raises(SystemExit, match="teacher gold_fact needs gold facts"):
        annotate_stage(load_params(), "openbookqa")


def test_split_refuses_an_unfinished_annotation(tmp_path, monkeypatch, tiny_examples):
    from ragdistill import paths
    from ragdistill.config import load_params
    from ragdistill.io import DataError
    from ragdistill.pipeline.split import run as split

    examples = _stage_dir(tmp_path, monkeypatch, tiny_examples, "plain", valid_size=0.25)
    # A run stopped after 5 of the 8 training questions published what it had.
    done = [annotation_record(e, "train") for e in examples[:5]]
    paths.annotations("openbookqa", "plain").parent.mkdir(parents=True)
    paths.annotations("openbookqa", "plain").write_text("".join(json.dumps(r) + "\n" for r in done))
    with pytest.raises(DataError, match=r"openbookqa-plain.jsonl: no teacher record for 3 of the 8 chosen training "
                                        r"examples .*dvc repro annotate-teacher@openbookqa"):
        split(load_params(), "openbookqa")
    assert not paths.split_file("openbookqa", "train-sbs").exists()


def test_split_holds_out_validation_from_the_training_questions(tmp_path, monkeypatch, tiny_examples):
    from ragdistill import paths
    from ragdistill.config import load_params
    from ragdistill.data.example import load_examples
    from ragdistill.pipeline.split import run as split

    examples = _stage_dir(tmp_path, monkeypatch, tiny_examples, "gold_fact", valid_size=0.25)
    from ragdistill.pipeline.annotate_teacher import run as annotate_stage

    annotate_stage(load_params(), "openbookqa")
    info = split(load_params(), "openbookqa")
    assert (info["train"], info["valid"], info["eval"]) == (6, 2, 4)
    ids = {name: {e.id for e in load_examples(paths.split_file("openbookqa", name))}
           for name in ("train-sbs", "valid", "eval")}
    assert ids["valid"] | ids["train-sbs"] == {e.id for e in examples[:8]}
    assert not ids["valid"] & ids["train-sbs"] and not ids["valid"] & ids["eval"]
