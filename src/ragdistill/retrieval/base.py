"""The retriever interface: ``fit`` on passages, then ``search`` a batch of queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ragdistill.data.corpora import Passage


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    text: str


def top_k(scores: np.ndarray, k: int, banned: Sequence[int] = (), keep_zero: bool = True) -> list[int]:
    """Indices of the ``k`` highest scores, best first, never one in ``banned``; ties go to the lower index,
    so the result is deterministic. With ``keep_zero=False`` scores <= 0 are dropped too."""
    scores = np.array(scores, dtype=np.float64)
    if len(banned):
        scores[np.asarray(list(banned), dtype=np.int64)] = -np.inf
    allowed = np.isfinite(scores) if keep_zero else np.isfinite(scores) & (scores > 0)
    candidates = np.flatnonzero(allowed)
    if k <= 0 or candidates.size == 0:
        return []
    if candidates.size > k:
        # The k-th best score; everything above it is in, ties at it are filled by lowest index.
        threshold = scores[candidates][np.argpartition(-scores[candidates], k - 1)[k - 1]]
        candidates = candidates[scores[candidates] >= threshold]
    order = np.lexsort((candidates, -scores[candidates]))[:k]
    return [int(i) for i in candidates[order]]


class Retriever:
    """Base class. Subclasses implement ``_fit`` and ``_scores`` (one row of scores per query over all
    passages, higher is better) or override ``search``.

    ``search(queries, k, exclude)`` returns, per query, at most ``k`` hits best first; ``exclude[i]`` is a set of
    passage ids query ``i`` must never get back (its own facts, its own solved example). A blank query gets
    no hits.
    """

    name = "base"
    keep_zero_scores = True
    query_chunk = 1024

    def __init__(self) -> None:
        self.passages: list[Passage] = []
        self._index: dict[str, int] = {}

    @property
    def fitted_ids(self) -> list[str]:
        return [p.id for p in self.passages]

    def fit(self, passages: Sequence[Passage]) -> Retriever:
        passages = list(passages)
        if not passages:
            raise ValueError("cannot fit a retriever on an empty corpus")
        index = {p.id: i for i, p in enumerate(passages)}
        if len(index) != len(passages):
            raise ValueError("passage ids must be unique")
        self.passages, self._index = passages, index
        self._fit(passages)
        return self

    def _fit(self, passages: list[Passage]) -> None:
        raise NotImplementedError

    def _scores(self, queries: list[str]) -> np.ndarray:
        raise NotImplementedError

    def _check(self, queries: Sequence[str], exclude: Sequence[set[str]] | None) -> list[set[str]]:
        if not self.passages:
            raise RuntimeError(f"{type(self).__name__}.search before fit")
        if isinstance(queries, str):
            raise TypeError("search takes a list of queries")
        if exclude is None:
            return [set() for _ in queries]
        if len(exclude) != len(queries):
            raise ValueError(f"exclude has {len(exclude)} sets for {len(queries)} queries")
        return [set(e or ()) for e in exclude]

    def banned_indices(self, excluded: set[str]) -> list[int]:
        return [self._index[i] for i in excluded if i in self._index]

    def search(self, queries: Sequence[str], k: int, exclude: Sequence[set[str]] | None = None) -> list[list[Hit]]:
        excludes = self._check(queries, exclude)
        results: list[list[Hit]] = [[] for _ in queries]
        live = [i for i, q in enumerate(queries) if q and q.strip()]
        if not live or k <= 0:
            return results
        # In chunks: a score matrix of all queries by all passages can be large (10k x 10k floats = 800 MB).
        for start in range(0, len(live), self.query_chunk):
            chunk = live[start : start + self.query_chunk]
            scores = self._scores([queries[i] for i in chunk])
            for row, i in enumerate(chunk):
                chosen = top_k(scores[row], k, self.banned_indices(excludes[i]), keep_zero=self.keep_zero_scores)
                results[i] = [self.hit(j, float(scores[row, j])) for j in chosen]
        return results

    def hit(self, index: int, score: float) -> Hit:
        passage = self.passages[index]
        return Hit(id=passage.id, score=score, text=passage.text)
