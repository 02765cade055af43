"""Search: the query text of an example, and the top-k passages of every example as JSON-ready rows."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ragdistill.data.corpora import Passage
from ragdistill.data.example import Example
from ragdistill.retrieval.base import Hit, Retriever

_CHOICES = re.compile(r"\nAnswer Choices:\n")


def question_only(example: Example) -> str:
    """The question without its answer-choice block."""
    return _CHOICES.split(example.input, maxsplit=1)[0].strip()


def question_and_choices(example: Example) -> str:
    """The question followed by the text of its choices (no "(a)" markers), or the input when it has none."""
    if not example.choices:
        return example.input.strip()
    return question_only(example) + " " + " ".join(example.choices)


def question_with_each_choice(example: Example) -> list[str]:
    """One query per choice, the question followed by that choice: a passage is then scored by the choice it
    supports best, so a fact about one choice is not drowned by the words of the other three."""
    if not example.choices:
        return [example.input.strip()]
    stem = question_only(example)
    return [f"{stem} {choice}" for choice in example.choices]


def search_all(retriever: Retriever, queries: list[str | list[str]], k: int, exclude: list[set[str]] | None = None
               ) -> list[list[Hit]]:
    """Top-k hits per example; an example with several queries (``question_with_each_choice``) gets each passage
    at its best score over them."""
    if all(isinstance(q, str) for q in queries):
        return retriever.search(queries, k, exclude)
    flat, owner = [], []
    for i, query in enumerate(queries):
        for one in [query] if isinstance(query, str) else query:
            flat.append(one)
            owner.append(i)
    hits = retriever.search(flat, k, None if exclude is None else [exclude[i] for i in owner])
    best: list[dict] = [{} for _ in queries]
    for i, found in zip(owner, hits):
        for hit in found:
            if hit.id not in best[i] or hit.score > best[i][hit.id].score:
                best[i][hit.id] = hit
    return [sorted(b.values(), key=lambda h: -h.score)[:k] for b in best]


def retrieve_for_examples(
    examples: Sequence[Example],
    passages: Sequence[Passage],
    retriever: Retriever,
    k: int,
    exclude_fn: Callable[[Example], set[str]] | None = None,
    query_fn: Callable[[Example], str | list[str]] = question_and_choices,
    min_score: float | None = None,
) -> list[dict]:
    """``[{"id": example id, "passages": [{"id", "text", "score"}, ...]}, ...]``, one row per example in order,
    at most ``k`` passages each, best first. The retriever is fitted on ``passages`` unless it already is;
    ``exclude_fn(example)`` names the passage ids the example must not get (see
    ``ragdistill.data.corpora.self_exclusion``). ``min_score`` drops the hits the retriever scored below it,
    so a question may get fewer than ``k`` passages, or none."""
    if retriever.fitted_ids != [p.id for p in passages]:
        retriever.fit(passages)
    queries = [query_fn(example) for example in examples]
    exclude = [set(exclude_fn(example)) for example in examples] if exclude_fn is not None else None
    hits = search_all(retriever, queries, k, exclude)
    return [
        {"id": example.id,
         "passages": [{"id": h.id, "text": h.text, "score": round(float(h.score), 6)} for h in example_hits
                      if min_score is None or h.score >= min_score]}
        for example, example_hits in zip(examples, hits)
    ]
