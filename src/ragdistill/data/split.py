"""Choosing the students' training examples: the fraction (stratified where labels are choices), validation,
the teacher's annotations and the retrieved evidence merged in."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace

from sklearn.model_selection import train_test_split

from ragdistill.data.example import Example
from ragdistill.evaluation.metrics import is_correct
from ragdistill.io import DataError


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


def _without_held_out(train: list[Example], held_out: int, seed: int) -> tuple[list[Example], list[Example]]:
    """(pool, held out): ``held_out`` seeded, stratified questions set aside whatever the fraction, so the
    teacher-selection set is the same 200 questions at every size and no student at any size learns from it."""
    if held_out <= 0:
        return train, []
    if held_out >= len(train):
        raise DataError(f"split.teacher_selection: {held_out} questions held out of {len(train)} training "
                        "questions leaves none to train on")
    return _subset(train, len(train) - held_out, seed)


def choose_training(train: list[Example], fraction: float, valid_size: float, seed: int, held_out: int = 0
                    ) -> tuple[list[Example], list[Example]]:
    """(training, validation) examples: the fraction of the training set, then the validation share of it.
    ``held_out`` questions (the teacher-selection set) are set aside first, the same ones at every fraction;
    the students' part is drawn from the rest, and at fraction 1 it is all the rest. The fraction stays a
    share of the whole training set. The teacher stage calls this too, so that it annotates exactly the
    examples split will choose."""
    pool, _ = _without_held_out(train, held_out, seed)
    size = math.floor(fraction * len(train))
    if fraction >= 1.0 or size == len(pool):
        chosen = pool
    elif size > len(pool):
        raise DataError(f"split.fraction {fraction:g} of {len(train)} training questions is {size}, and "
                        f"{len(pool)} are left once split.teacher_selection ({held_out}) is held out: ask for a "
                        f"fraction of at most {len(pool) / len(train):.3f}, 1, or fewer held-out questions")
    else:
        chosen = _subset(pool, size, seed)[0]
    valid: list[Example] = []
    if valid_size > 0:
        chosen, valid = _subset(chosen, 1 - valid_size, seed)
    return chosen, valid


def teacher_selection_set(train: list[Example], size: int, seed: int) -> list[Example]:
    """``size`` training questions (stratified, seeded) that no student learns from or validates on, at any
    fraction: where the teacher's prompt, retrieval and k are chosen, so that no choice reads the eval split
    and no student is trained on the questions its teacher was tuned on. They are the questions
    ``choose_training`` holds out."""
    if size < 1:
        raise DataError(f"split.teacher_selection is {size}: the teacher-selection set needs at least 1 question")
    held_out = {e.id for e in _without_held_out(train, size, seed)[1]}
    return [e for e in train if e.id in held_out]  # in training-set order, as the selection report lists them


def with_annotations(examples: list[Example], records: dict[str, dict]) -> list[Example]:
    """Examples with their teacher output: from the annotation record where it carries one; PaLM outputs
    stay as prepared; with no teacher there is none."""
    out = []
    for example in examples:
        record = records.get(example.id)
        if record is not None and "rationale" in record:
            example.rationale, example.teacher_label = record["rationale"], record["teacher_label"]
            example.meta.update(record.get("meta", {}))
        elif record is not None and record.get("source") is None:
            example.rationale, example.teacher_label = None, None
        out.append(example)
    return out


def with_evidence(examples: list[Example], retrieved: dict[str, list[dict]], where: str) -> list[Example]:
    """Examples whose input starts with their retrieved passages, for a student that reads evidence at
    training and at inference (knowledge-augmented distillation). The teacher never sees these inputs."""
    for example in examples:
        passages = retrieved.get(example.id)
        if passages is None:
            raise DataError(f"{where}: no retrieved passages for example {example.id!r}; rerun the retrieve stage")
        evidence = "\n".join(f"- {p['text']}" for p in passages)
        example.input = f"Evidence:\n{evidence}\n{example.input}"
        example.meta["student_evidence_ids"] = [p["id"] for p in passages]
    return examples


def agreeing(examples: list[Example], kind: str) -> list[Example]:
    """The examples whose teacher's own label (before any ``gold_if_wrong`` correction) is the gold label:
    their rationale argues for the answer the student is taught."""
    return [e for e in examples if is_correct(e.meta.get("teacher_label_raw", e.teacher_label), e.label, kind)]


def without_teacher(examples: list[Example]) -> list[Example]:
    """The examples as prepared, with no teacher rationale or label: what finetuning and evaluation read,
    so that a change of teacher leaves their inputs, and so their DVC stages, untouched."""
    return [replace(e, rationale=None, teacher_label=None, meta=dict(e.meta)) for e in examples]
