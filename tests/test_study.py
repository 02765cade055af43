"""The study grid (cells, snapshots, the report), students that read evidence, and reuse of published
teacher annotations without loading the teacher."""

from __future__ import annotations

import json
import re

import pytest

from ragdistill.config import ConfigError, validate
from ragdistill.data.example import Example
from ragdistill.data.split import with_evidence
from ragdistill.io import DataError, read_jsonl, write_jsonl
from ragdistill.pipeline.annotate_teacher import annotation_record
from ragdistill.study import (
    VARIANTS,
    Cell,
    build_report,
    compare_lines,
    grid,
    machine_note,
    main,
    paired,
    parse_cell,
    row_cost,
    table_rows,
    verdict,
)
from ragdistill.study.snapshots import _params_snapshot
from ragdistill.teachers.annotate import annotate
from ragdistill.teachers.base import DecodingSettings, LazyTeacher, TeacherError, teacher_model_id
from ragdistill.teachers.cache import AnnotationCache, seed_from_annotations
from ragdistill.teachers.prompts import build_prompt, prompt_hash

# A machine a run did not record, as its snapshot holds it: what the report stated of such runs.
UNRECORDED_MACHINE = {"cpu": "AMD EPYC (AVX2)", "cores": 2, "gpu": None, "recorded": False}
# A port nothing listens on: a teacher that is actually asked fails at once.
UNREACHABLE = {"model": "m", "base_url": "http://127.0.0.1:9/v1", "api_key_env": "RAGDISTILL_TEST_KEY",
               "concurrency": 1, "max_retries": 0, "timeout": 2.0}


def test_cell_names_round_trip_and_commands_set_every_grid_key():
    cells = grid("openbookqa", [0.1, 0.2], [0, 1], list(VARIANTS))
    assert len(cells) == 2 * 2 * len(VARIANTS) and len({c.name for c in cells}) == len(cells)
    for cell in cells:
        assert parse_cell(cell.name) == cell
    command = Cell("openbookqa", "rag-student-evidence", 0.1, 2).command()
    assert command[:5] == ["dvc", "exp", "run", "-n", "openbookqa-rag-student-evidence-f0.1-s2"]
    sets = [command[i + 1] for i, arg in enumerate(command) if arg == "-S"]
    assert sets == ["datasets=[openbookqa]", "teacher=rag", "split.fraction.openbookqa=0.1", "train.seed=2",
                    "split.student_evidence=true"]
    assert Cell("strategyqa", "plain", 0.5, 0).command(queue=True)[-1] == "--queue"
    with_settings = Cell("openbookqa", "plain", 0.1, 0).command(settings=("train.precision=bf16",))
    assert with_settings[with_settings.index("train.precision=bf16") - 1] == "-S"


def test_study_run_settings_must_be_key_value():
    from ragdistill.study.cli import _parser
    args = _parser().parse_args(["run", "--dataset", "openbookqa", "--fractions", "1", "--set", "train.precision=bf16"])
    assert args.settings == ["train.precision=bf16"]
    with pytest.raises(SystemExit):
        _parser().parse_args(["run", "--dataset", "openbookqa", "--fractions", "1", "--set", "bf16"])
    assert Cell("strategyqa", "plain", 0.5, 0).targets() == []  # the whole pipeline


def test_a_gold_fact_cell_does_not_train_distill_again_as_a_copy_of_finetune():
    cell = Cell("openbookqa", "gold-fact", 0.25, 0)
    assert cell.methods == ("finetune", "sbs")
    command = cell.command()
    assert command[-5:] == ["evaluate-untrained@openbookqa", "evaluate@openbookqa-finetune",
                            "cost@openbookqa-finetune", "evaluate@openbookqa-sbs", "cost@openbookqa-sbs"]
    assert not any("distill" in arg for arg in command)
    # A distill evaluation an earlier cell left in the workspace is not this cell's row.
    assert cell.rows(["teacher-gold_fact", "untrained", "finetune", "distill", "sbs"]) == [
        "teacher-gold_fact", "untrained", "finetune", "sbs"]
    assert "distill" in Cell("openbookqa", "rag", 0.25, 0).rows(["distill"])


