"""Text embeddings behind the interest recommender and search. Pluggable: feature hashing runs anywhere with no
download; a sentence-transformer can be named on a cluster that has the weights."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from agentsim.scenarios.social.config import EmbeddingSpec


class Embedder(Protocol):
    dim: int

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm float32 rows, one per text (all-zero for a text with no features)."""
        ...


class HashingEmbedder:
    """Signed feature hashing of word unigrams and bigrams (scikit-learn's HashingVectorizer), L2-normalised.
    Stateless, so every process computes the same vector for the same text."""

    def __init__(self, dim: int):
        from sklearn.feature_extraction.text import HashingVectorizer

        self.dim = dim
        self._v = HashingVectorizer(n_features=dim, alternate_sign=True, norm="l2", ngram_range=(1, 2), dtype=np.float32)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dim), np.float32)
        return self._v.transform(list(texts)).toarray().astype(np.float32, copy=False)


class SentenceTransformerEmbedder:
    def __init__(self, model: str):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise RuntimeError(
                "world.embedding.kind 'sentence_transformer' needs the sentence-transformers package "
                "(pip install sentence-transformers) and the model's weights; use kind 'hashing' where neither is available"
            ) from e
        self._m = SentenceTransformer(model)
        self.dim = int(self._m.get_sentence_embedding_dimension())

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dim), np.float32)
        return np.asarray(self._m.encode(list(texts), normalize_embeddings=True, batch_size=256), dtype=np.float32)


def make_embedder(spec: EmbeddingSpec) -> Embedder:
    if spec.kind == "hashing":
        return HashingEmbedder(spec.dim)
    return SentenceTransformerEmbedder(spec.model)
