"""What each row of the study costs to deploy, measured together: one process per model, batch 1, the same
evaluation questions, on one machine, in one run. A RAG teacher's time includes its retrieval, and so does a
student's that reads the evidence.

    python -m ragdistill.study deploy --dataset openbookqa [--questions 32] [--student models/openbookqa/sbs]

Every student of the study is the same network (SmolLM2-135M by default) scoring the same label prompt, so
its cost does not depend on what it learned: the student rows share one measurement, and the student that
reads evidence has its own (a longer input, plus the search). The teachers run with the pipeline's own
prompts, demonstrations and retrieval (``params.yaml``) and its teacher backend; with the default in-process
llama.cpp backend the teacher's memory is in the measured process, with a server it is not (the file says
which). Writes ``reports/study/deployment/<dataset>.json``, which ``python -m ragdistill.study report`` reads
for the latency, memory and parameter columns and the accuracy-against-latency plot.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ragdistill import paths
from ragdistill.io import DataError, read_json, write_json
from ragdistill.log import log

# A row of the report -> the deployment it is measured as (see shape_of).
SHAPES = ("student", "student reading evidence", "teacher: plain", "teacher: rag")


def deployment_file(dataset: str, directory: Path | None = None) -> Path:
    """``reports/study/deployment/<dataset>.json`` (a folder of its own: every JSON beside it is a snapshot)."""
    return (directory or paths.REPORTS / "study" / "deployment") / f"{dataset}.json"


def shape_of(row: str) -> str:
    """The deployment a report row is measured as: its teacher, or the student with or without evidence."""
    if row.startswith("teacher: rag"):  # a rationalizing RAG teacher answers freely at test time, as rag does
        return "teacher: rag"
    if row.startswith("teacher:"):
        return "teacher: plain"
    return "student reading evidence" if row.endswith("+ student reads evidence") else "student"


def load_deployment(dataset: str, directory: Path | None = None) -> dict | None:
    path = deployment_file(dataset, directory)
    return read_json(path) if path.exists() else None


def _questions(dataset: str, n: int):
    """The prepared training and evaluation questions (the dataset's loader where it was not prepared)."""
    from ragdistill.config import load_params
    from ragdistill.data.example import load_examples
    from ragdistill.data.registry import load_dataset, resolve_data_root

    train_file, eval_file = paths.prepared(dataset, "train"), paths.prepared(dataset, "eval")
    if train_file.exists() and eval_file.exists():
        train, evaluation = load_examples(train_file), load_examples(eval_file)
    else:
        root = resolve_data_root(load_params().data.root)
        train, evaluation = load_dataset(dataset, root, "train"), load_dataset(dataset, root, "eval")
    if len(evaluation) < 2:
        raise DataError(f"{eval_file}: need at least 2 evaluation questions to time (one is the warm-up)")
    return train, evaluation[: n + 1]


def measure(shape: str, dataset: str, n: int, student_dir: str | None = None) -> dict:
    """Time one deployment on the first ``n`` evaluation questions, one at a time, after one untimed warm-up.
    Meant to run in a process of its own, so that the peak memory is this model's."""
    from ragdistill.config import load_params
    from ragdistill.memory import peak_rss_mb
    from ragdistill.pipeline.retrieve import LiveRetrieval

    params = load_params()
    train, questions = _questions(dataset, n)
    baseline = peak_rss_mb()
    retrieval = None
    if shape in ("student reading evidence", "teacher: rag"):
        retrieval = LiveRetrieval(params, dataset, train)
        searched = {"method": params.retrieval.method, "k": params.retrieval.k, "query": params.retrieval.query,
                    "corpus": params.corpus(dataset)}
    search_seconds: list[float] = []

    def evidence_of(question) -> list[dict]:
        tick = time.perf_counter()
        found = retrieval([question])[question.id]
        search_seconds.append(time.perf_counter() - tick)
        return found

    if shape.startswith("student"):
        from ragdistill.data.split import with_evidence
        from ragdistill.evaluation.scoring import answer_labels, scoring_mode
        from ragdistill.students.formatting import TaskFormatter
        from ragdistill.students.models import load_student

        source = student_dir or params.student.model
        student = load_student(source)
        formatter = TaskFormatter(student.tokenizer, student.is_encoder_decoder, params.student.max_input_tokens,
                                  params.student.max_target_tokens)
        scoring = scoring_mode(params.eval.scoring, dataset)

        def answer(question) -> None:
            if retrieval is not None:
                question = with_evidence([question], {question.id: evidence_of(question)}, "live retrieval")[0]
            with contextlib.redirect_stderr(io.StringIO()):  # no progress bar per single question
                answer_labels(student, [question], formatter, scoring, params.eval.max_new_tokens, batch_size=1)

        about = {"model": source, "params": sum(p.numel() for p in student.model.parameters()),
                 "backend": "transformers (in-process)"}
        close = None
    else:
        from ragdistill.pipeline.annotate_teacher import teacher_kwargs
        from ragdistill.teachers import DecodingSettings, build_prompt
        from ragdistill.teachers.base import LazyTeacher
        from ragdistill.teachers.demonstrations import pick_demonstrations

        count = params.teacher_model.demonstrations
        demo_evidence = None
        if retrieval is not None:  # each demonstration shows its own facts, as in the annotate stage
            demo_ids = {d.id for d in pick_demonstrations(dataset, train, count)}
            demo_evidence = retrieval([e for e in train if e.id in demo_ids])
        demonstrations = pick_demonstrations(dataset, train, count, demo_evidence)
        settings = DecodingSettings(max_new_tokens=params.teacher_model.max_new_tokens)
        teacher = LazyTeacher(params.teacher_model.backend, **teacher_kwargs(params))

        def answer(question) -> None:
            evidence = None if retrieval is None else [p["text"] for p in evidence_of(question)]
            teacher.complete([build_prompt(question, demonstrations, evidence)], settings)

        about = {"model": params.teacher_model.model, "backend": params.teacher_model.backend}
        close = teacher

    answer(questions[0])  # warm-up: first-call allocations and the prompt-prefix cache
    search_seconds.clear()
    latencies = []
    for question in questions[1:]:
        tick = time.perf_counter()
        answer(question)
        latencies.append(time.perf_counter() - tick)
    if close is not None:
        about["params"] = close.footprint().get("params")
        close.close()
    result = {"shape": shape, "questions": len(latencies), "latency_s": round(statistics.fmean(latencies), 4),
              "latency_p50_s": round(statistics.median(latencies), 4),
              "retrieval_s": round(statistics.fmean(search_seconds), 4) if search_seconds else None,
              "peak_rss_mb": round(peak_rss_mb(), 1), "python_baseline_rss_mb": round(baseline, 1), **about,
              **({"retrieval": searched} if retrieval is not None else {})}
    if params.teacher_model.backend != "llama_cpp" and shape.startswith("teacher"):
        result["note"] = "the teacher ran in a server: its memory is not in peak_rss_mb"
    return result


def deploy(dataset: str, n: int = 32, student_dir: str | None = None, directory: Path | None = None,
           shapes: tuple[str, ...] = SHAPES) -> Path:
    """Measure each shape, each in a fresh process, one after another, and write the deployment file."""
    from ragdistill.machine import describe

    _questions(dataset, n)  # a missing input fails here, before any model loads
    sides = {}
    for shape in shapes:
        command = [sys.executable, "-m", "ragdistill.study.deployment", "--shape", shape, "--dataset", dataset,
                   "--questions", str(n)] + (["--student", student_dir] if student_dir else [])
        log(f"deploy: timing {shape} on {n} {dataset} questions, batch 1")
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise DataError(f"deploy: timing {shape!r} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        sides[shape] = json.loads(done.stdout.strip().splitlines()[-1])
        log(f"deploy: {shape}: {1000 * sides[shape]['latency_s']:,.0f} ms a question, "
            f"peak {sides[shape]['peak_rss_mb']:,.0f} MB")
    out = deployment_file(dataset, directory)
    write_json(out, {"dataset": dataset, "questions": n, "batch_size": 1, "machine": describe(),
                     "measured": time.strftime("%Y-%m-%d"), "shapes": sides})
    log(f"deploy: wrote {out}")
    return out


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="one deployment's timing, in its own process (used by deploy)")
    parser.add_argument("--shape", choices=SHAPES, required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--questions", type=int, default=32)
    parser.add_argument("--student")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.shape, args.dataset, args.questions, args.student)), flush=True)


if __name__ == "__main__":
    _main()
