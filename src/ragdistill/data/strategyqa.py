"""StrategyQA (the 2,061-question train file of eladsegal/strategyqa): yes/no questions with gold facts.

Only the train file is public with answers here, so ``eval`` is a fixed, stratified 20% of it
(``train_test_split(test_size=0.2, random_state=0)``) and ``train`` the other 80%.
"""

from __future__ import annotations

from pathlib import Path

from ragdistill.data.dss import format_choices
from ragdistill.data.example import Example
from ragdistill.io import DataError, read_json

SPLITS = ("train", "eval")
CHOICES = ["yes", "no"]
EVAL_FRACTION = 0.2
SPLIT_SEED = 0


def _split_indices(answers: list[bool]) -> tuple[list[int], list[int]]:
    from sklearn.model_selection import train_test_split

    train, held_out = train_test_split(
        list(range(len(answers))), test_size=EVAL_FRACTION, random_state=SPLIT_SEED, stratify=answers
    )
    return sorted(train), sorted(held_out)


def load_strategyqa(root: Path, split: str) -> list[Example]:
    """The questions of ``split`` ("train": 80%, "eval": the held-out 20%), in file order."""
    if split not in SPLITS:
        raise ValueError(f"unknown StrategyQA split {split!r}; known: {', '.join(SPLITS)}")
    path = Path(root) / "strategyqa" / "train.json"
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(f"{path}:1: expected a JSON list of questions")
    examples, seen = [], set()
    for position, row in enumerate(data, start=1):
        where = f"{path}: row {position}"
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object")
        for key in ("qid", "question", "answer"):
            if key not in row:
                raise DataError(f"{where}: missing field {key!r}")
        if not isinstance(row["question"], str) or not row["question"].strip():
            raise DataError(f"{where}: empty question")
        if not isinstance(row["answer"], bool):
            raise DataError(f"{where}: answer must be true or false, got {row['answer']!r}")
        facts = row.get("facts") or []
        decomposition = row.get("decomposition") or []
        if not isinstance(facts, list) or not isinstance(decomposition, list):
            raise DataError(f"{where}: facts and decomposition must be lists")
        qid = str(row["qid"])
        if qid in seen:
            raise DataError(f"{where}: repeated qid {qid!r}")
        seen.add(qid)
        examples.append(Example(
            id=qid, input=format_choices(row["question"], CHOICES), label="yes" if row["answer"] else "no",
            source="strategyqa", choices=list(CHOICES),
            meta={"question": row["question"].strip(), "facts": [str(f).strip() for f in facts],
                  "decomposition": [str(d).strip() for d in decomposition]},
        ))
    train, held_out = _split_indices([e.label == "yes" for e in examples])
    return [examples[i] for i in (train if split == "train" else held_out)]
