"""The glue between the teacher and the students: which examples are annotated, how annotations reach
the split, and the fixed demonstrations."""

from __future__ import annotations

import http.server
import json
import re
import threading
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
        params["split"]["teacher_selection"] = 0  # 12 questions: none to spare
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
    # No teacher-selection set: at fraction 1 the students get all 8 questions.
    params["split"].update(valid_size=valid_size, fraction={"openbookqa": 1.0}, teacher_selection=0)
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
    from ragdistill.data.example import load_examples
    from ragdistill.io import DataError
    from ragdistill.pipeline.split import run as split

    _stage_dir(tmp_path, monkeypatch, tiny_examples, "plain", valid_size=0.25)
    train = load_examples(paths.prepared("openbookqa", "train"))
    chosen, valid = choose_training(train, 1.0, 0.25, seed=0)
    assert (len(chosen), len(valid)) == (6, 2)
    # A run stopped after 3 of the 6 training questions published what it had; validation is scored on gold
    # labels, so its records are not asked for.
    done = [annotation_record(e, "train") for e in chosen[:3] + valid]
    paths.annotations("openbookqa", "plain").parent.mkdir(parents=True)
    paths.annotations("openbookqa", "plain").write_text("".join(json.dumps(r) + "\n" for r in done))
    with pytest.raises(DataError, match=r"openbookqa-plain.jsonl: no teacher record for 3 of the 6 chosen training "
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


def test_the_agree_filter_keeps_for_sbs_only_rationales_whose_label_is_gold(tmp_path, monkeypatch, tiny_examples):
    import yaml

    from ragdistill import paths
    from ragdistill.config import load_params
    from ragdistill.data.example import load_examples
    from ragdistill.pipeline.split import run as split

    examples = _stage_dir(tmp_path, monkeypatch, tiny_examples, "plain")
    records = []
    for i, example in enumerate(examples[:8]):
        wrong = next(c for c in example.choices if c != example.label)
        record = annotation_record(example, "train")
        # Three wrong teacher labels; a fourth was wrong and then corrected by gold_if_wrong.
        record.update(rationale=f"reason {i}", teacher_label=wrong if i in (1, 4, 6) else example.label)
        if i == 7:
            record["meta"] = {"teacher_label_raw": wrong, "label_corrected": True}
        records.append(record)
    paths.annotations("openbookqa", "plain").parent.mkdir(parents=True)
    paths.annotations("openbookqa", "plain").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert split(load_params(), "openbookqa")["train"] == 8
    assert len(load_examples(paths.split_file("openbookqa", "train-sbs"))) == 8
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["split"]["rationale_filter"] = "agree"
    Path("params.yaml").write_text(yaml.safe_dump(params))
    info = split(load_params(), "openbookqa")
    assert info["sbs_dropped"] == 4 and info["rationale_filter"] == "agree"
    sbs = load_examples(paths.split_file("openbookqa", "train-sbs"))
    assert [e.rationale for e in sbs] == ["reason 0", "reason 2", "reason 3", "reason 5"]
    # Only sbs is filtered: finetune and distill keep every chosen example.
    assert len(load_examples(paths.split_file("openbookqa", "train-finetune"))) == 8
    assert len(load_examples(paths.split_file("openbookqa", "train-distill"))) == 8


def test_rag_demonstrations_carry_the_facts_written_with_them_else_their_own_retrieval(data_root):
    train = load_dataset("openbookqa", data_root, "train")
    plain = pick_demonstrations("openbookqa", train, 3)
    rag = pick_demonstrations("openbookqa", train, 3, evidence_by_id={})
    written = list(DATASETS["openbookqa"].demonstrations.values())
    assert all("evidence" not in d.meta for d in plain)
    assert [d.meta["evidence"] for d in rag] == [list(w.evidence) for w in written]
    # The second one's facts do not help, and its RAG rationale says so; the others reason the same way.
    assert rag[1].rationale.startswith("None of these facts") and plain[1].rationale == written[1].rationale
    assert rag[0].rationale == plain[0].rationale
    # Each written rationale is two or three sentences that end before the answer line.
    assert all(2 <= w.rationale.count(". ") + 1 <= 3 for w in written)
    cqa = load_dataset("cqa", data_root, "train")
    first = next(iter(DATASETS["cqa"].demonstrations))
    demos = pick_demonstrations("cqa", cqa, 1, evidence_by_id={first: [{"id": "m1", "text": "Q: x\nA: y"}]})
    assert demos[0].meta["evidence"] == ["Q: x\nA: y"]


class _ExplainingServer(http.server.BaseHTTPRequestHandler):
    """An OpenAI-compatible chat endpoint: it explains the answer it is given, and else picks (a)."""
    systems: list = []
    questions: list = []

    def do_POST(self):  # noqa: N802 (the http.server name)
        messages = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["messages"]
        self.systems.append(messages[0]["content"])
        self.questions.append(messages[-1]["content"])
        given = re.search(r"The correct answer is (\(\w\) [^\n]+)\.$", messages[-1]["content"])
        text = f"It follows from the fact. So the answer is {given.group(1)}." if given else \
            "A guess. So the answer is (a)."
        body = json.dumps({"choices": [{"message": {"content": text}}],
                           "usage": {"prompt_tokens": 10, "completion_tokens": 8}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _annotate_through_explaining_server() -> dict:
    """Run the annotate-teacher stage of the scratch directory against ``_ExplainingServer`` on 127.0.0.1."""
    import yaml

    from ragdistill.config import load_params
    from ragdistill.pipeline.annotate_teacher import run as annotate_stage

    _ExplainingServer.systems, _ExplainingServer.questions = [], []  # this run's requests only
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ExplainingServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        params = yaml.safe_load(Path("params.yaml").read_text())
        params["teacher_model"].update(backend="openai", model="m", demonstrations=0, concurrency=1,
                                       base_url=f"http://127.0.0.1:{server.server_address[1]}/v1")
        Path("params.yaml").write_text(yaml.safe_dump(params))
        return annotate_stage(load_params(), "openbookqa")
    finally:
        server.shutdown()


def test_a_rationalizing_rag_teacher_explains_the_gold_answer_of_training_questions_only(
        tmp_path, monkeypatch, tiny_examples):

    from ragdistill import paths
    from ragdistill.io import read_jsonl, write_json, write_jsonl
    from ragdistill.teachers.prompts import EVIDENCE_INSTRUCTION, HINT_INSTRUCTION

    examples = _stage_dir(tmp_path, monkeypatch, tiny_examples, "rag_rationalize")
    write_jsonl(paths.retrieved("openbookqa"), [{"id": e.id, "passages": [{"id": f"book-{i}", "text": f"fact {i}"}]}
                                                for i, e in enumerate(examples)])
    write_json(paths.REPORTS / "retrieval" / "openbookqa.json", {"seconds_per_query": 0.01})
    report = _annotate_through_explaining_server()
    assert report["rationalize"] is True and report["retrieval"] is not None
    systems = _ExplainingServer.systems
    assert len(systems) == 12 and not [s for s in systems if EVIDENCE_INSTRUCTION not in s]
    assert sum(s.endswith(HINT_INSTRUCTION) for s in systems) == 8
    records = {r["id"]: r for r in read_jsonl(paths.annotations("openbookqa", "rag_rationalize"))}
    train, held_out = examples[:8], examples[8:]
    assert all(records[e.id]["meta"].get("rationalized") and records[e.id]["teacher_label"] == e.label
               for e in train)
    # The evaluation questions are answered freely: the report's accuracy is the teacher's own.
    assert not any(records[e.id]["meta"].get("rationalized") for e in held_out)
    assert report["eval"]["accuracy"] == sum(e.label == e.choices[0] for e in held_out) / len(held_out)


def test_the_oracle_teacher_reads_the_gold_fact_of_evaluation_questions_only_and_students_refuse_it(
        tmp_path, monkeypatch, tiny_examples):

    from ragdistill import paths
    from ragdistill.config import load_params
    from ragdistill.io import DataError, read_jsonl
    from ragdistill.pipeline.split import run as split
    from ragdistill.teachers.prompts import EVIDENCE_INSTRUCTION

    examples = _stage_dir(tmp_path, monkeypatch, tiny_examples, "oracle")  # no retrieval file: none is read
    report = _annotate_through_explaining_server()
    held_out = examples[8:]
    # Only the evaluation questions are asked, each with its own gold fact as the one fact shown.
    assert len(_ExplainingServer.systems) == 4 and all(EVIDENCE_INSTRUCTION in s for s in _ExplainingServer.systems)
    assert [f"fact number {8 + i}" in q for i, q in enumerate(_ExplainingServer.questions)] == [True] * 4
    assert not any("fact number 0" in q for q in _ExplainingServer.questions)
    rows = read_jsonl(paths.annotations("openbookqa", "oracle"))
    assert [r["split"] for r in rows] == ["eval"] * 4 and report["oracle"] == {"with_gold_fact": 4, "of": 4}
    assert report["eval"]["accuracy"] == sum(e.label == e.choices[0] for e in held_out) / len(held_out)
    with pytest.raises(DataError, match="teacher 'oracle' answers the evaluation questions only"):
        split(load_params(), "openbookqa")


def test_the_teacher_answers_the_evaluation_questions_first_and_not_the_validation_ones(
        tmp_path, monkeypatch, tiny_examples):

    from ragdistill import paths
    from ragdistill.io import read_jsonl

    examples = _stage_dir(tmp_path, monkeypatch, tiny_examples, "plain", valid_size=0.25)
    report = _annotate_through_explaining_server()
    chosen, valid = choose_training(examples[:8], 1.0, 0.25, seed=0)
    rows = read_jsonl(paths.annotations("openbookqa", "plain"))
    # Evaluation first, so a part-way annotation already scores the teacher; validation is scored on gold
    # labels, so the teacher is not asked about it.
    assert [r["split"] for r in rows] == ["eval"] * 4 + ["train"] * 6
    assert [r["id"] for r in rows] == [e.id for e in examples[8:] + chosen] and not {e.id for e in valid} & {
        r["id"] for r in rows}
    assert report["eval"]["n"] == 4 and report["unparsed"] == {"train": 0, "eval": 0}


def test_teacher_quality_counts_gold_labels_words_and_gold_fact_overlap(tmp_path, monkeypatch, tiny_examples):
    from ragdistill import paths
    from ragdistill.io import read_json, write_jsonl
    from ragdistill.teachers.quality import fact_overlap, write_summary

    # "sun" is too short to count: of "source" and "energy", one is in the rationale.
    assert fact_overlap("The sun gives plants energy.", ["the sun is the source of energy"]) == 0.5
    assert fact_overlap("anything", []) is None
    examples = _stage_dir(tmp_path, monkeypatch, tiny_examples, "plain")
    train, held_out = examples[:8], examples[8:]

    def records(right_train: int, right_eval: list[bool], rationale: str) -> list[dict]:
        out = []
        for i, e in enumerate(train + held_out):
            right = i < right_train if i < 8 else right_eval[i - 8]
            label = e.label if right else next(c for c in e.choices if c != e.label)
            out.append({"id": e.id, "split": "train" if i < 8 else "eval", "rationale": rationale.format(i=i),
                        "teacher_label": label, "meta": {}})
        return out

    write_jsonl(paths.annotations("openbookqa", "plain"), records(4, [True, False, False, True], "one two"))
    write_jsonl(paths.annotations("openbookqa", "rag"), records(6, [True, True, True, True], "about fact number {i}"))
    summary = write_summary(["openbookqa"])["openbookqa"]
    plain, rag = summary["teachers"]["plain"], summary["teachers"]["rag"]
    assert (plain["dev"]["accuracy"], rag["dev"]["accuracy"]) == (0.5, 1.0)
    assert plain["rationales"]["gold_label_share"] == 50.0 and rag["rationales"]["gold_label_share"] == 75.0
    assert (plain["rationales"]["median_words"], rag["rationales"]["median_words"]) == (2, 4)
    # The tiny facts are "fact number <i>" (question 3 has none): the RAG rationales carry all their words.
    assert plain["rationales"]["gold_fact_overlap"] == 0.0 and rag["rationales"]["gold_fact_overlap"] == 1.0
    assert rag["rationales"]["with_gold_fact"] == 7
    assert summary["paired"][0] == {**summary["paired"][0], "a": "rag", "b": "plain", "questions": 4, "diff": 50.0}
    assert read_json(paths.REPORTS / "teacher" / "summary.json")["openbookqa"]["teachers"].keys() == {"plain", "rag"}
    assert "| rag | 100.0" in (paths.REPORTS / "teacher" / "summary.md").read_text()
    # The oracle answers dev only; it is paired against plain on the dev questions both answered.
    write_jsonl(paths.annotations("openbookqa", "oracle"),
                [r for r in records(0, [True, True, False, True], "x") if r["split"] == "eval"][1:])
    summary = write_summary(["openbookqa"])["openbookqa"]
    assert summary["teachers"]["oracle"]["rationales"] == {"n": 0} and summary["teachers"]["oracle"]["dev"]["n"] == 3
    oracle = next(p for p in summary["paired"] if p["a"] == "oracle")
    assert (oracle["b"], oracle["questions"], round(oracle["diff"], 2)) == ("plain", 3, 33.33)
    markdown = (paths.REPORTS / "teacher" / "summary.md").read_text()
    assert "| oracle (reads the gold fact: not deployable) | 66.7" in markdown
