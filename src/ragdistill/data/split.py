"""Stage logic of split: the training fraction (stratified where labels are choices), validation, eval."""

from __future__ import annotations

from collections import Counter

from sklearn.model_selection import train_test_split

from ragdistill import paths
from ragdistill.config import Params
from ragdistill.data.example import Example, load_examples, save_examples
from ragdistill.io import write_json
from ragdistill.log import log


def _stratify_key(example: Example) -> str | None:
    if example.choices:
        return str(example.choices.index(example.label)) if example.label in example.choices else None
    return None


def _subset(examples: list[Example], size: float | int, seed: int) -> tuple[list[Example], list[Example]]:
    """(chosen, rest): a stratified random part when labels are categorical, else a random part."""
    keys = [_stratify_key(e) for e in examples]
    counts = Counter(keys)
    stratify = keys if None not in counts and min(counts.values()) >= 2 else None
    try:
        chosen, rest = train_test_split(examples, train_size=size, random_state=seed, stratify=stratify)
    except ValueError:  # too few examples per class for a stratified split
        chosen, rest = train_test_split(examples, train_size=size, random_state=seed)
    return chosen, rest


def split(params: Params, dataset: str) -> dict:
    """Apply the training fraction and hold out the validation part; the eval split is kept whole."""
    train = load_examples(paths.prepared(dataset, "train"))
    evaluation = load_examples(paths.prepared(dataset, "eval"))
    fraction = params.fraction(dataset)
    chosen = train if fraction >= 1.0 else _subset(train, fraction, params.split.seed)[0]
    valid: list[Example] = []
    if params.split.valid_size > 0:
        chosen, valid = _subset(chosen, 1 - params.split.valid_size, params.split.seed)
    for name, rows in (("train", chosen), ("valid", valid), ("eval", evaluation)):
        save_examples(paths.split_file(dataset, name), rows)
    info = {"dataset": dataset, "fraction": fraction, "seed": params.split.seed,
            "train": len(chosen), "valid": len(valid), "eval": len(evaluation)}
    write_json(paths.SPLITS / dataset / "summary.json", info)
    log(f"{dataset}: {len(chosen)} training, {len(valid)} validation, {len(evaluation)} evaluation examples "
        f"({fraction:.0%} of the training set)")
    return info
