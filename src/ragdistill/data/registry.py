"""Which datasets exist, where their files live, and how each is loaded."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ragdistill.data.dss import load_cqa, load_svamp
from ragdistill.data.example import Example
from ragdistill.data.openbookqa import load_openbookqa
from ragdistill.data.strategyqa import load_strategyqa

DATA_ROOT_ENV = "RAGDISTILL_DATA"

# name -> (loader, {our split name: the dataset's own split name}, task kind)
DATASETS: dict[str, tuple[Callable[[Path, str], list[Example]], dict[str, str], str]] = {
    "cqa": (load_cqa, {"train": "train", "eval": "test"}, "choice"),
    "svamp": (load_svamp, {"train": "train", "eval": "test"}, "arithmetic"),
    "openbookqa": (load_openbookqa, {"train": "train", "eval": "dev"}, "choice"),
    # StrategyQA's eval is a fixed stratified 20% of its public train file (see data/strategyqa.py).
    "strategyqa": (load_strategyqa, {"train": "train", "eval": "eval"}, "choice"),
}


def resolve_data_root(configured: str | os.PathLike) -> Path:
    """The data directory: ``$RAGDISTILL_DATA`` when set, else the configured one."""
    root = Path(os.environ.get(DATA_ROOT_ENV) or configured).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"data directory {str(root)!r} does not exist (params key data.root, or ${DATA_ROOT_ENV}); "
            "fetch the public sources with `python -m ragdistill.data.download --root DIR`"
        )
    return root


def task_kind(dataset: str) -> str:
    return DATASETS[dataset][2]


def load_dataset(name: str, root: str | os.PathLike, split: str) -> list[Example]:
    """All examples of one split (``train`` or ``eval``) of a dataset."""
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    loader, splits, _ = DATASETS[name]
    if split not in splits:
        raise KeyError(f"unknown split {split!r}; known: {', '.join(splits)}")
    # The root given here is used as it is; $RAGDISTILL_DATA applies where a configured root is resolved.
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data directory {str(root)!r} does not exist")
    return loader(root, splits[split])
