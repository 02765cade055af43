"""OpenBookQA v1 (Sep 2018) in AllenAI's release layout.

``<root>/openbookqa/Main/{train,dev}.jsonl`` (questions), ``Main/openbook.txt`` (the 1,326-fact "open book",
one quoted fact a line) and ``Additional/{train,dev}_complete.jsonl`` (the same questions plus the gold
book fact ``fact1``). The official test split is deliberately not loaded.
"""

from __future__ import annotations

import re
from pathlib import Path

from ragdistill.data.dss import format_choices
from ragdistill.data.example import Example
from ragdistill.io import DataError, read_jsonl_numbered

SPLITS = ("train", "dev")
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'", "`": "'"})


def strip_quotes(text: str) -> str:
    """The text without one pair of surrounding double quotes (as every line of openbook.txt has)."""
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1].strip()
    return text


def normalize_fact(text: str) -> str:
    """A key for matching facts: quotes unified and stripped, whitespace collapsed, lowercase."""
    text = strip_quotes(text.translate(_QUOTES).replace("''", '"'))
    return re.sub(r"\s+", " ", text).strip().lower()


def book_path(root: Path) -> Path:
    return Path(root) / "openbookqa" / "Main" / "openbook.txt"


def book_passage_id(line: int) -> str:
    """The passage id of line ``line`` (1-based) of openbook.txt; ``ragdistill.data.corpora`` uses it too."""
    return f"book-{line}"


def read_book_lines(root: Path) -> list[tuple[int, str]]:
    """(line number, fact without its quotes) for every non-blank line of openbook.txt."""
    path = book_path(root)
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found")
    lines = []
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        fact = strip_quotes(line.rstrip("\r"))
        if fact:
            lines.append((number, fact))
    return lines


def _book_index(root: Path) -> dict[str, str]:
    index: dict[str, str] = {}
    for number, fact in read_book_lines(root):
        index.setdefault(normalize_fact(fact), book_passage_id(number))
    return index


def _gold_facts(path: Path) -> dict[str, str]:
    facts = {}
    for line, row in read_jsonl_numbered(path):
        if "id" not in row or "fact1" not in row:
            raise DataError(f"{path}:{line}: missing field {'id' if 'id' not in row else 'fact1'!r}")
        if not isinstance(row["fact1"], str) or not row["fact1"].strip():
            raise DataError(f"{path}:{line}: empty fact1")
        facts[str(row["id"])] = strip_quotes(row["fact1"])
    return facts


def load_openbookqa(root: Path, split: str) -> list[Example]:
    """The questions of ``split`` ("train" or "dev"); label = the answer text; ``meta["gold_fact"]`` is the
    book fact the question was written from and ``meta["gold_fact_id"]`` its passage id (None when it is
    not a line of the book, or when the question is missing from the ``_complete`` file)."""
    if split not in SPLITS:
        raise ValueError(f"unknown OpenBookQA split {split!r}; known: {', '.join(SPLITS)}")
    root = Path(root)
    path = root / "openbookqa" / "Main" / f"{split}.jsonl"
    gold = _gold_facts(root / "openbookqa" / "Additional" / f"{split}_complete.jsonl")
    book = _book_index(root)
    examples = []
    for line, row in read_jsonl_numbered(path):
        where = f"{path}:{line}"
        for key in ("id", "question", "answerKey"):
            if key not in row:
                raise DataError(f"{where}: missing field {key!r}")
        question = row["question"]
        if not isinstance(question, dict) or "stem" not in question or "choices" not in question:
            raise DataError(f"{where}: question must be an object with 'stem' and 'choices'")
        stem = question["stem"]
        if not isinstance(stem, str) or not stem.strip():
            raise DataError(f"{where}: empty question stem")
        choices = question["choices"]
        if not isinstance(choices, list) or len(choices) < 2:
            raise DataError(f"{where}: expected a list of at least two choices")
        labels, texts = [], []
        for choice in choices:
            if not isinstance(choice, dict) or "label" not in choice or "text" not in choice:
                raise DataError(f"{where}: every choice needs 'label' and 'text'")
            text = str(choice["text"]).strip()
            if not text:
                raise DataError(f"{where}: empty choice {choice['label']!r}")
            labels.append(str(choice["label"]))
            texts.append(text)
        if len(set(labels)) != len(labels):
            raise DataError(f"{where}: repeated choice labels {labels}")
        if row["answerKey"] not in labels:
            raise DataError(f"{where}: answerKey {row['answerKey']!r} is not among the choice labels {labels}")
        qid = str(row["id"])
        fact = gold.get(qid)
        examples.append(Example(
            id=qid, input=format_choices(stem, texts), label=texts[labels.index(row["answerKey"])],
            source="openbookqa", choices=texts,
            meta={"stem": stem.strip(), "gold_fact": fact,
                  "gold_fact_id": book.get(normalize_fact(fact)) if fact is not None else None},
        ))
    return examples