def test_a_cell_can_train_only_some_students_under_its_own_name():
    from ragdistill.study.cli import _parser

    args = _parser().parse_args(["run", "--dataset", "openbookqa", "--fractions", "1", "--variants", "rag",
                                 "--seeds", "0", "1", "--students", "sbs"])
    cells = grid(args.dataset, args.fractions, args.seeds, args.variants, args.students)
    assert [c.name for c in cells] == ["openbookqa-rag-f1-s0", "openbookqa-rag-f1-s1"]
    assert cells[0].methods == ("sbs",) and cells[0].command()[-3:] == [
        "evaluate-untrained@openbookqa", "evaluate@openbookqa-sbs", "cost@openbookqa-sbs"]
    assert cells[0].rows(["teacher-rag", "untrained", "finetune", "sbs"]) == ["teacher-rag", "untrained", "sbs"]
    # gold-fact never trains distill, whatever is asked for; no choice is the whole pipeline.
    assert Cell("openbookqa", "gold-fact", 1.0, 0, ("distill", "sbs")).methods == ("sbs",)
    assert grid("openbookqa", [1.0], [0], ["rag"])[0].targets() == []
    with pytest.raises(SystemExit):
        _parser().parse_args(["run", "--dataset", "openbookqa", "--fractions", "1", "--students", "teacher"])
    with pytest.raises(SystemExit, match="not a cell name"):
        parse_cell("openbookqa-best-f0.1-s0")


def test_params_accept_student_evidence_and_cost_and_name_bad_values():
    params = validate({"split": {"student_evidence": True}, "cost": {"examples": 8}})
    assert params.split.student_evidence is True and params.cost.examples == 8
    assert validate({}).split.student_evidence is False
    with pytest.raises(ConfigError, match="split.student_evidence"):
        validate({"split": {"student_evidence": "yes"}})
    with pytest.raises(ConfigError, match="cost.examples"):
        validate({"cost": {"examples": 0}})


def test_students_that_read_evidence_get_it_first_in_their_input(tiny_examples):
    examples = tiny_examples(3)
    retrieved = {e.id: [{"id": f"fact-{i}", "text": f"fact number {i}", "score": 1.0} for i in range(2)]
                 for e in examples}
    question = examples[0].input
    out = with_evidence(examples, retrieved, "data/retrieved/x.jsonl")
    assert out[0].input == "Evidence:\n- fact number 0\n- fact number 1\n" + question
    assert out[0].meta["student_evidence_ids"] == ["fact-0", "fact-1"]
    with pytest.raises(DataError, match=r"data/retrieved/x.jsonl: no retrieved passages for example 'tiny-0'"):
        with_evidence(tiny_examples(1), {}, "data/retrieved/x.jsonl")


def test_teacher_model_id_is_known_without_loading():
    assert teacher_model_id("llama_cpp", "qwen2.5-coder-1.5b-instruct-q4_k_m") == "qwen2.5-coder-1.5b-instruct-q4_k_m"
    assert teacher_model_id("llama_cpp", "/models/teacher-q4.gguf") == "teacher-q4.gguf"
    assert teacher_model_id("openai", "gpt-4o-mini") == "gpt-4o-mini"
    assert LazyTeacher("openai", **UNREACHABLE).model_id == "m"


def _cached_replies(examples, cache: AnnotationCache, settings: DecodingSettings) -> None:
    for example in examples:
        key = prompt_hash(build_prompt(example, [], None), "m", settings)
        cache.put(key, {"model": "m", "text": f"Because it is so. So the answer is {example.label}.",
                        "prompt_tokens": 50, "completion_tokens": 9, "seconds": 1.5})


