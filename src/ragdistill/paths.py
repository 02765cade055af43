"""Where each artifact of the pipeline lives (the single source for stage scripts and dvc.yaml)."""

from __future__ import annotations

from pathlib import Path

from ragdistill.registry import METHODS, lookup

PREPARED = Path("data/prepared")
SPLITS = Path("data/splits")
RETRIEVED = Path("data/retrieved")
ANNOTATIONS = Path("data/annotations")
TEACHER_CACHE = Path(".cache/teacher")
MODELS = Path("models")
REPORTS = Path("reports")


def prepared(dataset: str, split: str) -> Path:
    return PREPARED / dataset / f"{split}.jsonl"


def split_file(dataset: str, split: str) -> Path:
    return SPLITS / dataset / f"{split}.jsonl"


def training_file(dataset: str, method: str) -> Path:
    """The method's own training file (``split`` writes one per method; finetune's holds no teacher outputs)."""
    lookup(METHODS, method, "method")
    return split_file(dataset, f"train-{method}")


def model_dir(dataset: str, method: str) -> Path:
    return MODELS / dataset / method


def predictions(dataset: str, method: str) -> Path:
    return REPORTS / "predictions" / f"{dataset}-{method}.jsonl"


def eval_result(dataset: str, method: str) -> Path:
    return REPORTS / "eval" / f"{dataset}-{method}.json"


def retrieved(dataset: str) -> Path:
    return RETRIEVED / f"{dataset}.jsonl"


def annotations(dataset: str, teacher: str) -> Path:
    return ANNOTATIONS / f"{dataset}-{teacher}.jsonl"


def teacher_report(dataset: str, teacher: str) -> Path:
    return REPORTS / "teacher" / f"{dataset}-{teacher}.json"
