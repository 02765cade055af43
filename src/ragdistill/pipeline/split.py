"""Stage split: the students' training part (fraction and seed), validation and evaluation files."""

from __future__ import annotations

from ragdistill import paths
from ragdistill.config import Params
from ragdistill.data.example import load_examples, save_examples
from ragdistill.data.registry import task_kind
from ragdistill.data.split import agreeing, choose_training, with_annotations, with_evidence, without_teacher
from ragdistill.io import DataError, read_jsonl, write_json
from ragdistill.log import log
from ragdistill.registry import METHODS, TEACHERS


def run(params: Params, dataset: str) -> dict:
    """Apply the training fraction and hold out the validation part; the eval split is kept whole.

    Writes ``train-<method>.jsonl`` per training method, the chosen examples with only what the method may
    learn from (finetune's without the teacher's outputs, so that a change of teacher leaves it and finetune's
    stages untouched), ``valid.jsonl`` and ``eval.jsonl`` (gold labels only: students are scored against gold,
    the teacher is scored by its own stage)."""
    if TEACHERS[params.teacher].oracle:
        raise DataError(f"params.yaml: teacher {params.teacher!r} answers the evaluation questions only (it reads "
                        "their gold facts, a ceiling for retrieval), so no student can learn from it; choose "
                        f"another teacher ({', '.join(n for n, s in TEACHERS.items() if not s.oracle)})")
    train = load_examples(paths.prepared(dataset, "train"))
    evaluation = load_examples(paths.prepared(dataset, "eval"))
    if params.split.student_evidence:
        source = paths.retrieved(dataset)
        retrieved = {row["id"]: row["passages"] for row in read_jsonl(source)}
        train = with_evidence(train, retrieved, str(source))
        evaluation = with_evidence(evaluation, retrieved, str(source))
    fraction = params.fraction(dataset)
    chosen, valid = choose_training(train, fraction, params.split.valid_size, params.split.seed,
                                   held_out=params.split.teacher_selection)
    gold = without_teacher(chosen)
    annotation_file = paths.annotations(dataset, params.teacher)
    records = {row["id"]: row for row in read_jsonl(annotation_file)}
    missing = [e.id for e in chosen if e.id not in records]
    if missing:
        raise DataError(f"{annotation_file}: no teacher record for {len(missing)} of the "
                        f"{len(chosen)} chosen training examples (the first: {missing[0]}); the "
                        "annotation is unfinished or for another fraction: run "
                        f"`dvc repro annotate-teacher@{dataset}` to complete it")
    chosen = with_annotations(chosen, records)
    files = {f"train-{name}": chosen if method.uses_teacher else gold for name, method in METHODS.items()}
    dropped = 0
    agree_only = params.split.rationale_filter == "agree"
    if agree_only:
        kept = agreeing(chosen, task_kind(dataset))
        dropped = len(chosen) - len(kept)
        files["train-sbs"] = kept
        log(f"{dataset}: rationale filter 'agree': sbs learns from {len(kept)} of {len(chosen)} examples, those "
            "whose teacher label is the gold label")
    # Validation scores the label task against gold: like eval, it holds no teacher outputs, so that a change
    # of teacher leaves finetune's inputs alone.
    files.update(valid=without_teacher(valid), eval=without_teacher(evaluation))
    for name, rows in files.items():
        save_examples(paths.split_file(dataset, name), rows)
    info = {"dataset": dataset, "fraction": fraction, "seed": params.split.seed,
            **({"student_evidence": True} if params.split.student_evidence else {}),
            **({"rationale_filter": "agree", "sbs_dropped": dropped} if agree_only else {}),
            "train": len(chosen), "valid": len(valid), "eval": len(evaluation)}
    write_json(paths.SPLITS / dataset / "summary.json", info)
    log(f"{dataset}: {len(chosen)} training, {len(valid)} validation, {len(evaluation)} evaluation examples "
        f"({fraction:.0%} of the training set)")
    return info
