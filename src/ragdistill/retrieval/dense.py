"""Dense retrieval: sentence-transformers embeddings (all-MiniLM-L6-v2 from the zoo by default), cosine top-k."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ragdistill.data.corpora import Passage
from ragdistill.retrieval.base import Retriever


def embedding_key(model: str, texts: list[str]) -> str:
    """sha256 of the model name and the texts, in order (the embedding cache's file name)."""
    digest = hashlib.sha256(json.dumps(model).encode("utf-8"))
    for text in texts:
        digest.update(b"\0")
        digest.update(text.encode("utf-8"))
    return digest.hexdigest()


class DenseRetriever(Retriever):
    """Cosine similarity of normalized sentence embeddings.

    ``model``: None for the zoo's all-MiniLM-L6-v2 (``ragdistill.zoo.minilm_path()``), or any sentence-transformers
    name or folder. ``cache_dir``: where passage embeddings are kept as ``<sha256>.npy`` (key: model + texts),
    None for no cache. ``progress``: a progress bar while encoding (None: only for 256 texts or more).
    """

    name = "dense"

    def __init__(self, model: str | os.PathLike | None = None, device: str = "cpu", batch_size: int = 64,
                 cache_dir: str | os.PathLike | None = None, progress: bool | None = None) -> None:
        super().__init__()
        self.model_name = str(model) if model is not None else None
        self.device, self.batch_size, self.progress = device, batch_size, progress
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._model = None
        self._embeddings: np.ndarray | None = None

    @property
    def model_key(self) -> str:
        """The name the cache is keyed by: the zoo name for the default model (its path varies by machine)."""
        if self.model_name is None:
            from ragdistill.zoo import MINILM

            return MINILM
        return self.model_name

    @property
    def model(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            if self.model_name is None:
                from ragdistill.zoo import minilm_path

                source = str(minilm_path())
            else:
                source = self.model_name
            self._model = SentenceTransformer(source, device=self.device)
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        progress = self.progress if self.progress is not None else len(texts) >= 256
        vectors = self.model.encode(
            texts, batch_size=self.batch_size, show_progress_bar=progress, convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.asarray(vectors, dtype=np.float32)

    def _fit(self, passages: list[Passage]) -> None:
        texts = [p.text for p in passages]
        path = None
        if self.cache_dir is not None:
            path = self.cache_dir / f"{embedding_key(self.model_key, texts)}.npy"
            if path.exists():
                cached = np.load(path)
                if cached.shape[0] == len(texts):
                    self._embeddings = cached
                    return
        self._embeddings = self.encode(texts)
        if path is not None:
            from ragdistill.io import atomic_open

            with atomic_open(path, "wb") as handle:
                np.save(handle, self._embeddings)

    def _scores(self, queries: list[str]) -> np.ndarray:
        return self.encode(queries) @ self._embeddings.T