def test_published_annotations_reproduce_without_loading_the_teacher(tiny_examples, tmp_path):
    settings = DecodingSettings(max_new_tokens=32)
    examples = tiny_examples(4)
    first = AnnotationCache(tmp_path / "first.jsonl")
    _cached_replies(examples, first, settings)
    teacher = LazyTeacher("openai", **UNREACHABLE)
    annotated, stats = annotate(examples, teacher, settings, [], None, first, progress=False)
    assert stats.queried == 0 and not teacher.loaded
    published = tmp_path / "openbookqa-plain.jsonl"
    write_jsonl(published, [annotation_record(e, "train") for e in annotated])
    assert all(row["meta"]["reply"].startswith("Because") for row in read_jsonl(published))

    # A fresh clone: no reply cache, only the committed annotation file.
    fresh = AnnotationCache(tmp_path / "fresh.jsonl")
    assert seed_from_annotations(fresh, read_jsonl(published)) == 4
    assert seed_from_annotations(fresh, read_jsonl(published)) == 0  # nothing twice
    again, stats = annotate(examples, LazyTeacher("openai", **UNREACHABLE), settings, [], None, fresh, progress=False)
    assert stats.queried == 0 and stats.from_cache == 4
    assert [(e.rationale, e.teacher_label) for e in again] == [(e.rationale, e.teacher_label) for e in annotated]

    # One reply missing: the teacher is loaded and really asked (and here it is unreachable).
    partial = AnnotationCache(tmp_path / "partial.jsonl")
    seed_from_annotations(partial, read_jsonl(published)[1:])
    lazy = LazyTeacher("openai", **UNREACHABLE)
    with pytest.raises(TeacherError):
        annotate(examples, lazy, settings, [], None, partial, progress=False)
    assert lazy.loaded


def _snapshot(variant: str, seed: int, accuracies: dict[str, list[int]], latency: float = 0.01) -> dict:
    teacher, evidence = VARIANTS[variant]
    rows = {}
    for name, correct in accuracies.items():
        rows[name] = {"accuracy": sum(correct) / len(correct), "ci_low": 0.0, "ci_high": 1.0, "n": len(correct),
                      "cost": {"latency_s": 2.0 if name.startswith("teacher") else latency, "params": 135e6,
                               "peak_rss_mb": 900.0},
                      "device": None if name.startswith("teacher") else "cpu",
                      "correct": {f"q{i:03d}": c for i, c in enumerate(correct)}}
    return {"cell": Cell("openbookqa", variant, 0.1, seed).name, "dataset": "openbookqa", "variant": variant,
            "teacher": teacher, "student_evidence": evidence, "fraction": 0.1, "seed": seed, "train_examples": 50,
            "eval_examples": 40, "commit": "abc123def4567890", "overrides": [], "rows": rows,
            "params": json.loads(json.dumps(_params_snapshot(validate(
                {"train": {"seed": seed}, "split": {"teacher_selection": 10}})))),
            "machine": dict(UNRECORDED_MACHINE)}


def test_report_tables_pair_the_same_questions_and_say_when_nothing_is_decided(tmp_path):
    right, wrong = [1] * 40, [0] * 40
    half = [1, 0] * 20
    snapshots = [
        _snapshot("plain", 0, {"teacher-plain": half, "finetune": half, "distill": half, "sbs": wrong}),
        _snapshot("plain", 1, {"teacher-plain": half, "finetune": half, "distill": half, "sbs": wrong}),
        _snapshot("rag", 0, {"teacher-rag": right, "finetune": half, "distill": half, "sbs": right}),
        _snapshot("rag", 1, {"teacher-rag": right, "finetune": half, "distill": half, "sbs": right}),
        _snapshot("rag-student-evidence", 0, {"teacher-rag": right, "finetune": half, "distill": half, "sbs": half}),
    ]
    rows = table_rows(snapshots, "openbookqa", 0.1)
    assert set(rows) == {"teacher: plain (few-shot)", "teacher: rag (few-shot, retrieval)", "finetune",
                         "distill (plain teacher)", "distill (rag teacher)", "sbs (plain teacher)",
                         "sbs (rag teacher)", "finetune + student reads evidence",
                         "distill (rag teacher) + student reads evidence",
                         "sbs (rag teacher) + student reads evidence"}
    assert len(rows["finetune"]["runs"]) == 2  # the two teachers' finetune runs of one seed are one row
    text = build_report(snapshots, figures=tmp_path)
    assert "| sbs (rag teacher) | 100.0 |" in text and "| sbs (plain teacher) | 0.0 |" in text
    assert "sbs (rag teacher) − sbs (plain teacher) | +100.0 points [+100.0, +100.0]: better" in text
    assert "sbs (plain teacher) − finetune | -50.0 points" in text and "worse" in text
    assert "distill (rag teacher) − distill (plain teacher) | +0.0 points [+0.0, +0.0]: the same" in text
    assert "abc123def456" in text
    for name in ("study-openbookqa-fraction.png", "study-openbookqa-latency.png"):
        assert (tmp_path / name).stat().st_size > 1000


