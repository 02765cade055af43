"""Okapi BM25 over lowercase word tokens (rank_bm25), English stopwords removed."""

from __future__ import annotations

import re

import numpy as np

from ragdistill.data.corpora import Passage
from ragdistill.retrieval.base import Retriever

STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below between both
but by can could did do does doing down during each few for from further had has have having he her here hers
him his how i if in into is it its itself just me more most my no nor not of off on once only or other our ours
out over own same she should so some such than that the their theirs them then there these they this those
through to too under until up very was we were what when where which while who whom why will with would you
your yours
""".split())
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens without stopwords ("Plants' leaves" -> ["plants", "leaves"])."""
    return [t for t in (w.split("'")[0] for w in _WORD.findall(text.lower())) if t and t not in STOPWORDS]


class BM25Retriever(Retriever):
    """BM25Okapi (k1, b, epsilon as rank_bm25's defaults). Passages with no query term in common (score 0)
    are never returned, so a query of stopwords only gets no hits. rank_bm25 floors negative IDF
    (a term in more than half the passages) at ``epsilon`` times the mean IDF: corpora need >= 3 passages
    for a term to count at all."""

    name = "bm25"
    keep_zero_scores = False

    def __init__(self, k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25) -> None:
        super().__init__()
        self.k1, self.b, self.epsilon = k1, b, epsilon
        self._bm25 = None

    def _fit(self, passages: list[Passage]) -> None:
        from rank_bm25 import BM25Okapi

        corpus = [tokenize(p.text) for p in passages]
        if not any(corpus):
            raise ValueError("every passage is empty after tokenization")
        # rank_bm25 divides by each document's length relative to the mean; an empty one is fine.
        self._bm25 = BM25Okapi(corpus, k1=self.k1, b=self.b, epsilon=self.epsilon)

    def _scores(self, queries: list[str]) -> np.ndarray:
        rows = []
        for query in queries:
            tokens = tokenize(query)
            rows.append(self._bm25.get_scores(tokens) if tokens else np.zeros(len(self.passages)))
        return np.vstack(rows)
