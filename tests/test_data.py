"""Loading CQA and SVAMP with the PaLM teacher outputs, and rejecting bad files clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragdistill.data import Example, load_dataset, load_examples, save_examples
from ragdistill.data.dss import format_choices, parse_cqa_completion, parse_svamp_completion
from ragdistill.evaluation import is_correct
from ragdistill.evaluation.arith import try_eval
from ragdistill.io import DataError, atomic_open, read_json_or_jsonl, read_jsonl, write_jsonl

# --------------------------------------------------------------------------- completion parsing


def test_cqa_completion_cuts_run_on_few_shot_block():
    text = ("The answer must be the place where beavers get their supplies. Of the above choices, only wooded "
            "areas have the supplies that beavers need. So the answer is (c) wooded area.\n\nQ: What is the best "
            "way to get rid of a bad smell?\nAnswer Choices:\n(a) air freshener\n(b) air conditioner\n"
            "A: Only air fresheners get rid of bad smells. So the answer is (a) air freshener.")
    rationale, label = parse_cqa_completion(text)
    assert label == "wooded area"
    assert rationale.startswith("The answer must be the place")
    assert rationale.endswith("only wooded areas have the supplies that beavers need.")
    assert "Q:" not in rationale and "air freshener" not in rationale


def test_cqa_completion_without_answer_phrase():
    text = "Kids like to play, and (b) play fits.\n\nQ: another question"
    rationale, label = parse_cqa_completion(text)
    assert label is None
    assert rationale == "Kids like to play, and (b) play fits."


@pytest.mark.parametrize(
    ("tail", "label"),
    [
        ("So the answer is (d) math problem.", "math problem"),
        ("So the answer is (d) math problem", "math problem"),
        ("So the answer is (e) St. Louis.", "St. Louis"),
        ("So the answer is (b) bus depot.  ", "bus depot"),
        ("So the answer is (d).", None),
        ("So the answer is math problem.", None),
    ],
)
def test_cqa_completion_labels(tail, label):
    rationale, parsed = parse_cqa_completion("It is a counting exercise. " + tail)
    assert parsed == label
    assert rationale == "It is a counting exercise."


def test_svamp_completion_nested_parentheses():
    rationale, equation = parse_svamp_completion("Add 3 and 4, then double. The answer is ((3 + 4) * 2).")
    assert rationale == "Add 3 and 4, then double."
    assert try_eval(equation) == 14.0
    assert equation == "(3 + 4) * 2"


def test_svamp_completion_cuts_run_on_block():
    text = ("They put 10 seeds in each flower bed. There are 45 flower beds. So they planted 10 * 45 seeds. "
            "10 * 45 is 450. The answer is (10 * 45).\n\nQ: There are 15 trees in the grove. How many trees "
            "did they plant?\nA: 21 - 15 = 6. The answer is (21 - 15).")
    rationale, equation = parse_svamp_completion(text)
    assert equation == "10 * 45"
    assert rationale.endswith("10 * 45 is 450.")
    assert "Q:" not in rationale and "grove" not in rationale


@pytest.mark.parametrize(
    ("text", "equation"),
    [
        ("So 7 rows. The answer is (7 * 30)", "7 * 30"),
        ("So 7 rows. The answer is ( 7.0 * 30.0 ) .", "7.0 * 30.0"),
        ("The answer is (10 * 45). (That is 450 seeds.)", "10 * 45"),
        ("The answer is 450.", None),
        ("Ten times forty-five is four hundred fifty.", None),
    ],
)
def test_svamp_completion_equations(text, equation):
    assert parse_svamp_completion(text)[1] == equation


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("So he deleted 13 + 3 = 16 more apps. The answer is (19 - 6) + (18 - 15).", 16.0),
        ("The answer is (30 * 71) + (30 * 24).\n\nQ: next", 2850.0),
    ],
)
def test_svamp_completion_sum_of_parenthesized_terms(text, value):
    equation = parse_svamp_completion(text)[1]
    assert try_eval(equation) == value


def test_format_choices():
    text = format_choices("  Where?  ", ["park", "garden"])
    assert text == "Where?\nAnswer Choices:\n(a) park\n(b) garden"


# --------------------------------------------------------------------------- the real datasets


@pytest.fixture(scope="module")
def cqa(data_root):
    return {split: load_dataset("cqa", data_root, split) for split in ("train", "eval")}


@pytest.fixture(scope="module")
def svamp(data_root):
    return {split: load_dataset("svamp", data_root, split) for split in ("train", "eval")}


def test_cqa_sizes_and_choices(cqa):
    assert len(cqa["train"]) == 9741
    assert len(cqa["eval"]) == 1221
    for split in ("train", "eval"):
        for example in cqa[split]:
            assert example.source == "cqa"
            assert len(example.choices) == 5
            assert example.label in example.choices
            assert example.input.count("\n(") == 5
    ids = [e.id for e in cqa["train"]]
    assert len(set(ids)) == len(ids)


def test_cqa_first_row(cqa):
    first = cqa["train"][0]
    assert first.label == "math problem"
    assert first.input.startswith('"There are 10 apples on an apple tree.')
    assert first.input.endswith("(d) math problem\n(e) gravity")


def _check_teacher(examples: list[Example]) -> None:
    assert all(e.meta.get("teacher") == "palm-540b" for e in examples)
    with_rationale = sum(1 for e in examples if e.rationale)
    unparsed = sum(1 for e in examples if not e.teacher_label)
    assert with_rationale >= 0.95 * len(examples)
    assert unparsed < 0.05 * len(examples)
    assert not any(e.rationale and "\nQ:" in e.rationale for e in examples)


@pytest.mark.parametrize("split", ["train", "eval"])
def test_cqa_teacher_outputs(cqa, split):
    _check_teacher(cqa[split])


def test_cqa_teacher_accuracy(cqa):
    examples = cqa["eval"]
    accuracy = sum(is_correct(e.teacher_label, e.label, "choice") for e in examples) / len(examples)
    assert 0.6 < accuracy < 0.9
    # The teacher's labels are almost always one of the choices.
    in_choices = sum(1 for e in examples if e.teacher_label in e.choices)
    assert in_choices > 0.9 * len(examples)


def test_svamp_sizes_and_labels(svamp):
    assert len(svamp["train"]) == 800
    assert len(svamp["eval"]) == 200
    assert svamp["train"][0].label == "( 84.0 / 2.0 )"
    assert svamp["train"][0].input.startswith("Luke scored 84 points")
    for split in ("train", "eval"):
        for example in svamp[split]:
            assert example.choices is None
            assert try_eval(example.label) is not None
        ids = [e.id for e in svamp[split]]
        assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("split", ["train", "eval"])
def test_svamp_teacher_outputs(svamp, split):
    _check_teacher(svamp[split])
    evaluable = sum(1 for e in svamp[split] if e.teacher_label and try_eval(e.teacher_label) is not None)
    assert evaluable >= 0.9 * len(svamp[split])


def test_svamp_teacher_accuracy(svamp):
    examples = svamp["eval"]
    accuracy = sum(is_correct(e.teacher_label, e.label, "arithmetic") for e in examples) / len(examples)
    assert 0.5 < accuracy < 0.95


def test_unknown_dataset_and_split(data_root):
    with pytest.raises(KeyError, match="unknown dataset"):
        load_dataset("imagenet", data_root, "train")
    with pytest.raises(KeyError, match="unknown split"):
        load_dataset("cqa", data_root, "test")


def test_missing_data_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset("cqa", tmp_path / "nowhere", "train")


# --------------------------------------------------------------------------- bad files


def _cqa_row(i: int, **changes) -> dict:
    row = {"id": f"q{i}", "question": f"Question {i}?", "choices": ["a", "b", "c", "d", "e"], "answer": "c"}
    row.update(changes)
    return row


def _write_cqa(root: Path, lines: list[str], split: str = "train") -> Path:
    path = root / "dss" / "cqa" / f"cqa_{split}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_small_layout_loads(tmp_path):
    _write_cqa(tmp_path, [json.dumps(_cqa_row(i)) for i in range(3)])
    examples = load_dataset("cqa", tmp_path, "train")
    assert [e.id for e in examples] == ["q0", "q1", "q2"]
    assert all(e.teacher_label is None and e.rationale is None and not e.meta for e in examples)


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ('{"id": "q2", "question": ', "invalid JSON"),
        (json.dumps({"id": "q2", "question": "Q?", "choices": ["a", "b"]}), "missing field 'answer'"),
        (json.dumps(_cqa_row(2, question="   ")), "empty question"),
        (json.dumps(_cqa_row(2, answer="z")), "not among the choices"),
        ("[1, 2, 3]", "expected a JSON object"),
    ],
)
def test_bad_cqa_row_names_file_and_line(tmp_path, bad_line, message):
    path = _write_cqa(tmp_path, [json.dumps(_cqa_row(0)), json.dumps(_cqa_row(1)), bad_line,
                                 json.dumps(_cqa_row(3))])
    with pytest.raises(DataError) as info:
        load_dataset("cqa", tmp_path, "train")
    text = str(info.value)
    assert f"{path}:3:" in text
    assert message in text


def test_non_utf8_byte_names_file_and_line(tmp_path):
    path = _write_cqa(tmp_path, [json.dumps(_cqa_row(i)) for i in range(4)])
    raw = path.read_bytes().split(b"\n")
    raw[1] = raw[1].replace(b"Question 1", b"Question \xff1")
    path.write_bytes(b"\n".join(raw))
    with pytest.raises(DataError) as info:
        load_dataset("cqa", tmp_path, "train")
    assert f"{path}:2:" in str(info.value)
    assert "UTF-8" in str(info.value) and "0xff" in str(info.value)


def test_bad_svamp_label(tmp_path):
    path = tmp_path / "dss" / "svamp" / "svamp_test.json"
    path.parent.mkdir(parents=True)
    rows = [{"input": "Two and two?", "label": "( 2.0 + 2.0 )"}, {"input": "Oops?", "label": "__import__('os')"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="not an arithmetic expression") as info:
        load_dataset("svamp", tmp_path, "eval")
    assert f"{path}:2:" in str(info.value)


def test_teacher_completions_attach_in_numeric_chunk_order(tmp_path):
    _write_cqa(tmp_path, [json.dumps(_cqa_row(i)) for i in range(11)])
    llm = tmp_path / "dss" / "cqa" / "llm"
    llm.mkdir()
    # Eleven chunks of one completion: lexicographic order would put train_CoT_10 before train_CoT_2.
    for i in range(11):
        (llm / f"train_CoT_{i}.json").write_text(json.dumps([f"Reason {i}. So the answer is (c) c."]))
    examples = load_dataset("cqa", tmp_path, "train")
    assert [e.rationale for e in examples] == [f"Reason {i}." for i in range(11)]
    assert all(e.teacher_label == "c" and e.meta["teacher"] == "palm-540b" for e in examples)


def test_teacher_completion_count_mismatch(tmp_path):
    _write_cqa(tmp_path, [json.dumps(_cqa_row(i)) for i in range(3)])
    llm = tmp_path / "dss" / "cqa" / "llm"
    llm.mkdir()
    (llm / "train_CoT_0.json").write_text(json.dumps(["So the answer is (c) c."] * 2))
    with pytest.raises(DataError, match="2 train completions for 3 rows"):
        load_dataset("cqa", tmp_path, "train")


def test_teacher_chunk_must_be_a_list(tmp_path):
    _write_cqa(tmp_path, [json.dumps(_cqa_row(0))])
    llm = tmp_path / "dss" / "cqa" / "llm"
    llm.mkdir()
    (llm / "train_CoT_0.json").write_text(json.dumps({"text": "x"}))
    with pytest.raises(DataError, match="train_CoT_0.json:1:"):
        load_dataset("cqa", tmp_path, "train")


def test_line_number_after_blank_line(tmp_path):
    path = _write_cqa(tmp_path, [json.dumps(_cqa_row(0)), "", json.dumps(_cqa_row(2, answer="z"))])
    with pytest.raises(DataError) as info:
        load_dataset("cqa", tmp_path, "train")
    assert f"{path}:3:" in str(info.value)


# --------------------------------------------------------------------------- io


def test_read_jsonl_line_numbers(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n   \n{"a": 2}\n{"a": \n{"a": 4}\n', encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_jsonl(path)
    assert str(info.value).startswith(f"{path}:5: invalid JSON")
    path.write_text('{"a": 1}\n\n{"a": 2}\r\n', encoding="utf-8")
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]


def test_read_jsonl_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="file not found"):
        read_jsonl(tmp_path / "missing.jsonl")


def test_read_json_or_jsonl_accepts_both(tmp_path):
    rows = [{"a": 1}, {"b": "ü"}]
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    lines = tmp_path / "lines.json"
    write_jsonl(lines, rows)
    assert read_json_or_jsonl(listed) == rows
    assert read_json_or_jsonl(lines) == rows
    broken = tmp_path / "broken.json"
    broken.write_text('[\n  {"a": 1},\n  {"a" 2}\n]', encoding="utf-8")
    with pytest.raises(DataError, match=r"broken.json:3: invalid JSON"):
        read_json_or_jsonl(broken)


def test_examples_round_trip(tmp_path, tiny_examples):
    examples = tiny_examples(3, no_teacher=(1,))
    path = tmp_path / "out" / "examples.jsonl"
    assert save_examples(path, examples) == 3
    assert load_examples(path) == examples
    assert not list(path.parent.glob(".*.tmp"))  # the atomic write left no temporary file


def test_failed_atomic_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "rows.jsonl"
    write_jsonl(path, [{"a": 1}])

    def rows():
        yield {"a": 2}
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_jsonl(path, rows())
    assert read_jsonl(path) == [{"a": 1}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.jsonl"]
    with atomic_open(tmp_path / "new" / "file.txt") as handle:
        handle.write("done")
    assert (tmp_path / "new" / "file.txt").read_text() == "done"


def test_an_atomic_write_gets_the_mode_of_a_plain_new_file(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        write_jsonl(tmp_path / "rows.jsonl", [{"a": 1}])
        (tmp_path / "plain.txt").write_text("x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "rows.jsonl").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == 0o644


def test_load_examples_rejects_missing_field(tmp_path):
    path = tmp_path / "examples.jsonl"
    path.write_text(json.dumps({"id": "1", "input": "x", "label": "y"}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"examples.jsonl:1: missing field 'source'"):
        load_examples(path)


def test_jsonl_round_trip_with_unicode_line_separators(tmp_path):
    rows = [{"text": "one\u2028two"}, {"text": "three\x85four"}, {"text": "five\u2029six"}]
    path = tmp_path / "rows.jsonl"
    write_jsonl(path, rows)
    assert read_jsonl(path) == rows


def test_prepared_output_does_not_depend_on_how_the_data_directory_is_spelled(tmp_path, monkeypatch):
    from ragdistill.config import validate
    from ragdistill.pipeline.prepare import run as prepare

    data = tmp_path / "data"
    _write_cqa(data, [json.dumps(_cqa_row(i)) for i in range(3)])
    _write_cqa(data, [json.dumps(_cqa_row(i)) for i in range(3, 5)], split="test")
    outputs = []
    for spelling in (str(data), "../data", "../data/"):
        workspace = tmp_path / "repo"
        workspace.mkdir(exist_ok=True)
        monkeypatch.chdir(workspace)
        monkeypatch.delenv("RAGDISTILL_DATA", raising=False)
        prepare(validate({"data": {"root": spelling}}), "cqa")
        outputs.append({p.name: p.read_bytes() for p in sorted(Path("data/prepared/cqa").iterdir())})
    assert set(outputs[0]) == {"train.jsonl", "eval.jsonl", "summary.json"}
    assert outputs[0] == outputs[1] == outputs[2]
    assert b"data" not in outputs[0]["summary.json"].replace(b'"dataset"', b"")