def test_report_marks_students_that_do_not_beat_the_untrained_student(tmp_path):
    untrained = [1] * 10 + [0] * 30  # 25%
    better = [1] * 30 + [0] * 10  # 75%: learned
    same = [0] * 10 + [1] * 10 + [0] * 20  # 25% on other questions: not above the control
    snapshots = [_snapshot("plain", 0, {"untrained": untrained, "finetune": better, "distill": same, "sbs": better}),
                 _snapshot("rag", 0, {"untrained": untrained, "finetune": better, "distill": same, "sbs": better})]
    rows = table_rows(snapshots, "openbookqa", 0.1)
    assert len(rows["untrained student"]["runs"]) == 1  # one model, whatever the cell
    text = build_report(snapshots, figures=tmp_path)
    assert "| untrained student | 25.0 |" in text
    assert "| distill (plain teacher) (did not learn) | 25.0 |" in text and "| finetune | 75.0 |" in text
    assert "**did not learn: distill (plain teacher), distill (rag teacher)**" in text
    assert "distill (rag teacher) − distill (plain teacher)" in text
    assert "(rests on distill (rag teacher) and distill (plain teacher), which did not learn)" in text
    without = build_report([_snapshot("plain", 0, {"finetune": better})], figures=tmp_path)
    assert "No untrained-student row in these runs" in without


def test_the_setup_warns_only_when_runs_differ_beyond_the_grid(tmp_path):
    from dataclasses import asdict

    def with_params(seed: int, **changes) -> dict:
        recorded = json.loads(json.dumps(_params_snapshot(validate({"train": {"seed": seed}}))))
        for key, value in changes.items():
            section, name = key.split("__")
            recorded[section][name] = value
        return {**_snapshot("plain", seed, {"teacher-plain": [1, 0], "finetune": [1, 0], "distill": [1, 0],
                                            "sbs": [1, 0]}), "params": recorded}

    older = with_params(0)
    warning = "differ in parameters beyond the grid"
    assert asdict(validate({}).eval)["device"] == "auto"
    assert warning not in build_report([older, with_params(1)], figures=tmp_path)
    assert warning in build_report([older, with_params(1, eval__device="cuda")], figures=tmp_path)
    text = build_report([older, with_params(1, train__lr=3e-4)], figures=tmp_path)
    assert warning in text and f"`train.lr`: 5e-05 ({older['cell']}); 0.0003 (" in text  # the key and its values
    assert "`train.epochs`" not in text
    assert "evaluated on cpu." in build_report([older, with_params(1)], figures=tmp_path)
    on_gpu = with_params(1)
    on_gpu["rows"]["sbs"]["device"] = "cuda"
    assert "evaluated on cpu and cuda." in build_report([older, on_gpu], figures=tmp_path)
    on_gpu["machine"] = {"cpu": "Intel(R) Xeon(R) Processor", "cores": 16, "gpu": "NVIDIA H200", "recorded": True}
    text = build_report([older, with_params(2), on_gpu], figures=tmp_path)
    assert ("- Compute: 2 cores of an AMD EPYC (AVX2), no GPU (not recorded by the run itself): "
            "2 runs; 16 cores of an Intel(R) Xeon(R) Processor, GPU NVIDIA H200: 1 run.") in text


def test_a_table_whose_runs_span_machines_says_which_machine_ran_what(tmp_path):
    half = [1, 0] * 20
    cells = [_snapshot(variant, seed, {f"teacher-{VARIANTS[variant][0]}": half, "finetune": half, "sbs": half})
             for variant in ("plain", "rag-student-evidence") for seed in (0, 1)]
    assert machine_note(table_rows(cells, "openbookqa", 0.1)) is None  # one machine (unrecorded): no note
    assert "more than one machine" not in build_report(cells, figures=tmp_path)
    for cell in cells[2:]:  # the evidence cells ran elsewhere
        cell["machine"] = {"cpu": "Intel(R) Xeon(R) Processor", "cores": 2, "gpu": None, "recorded": True}
    note = machine_note(table_rows(cells, "openbookqa", 0.1))
    assert note == ("Student runs of this table come from more than one machine, so compare their latencies only "
                    "within one machine: on 2 cores of an AMD EPYC (AVX2), no GPU: seeds 0, 1 of finetune, "
                    "sbs (plain teacher); and on 2 cores of an Intel(R) Xeon(R) Processor, no GPU: seeds 0, 1 of "
                    "finetune + student reads evidence, sbs (rag teacher) + student reads evidence.")
    assert note in build_report(cells, figures=tmp_path)


