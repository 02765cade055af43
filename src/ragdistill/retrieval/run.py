"""Search: the query text of an example, and the top-k passages of every example as JSON-ready rows."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ragdistill.data.corpora import Passage
from ragdistill.data.example import Example
from ragdistill.retrieval.base import Retriever

_CHOICES = re.compile(r"\nAnswer Choices:\n")


def question_only(example: Example) -> str:
    """The question without its answer-choice block."""
    return _CHOICES.split(example.input, maxsplit=1)[0].strip()


def question_and_choices(example: Example) -> str:
    """The question followed by the text of its choices (no "(a)" markers), or the input when it has none."""
    if not example.choices:
        return example.input.strip()
    return question_only(example) + " " + " ".join(example.choices)


def retrieve_for_examples(
    examples: Sequence[Example],
    passages: Sequence[Passage],
    retriever: Retriever,
    k: int,
    exclude_fn: Callable[[Example], set[str]] | None = None,
    query_fn: Callable[[Example], str] = question_and_choices,
) -> list[dict]:
    """``[{"id": example id, "passages": [{"id", "text", "score"}, ...]}, ...]``, one row per example in order,
    at most ``k`` passages each, best first. The retriever is fitted on ``passages`` unless it already is;
    ``exclude_fn(example)`` names the passage ids the example must not get (see
    ``ragdistill.data.corpora.self_exclusion``)."""
    if retriever.fitted_ids != [p.id for p in passages]:
        retriever.fit(passages)
    queries = [query_fn(example) for example in examples]
    exclude = [set(exclude_fn(example)) for example in examples] if exclude_fn is not None else None
    hits = retriever.search(queries, k, exclude)
    return [
        {"id": example.id,
         "passages": [{"id": h.id, "text": h.text, "score": round(float(h.score), 6)} for h in example_hits]}
        for example, example_hits in zip(examples, hits)
    ]
