"""Retrievers over a list of ``Passage``: BM25, dense (MiniLM) and their reciprocal rank fusion."""

from __future__ import annotations

from ragdistill.registry import RETRIEVERS, load, lookup
from ragdistill.retrieval.base import Hit, Retriever
from ragdistill.retrieval.bm25 import BM25Retriever
from ragdistill.retrieval.dense import DenseRetriever
from ragdistill.retrieval.hybrid import HybridRetriever


def build_retriever(method: str, **kwargs) -> Retriever:
    """A new, unfitted retriever: ``bm25`` (k1, b, epsilon), ``dense`` (model, device, batch_size, cache_dir,
    progress) or ``hybrid`` (rrf_k and the dense ones)."""
    return load(lookup(RETRIEVERS, method, "retrieval method"))(**kwargs)


__all__ = ["BM25Retriever", "DenseRetriever", "Hit", "HybridRetriever", "Retriever", "build_retriever"]