def test_equal_accuracy_from_different_answers_is_undecided_not_the_same():
    def entry(correct: list[int]) -> dict:
        return {"runs": {0: {"correct": {f"q{i:03d}": c for i, c in enumerate(correct)}}}}

    alike, flipped = entry([1, 0] * 20), entry([0, 1] * 20)
    assert verdict(paired(alike, alike)).endswith("the same, right and wrong on the same questions")
    assert verdict(paired(alike, flipped)).endswith("not decided, the interval includes zero")


def test_rows_run_at_different_seeds_are_compared_on_the_seeds_both_ran():
    def runs(**by_seed: list[int]) -> dict:
        return {"runs": {int(k[1:]): {"correct": {f"q{i:03d}": c for i, c in enumerate(v)}}
                         for k, v in by_seed.items()}}

    half, right = [1, 0] * 20, [1] * 40
    three_seeds = runs(s0=half, s1=right, s2=right)
    result = paired(runs(s0=half), three_seeds)  # a variant run at seed 0 only, against its three-seed base
    assert result["seeds"] == [0] and result["identical"]
    result = paired(runs(s0=half, s1=right, s2=right), three_seeds)
    assert result["seeds"] is None and result["identical"]
    teacher = {"runs": {None: {"correct": {f"q{i:03d}": 1 for i in range(40)}}}}
    result = paired(teacher, three_seeds)  # a teacher row has no seeds: every student run counts
    assert result["seeds"] is None and abs(result["difference"] - 0.5 / 3) < 1e-3


def test_report_refuses_rows_scored_on_different_questions(tmp_path):
    a = _snapshot("plain", 0, {"teacher-plain": [1, 0], "finetune": [1, 0], "distill": [1, 0], "sbs": [1, 0]})
    b = _snapshot("rag", 0, {"teacher-rag": [1, 0, 1], "finetune": [1, 0], "distill": [1, 0], "sbs": [1, 0, 1]})
    with pytest.raises(DataError, match="different questions"):
        build_report([a, b], figures=tmp_path)
    with pytest.raises(DataError, match="no collected runs"):
        build_report([], figures=tmp_path)
    json.dumps(a)  # snapshots are plain JSON


def _yes_no(ids: list[str], labels: list[str]) -> list[Example]:
    return [Example(id=i, input=f"question {i}?", label=label, source="strategyqa", choices=["yes", "no"])
            for i, label in zip(ids, labels)]


def test_majority_answer_row_comes_from_training_labels_and_shows_each_students_answers(tmp_path):
    train = _yes_no([f"t{i:03d}" for i in range(100)], ["no"] * 70 + ["yes"] * 30)
    # The evaluation questions lean the other way: the prior is taken from training labels, not from these.
    evaluation = _yes_no([f"q{i:03d}" for i in range(40)], ["yes"] * 30 + ["no"] * 10)
    right, wrong = [1] * 40, [0] * 40
    snapshots = [_snapshot("plain", 0, {"teacher-plain": right, "finetune": right, "distill": wrong, "sbs": right}),
                 _snapshot("rag", 0, {"teacher-rag": right, "finetune": right, "distill": wrong, "sbs": right})]
    text = build_report(snapshots, figures=tmp_path, answer_keys={"openbookqa": (train, evaluation)})
    assert "| majority answer | 25.0 |" in text
    assert 'every question answered (b) "no", the most common gold answer among the 10 training questions (70%' in text
    # Right on every question means answering "no" on the 10 "no" questions; always wrong means the other 30.
    assert 'answered "no" (%, per seed): finetune 25; distill (plain teacher) 75; sbs (plain teacher) 25;' in text
    assert "sbs (rag teacher) − majority answer | +75.0 points [" in text and "]: better, the interval" in text
    # Without an untrained row the majority answer is the gate, and a row below it is marked, with what rests on it.
    assert "| distill (plain teacher) (not above the majority answer) | 0.0 |" in text
    assert "| finetune | 100.0 |" in text
    assert "No untrained-student row in these runs**, so no student here is shown to have learned. Learning gate " \
           "(paired against the majority answer, 95%): **not above the majority answer: distill (plain teacher), " \
           "distill (rag teacher)**" in text
    assert "(rests on distill (rag teacher) and distill (plain teacher), which are not above the majority answer)" \
        in text
    # Runs scored on other questions than the data directory holds: the row is left out, not mispaired.
    text = build_report(snapshots, figures=tmp_path, answer_keys={"openbookqa": (train, evaluation[:39])})
    assert "majority answer" not in text
    assert "majority answer" not in build_report(snapshots, figures=tmp_path)


