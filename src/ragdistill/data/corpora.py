"""Retrieval corpora: the passages a retriever searches.

- ``openbook``: the 1,326 facts of OpenBookQA's open book (``Main/openbook.txt``), ids ``book-<line>``.
- ``strategyqa_facts``: the gold facts of StrategyQA *training* questions, one passage per fact,
  ids ``fact-<qid>-<i>``.
- ``solved_examples``: a demonstration memory: one passage per training example with a rationale,
  ``"Q: <input>\\nA: <rationale> So the answer is (<letter>) <label>."``, id = the example's id.

Passages derived from a question carry ``meta["question_id"]`` and ``meta["question_key"]`` (its normalized
text); ``self_exclusion`` turns them into the per-example exclusion sets that keep a question from
retrieving its own answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ragdistill.data.dss import LETTERS
from ragdistill.data.example import Example
from ragdistill.data.openbookqa import book_passage_id, read_book_lines
from ragdistill.registry import CORPORA, load, lookup


@dataclass
class Passage:
    id: str
    text: str
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"id": self.id, "text": self.text, "meta": self.meta}


def question_key(example: Example) -> str:
    """The example's question, lowercased with whitespace collapsed: equal keys mean the same question."""
    text = example.meta.get("question") or example.meta.get("stem") or example.input
    return re.sub(r"\s+", " ", str(text)).strip().lower()


def load_openbook(root: Path) -> list[Passage]:
    """One passage per line of ``<root>/openbookqa/Main/openbook.txt``, without its surrounding quotes."""
    return [Passage(id=book_passage_id(line), text=fact, meta={"line": line}) for line, fact in read_book_lines(root)]


def strategyqa_fact_pool(examples: Iterable[Example]) -> list[Passage]:
    """One passage per (training question, gold fact); pass training examples only."""
    passages = []
    for example in examples:
        for i, fact in enumerate(example.meta.get("facts") or []):
            if str(fact).strip():
                passages.append(Passage(
                    id=f"fact-{example.id}-{i}", text=str(fact).strip(),
                    meta={"question_id": example.id, "question_key": question_key(example), "fact_index": i},
                ))
    return passages


def solved_examples_memory(examples: Iterable[Example]) -> list[Passage]:
    """One worked example per training example: its question and gold label, with its rationale when it has
    one (a memory to retrieve demonstrations from). The answer is written as the teacher is told to write
    its own, ``(b) text`` for a multiple-choice question, so retrieved examples do not teach another form."""
    passages = []
    for example in examples:
        rationale = (example.rationale or "").strip()
        label = example.label
        if example.choices and label in example.choices:
            label = f"({LETTERS[example.choices.index(label)]}) {label}"
        answer = f"{rationale} So the answer is {label}." if rationale else f"So the answer is {label}."
        passages.append(Passage(
            id=example.id,
            text=f"Q: {example.input.strip()}\nA: {answer}",
            meta={"question_id": example.id, "question_key": question_key(example), "label": example.label},
        ))
    return passages


def self_exclusion(passages: Iterable[Passage]) -> Callable[[Example], set[str]]:
    """``exclude_fn(example)``: the ids of passages derived from the example itself, or from another copy of
    the same question (same normalized text), which it must never retrieve."""
    by_id: dict[str, set[str]] = {}
    by_key: dict[str, set[str]] = {}
    for passage in passages:
        if "question_id" in passage.meta:
            by_id.setdefault(str(passage.meta["question_id"]), set()).add(passage.id)
        if passage.meta.get("question_key"):
            by_key.setdefault(passage.meta["question_key"], set()).add(passage.id)

    def exclude(example: Example) -> set[str]:
        return by_id.get(example.id, set()) | by_key.get(question_key(example), set())

    return exclude


def build_corpus(name: str, root: Path | None = None, examples: list[Example] | None = None) -> list[Passage]:
    """The passages of a registered corpus (``ragdistill.registry.CORPORA``): read from the data ``root``, or
    built from ``examples``, the TRAINING examples of the dataset."""
    corpus = lookup(CORPORA, name, "corpus")
    if corpus.from_examples and examples is None:
        raise ValueError(f"the {name} corpus is built from training examples; pass examples=")
    if not corpus.from_examples and root is None:
        raise ValueError(f"the {name} corpus needs the data root")
    passages = load(corpus.builder)(examples if corpus.from_examples else Path(root))
    ids = [p.id for p in passages]
    if len(set(ids)) != len(ids):
        raise ValueError(f"corpus {name!r} has repeated passage ids")
    return passages
