"""Stages train-baseline (finetune, distill) and train-sbs: task rows from the split, one student trained."""

from __future__ import annotations

from pathlib import Path

from ragdistill import paths
from ragdistill.config import Params
from ragdistill.data.example import load_examples
from ragdistill.data.registry import task_kind
from ragdistill.evaluation.scoring import scoring_mode
from ragdistill.io import write_json
from ragdistill.log import log
from ragdistill.registry import METHODS
from ragdistill.students.formatting import build_task_examples
from ragdistill.students.models import load_student
from ragdistill.students.trainer import Validation, is_main_process, train_student, world_size


def run(params: Params, dataset: str, method: str) -> dict:
    """Train one student. Under data parallelism (``accelerate launch``) every process trains, and only the
    main one logs and writes ``train_stats.json``."""
    say = log if is_main_process() else (lambda message: None)
    if METHODS[method].uses_teacher and params.teacher == "none":
        raise SystemExit(f"train {method}: teacher is 'none', so there are no teacher labels or rationales; "
                         "set teacher (params.yaml) or train only finetune")
    if params.train.batch_size % world_size():
        raise SystemExit(f"params.yaml: train.batch_size {params.train.batch_size} is the batch of a step over all "
                         f"processes: it must divide evenly among the {world_size()} processes")
    examples = load_examples(paths.training_file(dataset, method))
    groups, skipped = build_task_examples(examples, method, params.train.alpha, params.train.sbs_labels)
    if not groups:
        raise SystemExit(f"train {method} on {dataset}: no training rows (skipped: {skipped})")
    # Validation is scored on gold labels with the eval stage's scoring; it never reads the eval split.
    valid = load_examples(paths.split_file(dataset, "valid"))
    validation = Validation(valid, task_kind(dataset), scoring_mode(params.eval.scoring, dataset),
                            params.eval.max_new_tokens, params.eval.batch_size) if valid else None
    say(f"training {method} on {dataset}: {len(groups)} examples, {sum(map(len, groups))} task rows "
        f"({params.train.batching} batching, {params.train.precision}), skipped {skipped}; "
        + (f"the best of each epoch on {len(valid)} validation examples is kept" if valid else
           "no validation examples (split.valid_size is 0): the last weights are kept"))
    say(f"loading student {params.student.model}")
    student = load_student(params.student.model)
    t = params.train
    stats = train_student(
        student, groups, paths.model_dir(dataset, method), lr=t.lr, epochs=t.epochs, batch_size=t.batch_size,
        grad_accum=t.grad_accum, weight_decay=t.weight_decay, warmup_ratio=t.warmup_ratio, patience=t.patience,
        seed=t.seed,
        max_steps=t.max_steps, max_input_tokens=params.student.max_input_tokens,
        max_target_tokens=params.student.max_target_tokens, batching=t.batching, precision=t.precision,
        validation=validation,
        checkpoint_dir=Path(".cache/checkpoints") / dataset / method,
    )
    stats.update(method=method, dataset=dataset, examples=len(examples), skipped=skipped,
                 student=params.student.model)
    if not is_main_process():
        return stats
    write_json(paths.model_dir(dataset, method) / "train_stats.json", stats)
    log(f"trained {method} on {dataset} in {stats['train_seconds']} s: {stats['real_tokens_per_second']} tokens/s, "
        f"{stats['padding_waste']:.1%} padding")
    if stats["validation"] and stats["validation"]["best"]:
        best = stats["validation"]["best"]
        log(f"kept the weights of epoch {best['epoch']:g} (step {best['step']}): {best['accuracy']:.1f}% on validation")
    return stats