def test_a_rows_cost_is_the_median_over_its_seeds_not_the_first_run(tmp_path):
    half = [1, 0] * 20
    snapshots = [_snapshot("plain", seed, {"teacher-plain": half, "finetune": half, "distill": half, "sbs": half},
                           latency=latency) for seed, latency in ((0, 0.09), (1, 0.02), (2, 0.03))]
    snapshots[2]["rows"]["sbs"]["cost"]["peak_rss_mb"] = None  # a run that did not record its memory
    rows = table_rows(snapshots, "openbookqa", 0.1)
    cost = row_cost(rows["sbs (plain teacher)"])
    assert cost["latency_s"] == 0.03 and cost["peak_rss_mb"] == 900.0 and cost["weights_bytes"] is None
    assert row_cost(rows["teacher: plain (few-shot)"])["latency_s"] == 2.0
    text = build_report(snapshots, figures=tmp_path)
    assert re.search(r"\| sbs \(plain teacher\) \| 50.0 \| .* \| 3 \| 50.0, 50.0, 50.0 \| 30 \| 135M \| 900 \|", text)


def test_compare_says_whether_a_rerun_scored_every_question_as_committed(tmp_path, capsys):
    answers = {"teacher-plain": [1, 0] * 20, "finetune": [1, 1, 0, 0] * 10, "sbs": [0, 1] * 20}
    committed = _snapshot("plain", 0, answers)
    same, same_reproduced = compare_lines(committed, _snapshot("plain", 0, answers))
    assert same_reproduced and same[-1].startswith("reproduced")
    assert "  sbs: 50.0% committed, 50.0% rerun; 0 of 40 questions scored differently" in same
    # Two questions swapped: the same accuracy, yet not the same run.
    moved = dict(answers, sbs=[1, 0] + [0, 1] * 19)
    lines, reproduced = compare_lines(committed, _snapshot("plain", 0, moved))
    assert not reproduced and "  sbs: 50.0% committed, 50.0% rerun; 2 of 40 questions scored differently" in lines
    (tmp_path / "a.json").write_text(json.dumps(committed))
    (tmp_path / "b.json").write_text(json.dumps(_snapshot("plain", 0, moved)))
    assert main(["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 1
    assert "NOT reproduced" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="missing.json"):
        main(["compare", str(tmp_path / "missing.json"), str(tmp_path / "b.json")])
    other = _snapshot("plain", 1, answers)
    other["overrides"] = ["train.seed=1"]
    with pytest.raises(DataError, match="not the same cell"):
        compare_lines(committed, other)


def test_rerun_refuses_a_cell_with_no_committed_snapshot_before_running_anything(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no reports/study here: nothing to compare a rerun against
    with pytest.raises(SystemExit, match=r"reports/study/openbookqa-plain-f0.3-s0.json does not exist"):
        main(["rerun", "openbookqa-plain-f0.3-s0"])
    with pytest.raises(SystemExit, match="not a cell name"):
        main(["rerun", "openbookqa-f0.3"])
    # A bad name anywhere in the list stops the rerun before the first cell trains (no dvc runs here).
    (tmp_path / "reports/study").mkdir(parents=True)
    (tmp_path / "reports/study/openbookqa-plain-f0.1-s0.json").write_text("{}")
    with pytest.raises(SystemExit, match=r"openbookqa-plain-f0.3-s0.json does not exist"):
        main(["rerun", "openbookqa-plain-f0.1-s0", "openbookqa-plain-f0.3-s0"])
    assert not (tmp_path / ".cache").exists()


def test_adopt_makes_a_differing_rerun_the_cells_run_and_the_report_says_what_it_replaced(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    answers = {"teacher-plain": [1, 0] * 20, "finetune": [1, 1, 0, 0] * 10, "sbs": [0, 1] * 20}
    committed = dict(_snapshot("plain", 0, answers), commit="1111111111111111")
    rerun = dict(_snapshot("plain", 0, dict(answers, sbs=[1, 1] + [0, 1] * 19)), commit="2222222222222222")
    study = tmp_path / "reports/study"
    study.mkdir(parents=True)
    (study / f"{committed['cell']}.json").write_text(json.dumps(committed))
    (tmp_path / "rerun.json").write_text(json.dumps(rerun))
    assert main(["adopt", "rerun.json"]) == 0
    adopted = json.loads((study / f"{committed['cell']}.json").read_text())
    assert adopted["commit"] == "2222222222222222" and adopted["rows"]["sbs"]["accuracy"] == 21 / 40
    assert adopted["replaces"] == [{"commit": "1111111111111111", "machine": UNRECORDED_MACHINE, "rows": {
        "finetune": {"accuracy": 0.5, "differ": 0, "n": 40}, "sbs": {"accuracy": 0.5, "differ": 1, "n": 40},
        "teacher-plain": {"accuracy": 0.5, "differ": 0, "n": 40}}}]
    text = build_report([adopted], figures=tmp_path / "figures", report_dir=tmp_path)
    assert "- Retrained cells (1): a rerun replaced an earlier run of the cell whose checkpoints were lost" in text
    assert "`openbookqa-plain-f0.1-s0` (earlier run on 2 cores of an AMD EPYC (AVX2), no GPU, commit 111111111111; " \
           "questions scored differently: sbs 1 of 40 (50.0 → 52.5%))" in text
    # A rerun that lacks a row, or a cell with nothing committed, is refused and nothing is written.
    (tmp_path / "partial.json").write_text(json.dumps(dict(rerun, rows={"sbs": rerun["rows"]["sbs"]})))
    with pytest.raises(SystemExit, match=r"partial.json and reports/study/openbookqa-plain-f0.1-s0.json do not "
                                         r"hold the same rows \(finetune, teacher-plain\)"):
        main(["adopt", "partial.json"])
    (tmp_path / "other.json").write_text(json.dumps(dict(rerun, cell="openbookqa-plain-f0.3-s0")))
    with pytest.raises(SystemExit, match=r"openbookqa-plain-f0.3-s0.json does not exist"):
        main(["adopt", "other.json"])
    assert json.loads((study / f"{committed['cell']}.json").read_text()) == adopted


def test_one_deployment_run_gives_every_row_its_cost_and_the_report_says_so(tmp_path):
    from ragdistill.study.deployment import shape_of

    half = [1, 0] * 20
    snapshots = [_snapshot("plain", 0, {"teacher-plain": half, "untrained": half, "sbs": half}, latency=0.09),
                 _snapshot("rag", 0, {"teacher-rag": [1] * 40, "sbs": half}, latency=0.02),
                 _snapshot("rag-student-evidence", 0, {"sbs": half})]
    assert [shape_of(label) for label in ("untrained student", "sbs (rag teacher)", "teacher: rag (few-shot, "
            "retrieval)", "teacher: plain (few-shot)", "sbs (rag teacher) + student reads evidence")] == [
        "student", "student", "teacher: rag", "teacher: plain", "student reading evidence"]
    measured = {"student": 0.05, "student reading evidence": 0.08, "teacher: plain": 1.5, "teacher: rag": 2.5}
    deployment = {"questions": 32, "measured": "2026-12-04", "machine": dict(UNRECORDED_MACHINE),
                  "shapes": {shape: {"latency_s": s, "params": 1e9 if shape.startswith("teacher") else 135e6,
                                     "peak_rss_mb": 2000.0 if shape.startswith("teacher") else 700.0}
                             for shape, s in measured.items()}}
    before = build_report(snapshots, figures=tmp_path)
    assert "no `python -m ragdistill.study deploy --dataset openbookqa` yet" in before
    assert re.search(r"\| sbs \(plain teacher\) \(did not learn\) \| 50.0 \| .* \| 90 \| 135M \| 900 \|", before)
    assert "accuracy % per second" not in before  # runs measured apart are not compared for cost
    text = build_report(snapshots, figures=tmp_path, deployments={"openbookqa": deployment})
    assert "measured together by `python -m ragdistill.study deploy` on 2026-12-04" in text
    # The two sbs students ran at 90 and 20 ms in their own runs; here both have the one measurement.
    for row, ms in (("sbs (plain teacher)", 50), ("sbs (rag teacher)", 50), ("sbs (rag teacher) + student reads "
                                                                             "evidence", 80)):
        assert re.search(re.escape(f"| {row} (did not learn) | 50.0 |") + rf".* \| {ms} \| 135M \| 700 \|", text)
    assert re.search(r"\| teacher: rag \(few-shot, retrieval\) \| 100.0 \| .* \| 2,500 \| 1,000M \| 2,000 \|", text)
    # Accuracy per second and per GB: the RAG teacher 100% / 2.5 s = 40; sbs 50% / 0.05 s = 1,000.
    assert "| teacher: rag (few-shot, retrieval) | 100.0 | 2,500 | 2,000 | 40 | 51.2 |" in text
    assert "| sbs (rag teacher) (did not learn) | 50.0 | 50 | 700 | 1,000 | 73.1 |" in text


def test_deploy_times_each_model_in_its_own_process_with_the_pipelines_prompts_and_retrieval(
        tmp_path, monkeypatch, tiny_examples, data_root):
    import http.server
    import threading
    from pathlib import Path

    import yaml
    from test_teacher_stage import _ExplainingServer, _stage_dir

    from ragdistill.io import read_json
    from ragdistill.study.deployment import SHAPES, deploy
    from ragdistill.teachers.prompts import EVIDENCE_HEADER, EVIDENCE_INSTRUCTION

    _stage_dir(tmp_path, monkeypatch, tiny_examples, "rag")
    monkeypatch.setenv("RAGDISTILL_DATA", str(data_root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ExplainingServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _ExplainingServer.systems, _ExplainingServer.questions = [], []
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["teacher_model"].update(backend="openai", model="m", demonstrations=0, concurrency=1,
                                   base_url=f"http://127.0.0.1:{server.server_address[1]}/v1")
    params["retrieval"].update(method="bm25", k=2)
    params["student"]["model"] = "tiny-llama"
    Path("params.yaml").write_text(yaml.safe_dump(params))
    try:
        out = deploy("openbookqa", n=3)
    finally:
        server.shutdown()
    result = read_json(out)
    assert out.resolve() == tmp_path / "reports" / "study" / "deployment" / "openbookqa.json"
    assert list(result["shapes"]) == list(SHAPES) and result["questions"] == 3
    sides = result["shapes"]
    assert all(side["questions"] == 3 and side["latency_s"] > 0 and side["peak_rss_mb"] > 0 for side in sides.values())
    # Retrieval is timed where it runs, and only there.
    assert sides["teacher: rag"]["retrieval_s"] > 0 and sides["student reading evidence"]["retrieval_s"] > 0
    assert sides["teacher: plain"]["retrieval_s"] is None and sides["student"]["retrieval_s"] is None
    assert sides["student"]["params"] == sides["student reading evidence"]["params"] > 0
    assert "server" in sides["teacher: rag"]["note"]
    # Each teacher answered the warm-up and the 3 timed questions; only the RAG one read facts.
    assert len(_ExplainingServer.systems) == 8
    assert [EVIDENCE_INSTRUCTION in s for s in _ExplainingServer.systems] == [False] * 4 + [True] * 4
    assert all(q.startswith(EVIDENCE_HEADER + "\n- ") for q in _ExplainingServer.questions[4:])
    assert not any(EVIDENCE_HEADER in q for q in _ExplainingServer.questions[:4])
