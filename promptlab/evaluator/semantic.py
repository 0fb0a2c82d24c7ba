"""``semantic_similarity``: cosine similarity of the embeddings of response and reference."""

from __future__ import annotations

import math
from typing import Any, Dict, Sequence

from promptlab.evaluator._calls import embed
from promptlab.evaluator.evaluator import Evaluator, require


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """cos(a, b) in -1..1; ValueError for vectors of different lengths or a zero vector."""
    if len(a) != len(b):
        raise ValueError(
            f"Embeddings of different lengths ({len(a)} and {len(b)}) cannot be compared.")
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    if norm == 0.0:
        # The direction of a zero vector is undefined: no similarity can be given.
        raise ValueError("An embedding is the zero vector: cosine similarity is undefined.")
    # Rounding can take |cos| a hair past 1; clamp so the result stays a cosine.
    return max(-1.0, min(1.0, math.fsum(x * y for x, y in zip(a, b, strict=True)) / norm))


class SemanticSimilarity(Evaluator):
    """Cosine similarity of the embedding model's vectors for response and reference."""

    required_keys = ("response", "reference")

    def evaluate(self, data: Dict[str, Any]) -> float:
        metric = "semantic_similarity"
        response, reference = require(metric, data, "response"), require(metric, data, "reference")
        if self.embedding is None:
            raise ValueError(
                f"Metric {metric!r} needs an embedding model: set embedding_model_config.")
        return cosine(embed(self.embedding, response, metric),
                      embed(self.embedding, reference, metric))
