"""Hybrid retrieval: reciprocal rank fusion (Cormack et al., 2009) of BM25 and dense rankings."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ragdistill.data.corpora import Passage
from ragdistill.retrieval.base import Hit, Retriever
from ragdistill.retrieval.bm25 import BM25Retriever
from ragdistill.retrieval.dense import DenseRetriever


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], rrf_k: int = 60) -> list[tuple[str, float]]:
    """(id, sum over rankings of 1 / (rrf_k + rank)), rank counted from 1, best first; ties: first seen first."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (rrf_k + rank)
    order = {item: i for i, item in enumerate(fused)}
    return sorted(fused.items(), key=lambda pair: (-pair[1], order[pair[0]]))


class HybridRetriever(Retriever):
    """RRF of a BM25 and a dense retriever; each side retrieves ``max(k * 4, 20)`` candidates (same exclusions).
    Keyword arguments other than ``rrf_k`` go to ``DenseRetriever``."""

    name = "hybrid"

    def __init__(self, rrf_k: int = 60, bm25: BM25Retriever | None = None, dense: DenseRetriever | None = None,
                 model: str | os.PathLike | None = None, **dense_kwargs) -> None:
        super().__init__()
        self.rrf_k = rrf_k
        self.bm25 = bm25 or BM25Retriever()
        self.dense = dense or DenseRetriever(model=model, **dense_kwargs)

    def _fit(self, passages: list[Passage]) -> None:
        self.bm25.fit(passages)
        self.dense.fit(passages)

    def search(self, queries: Sequence[str], k: int, exclude: Sequence[set[str]] | None = None) -> list[list[Hit]]:
        excludes = self._check(queries, exclude)
        if k <= 0:
            return [[] for _ in queries]
        depth = max(k * 4, 20)
        sparse = self.bm25.search(queries, depth, excludes)
        dense = self.dense.search(queries, depth, excludes)
        results = []
        for bm25_hits, dense_hits in zip(sparse, dense):
            fused = reciprocal_rank_fusion([[h.id for h in bm25_hits], [h.id for h in dense_hits]], self.rrf_k)
            results.append([self.hit(self._index[i], score) for i, score in fused[:k]])
        return results
