"""Stages evaluate and evaluate-untrained: one student scored on the eval split (label task only). The
untrained student is ``student.model`` as it comes, before any training: the control row of every table."""

from __future__ import annotations

import time

from ragdistill import paths
from ragdistill.config import Params
from ragdistill.data.example import load_examples
from ragdistill.data.registry import task_kind
from ragdistill.evaluation.metrics import accuracy_summary, is_correct
from ragdistill.evaluation.scoring import answer_labels, scoring_mode
from ragdistill.io import read_json, write_json, write_jsonl
from ragdistill.log import log
from ragdistill.registry import UNTRAINED
from ragdistill.students.formatting import TaskFormatter
from ragdistill.students.models import load_student, pick_device


def run(params: Params, dataset: str, method: str) -> dict:
    """Score one student (a trained method, or ``untrained``) on the eval split and save its predictions."""
    started = time.perf_counter()
    examples = load_examples(paths.split_file(dataset, "eval"))
    device = pick_device(params.eval.device, "params.yaml: eval.device")
    untrained = method == UNTRAINED
    student = load_student(params.student.model if untrained else str(paths.model_dir(dataset, method)),
                           device=device)
    formatter = TaskFormatter(student.tokenizer, student.is_encoder_decoder,
                              params.student.max_input_tokens, params.student.max_target_tokens)
    kind = task_kind(dataset)
    scoring = scoring_mode(params.eval.scoring, dataset)
    predictions, scores = answer_labels(student, examples, formatter, scoring, params.eval.max_new_tokens,
                                        params.eval.batch_size, desc=f"{dataset}/{method}")
    correct = [is_correct(p, e.label, kind) for p, e in zip(predictions, examples)]
    rows = [{"id": e.id, "gold": e.label, "prediction": p, "correct": c, **({"choice_scores": s} if scores else {})}
            for e, p, c, s in zip(examples, predictions, correct, scores or [None] * len(examples))]
    write_jsonl(paths.predictions(dataset, method), rows)
    train_stats = {"student": params.student.model} if untrained else read_json(
        paths.model_dir(dataset, method) / "train_stats.json")
    result = {"dataset": dataset, "method": method, "scoring": scoring,
              **accuracy_summary(correct, params.eval.bootstrap, params.eval.seed),
              "eval_seconds": round(time.perf_counter() - started, 1), "device": device,
              "train_seconds": train_stats.get("train_seconds"),
              "train_examples": train_stats.get("examples"),
              "train_tokens_per_second": train_stats.get("real_tokens_per_second"),
              "padding_waste": train_stats.get("padding_waste"),
              "student": train_stats.get("student"),
              "loss_history": train_stats.get("loss_history", []),
              "validation": train_stats.get("validation")}
    write_json(paths.eval_result(dataset, method), result)
    log(f"{dataset}/{method}: accuracy {result['accuracy']:.1%} "
        f"[{result['ci_low']:.1%}, {result['ci_high']:.1%}] on {result['n']} examples")
    return result
