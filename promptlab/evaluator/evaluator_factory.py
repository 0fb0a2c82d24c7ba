"""Metric names to evaluators: ``EvaluatorFactory.get_evaluator`` (as in PromptLab 0.1.x).

The registry is an explicit table, not a scan of the package's modules, so a helper
class can never become a metric by accident and an unknown name is known at once.
Getting an evaluator makes no model call: the runner can get every evaluator of an
experiment before its first completion, and an unknown metric, a judge without a
completion model or a mapping without a needed column stops the run before it starts.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Type

from promptlab.evaluator.evaluator import Evaluator
from promptlab.evaluator.judges import (
    Coherence,
    Faithfulness,
    Fluency,
    Groundedness,
    HarmfulContent,
    Judge,
    Relevance,
)
from promptlab.evaluator.lexical import BleuScore, ExactMatch, F1Score, RougeScore
from promptlab.evaluator.semantic import SemanticSimilarity

BUILTIN_EVALUATORS: Dict[str, Type[Evaluator]] = {
    "exact_match": ExactMatch,
    "f1_score": F1Score,
    "bleu_score": BleuScore,
    "rouge_score": RougeScore,
    "semantic_similarity": SemanticSimilarity,
    "fluency": Fluency,
    "coherence": Coherence,
    "relevance": Relevance,
    "groundedness": Groundedness,
    "faithfulness": Faithfulness,
    "harmful_content": HarmfulContent,
}
# PromptLab 0.1.x found its metrics by every class name in its evaluator modules, so
# "BleuScore" worked as well as "bleu_score"; those spellings keep working.
_CLASS_NAMES: Dict[str, str] = {cls.__name__: name for name, cls in BUILTIN_EVALUATORS.items()}


class EvaluatorFactory:
    """Gives the evaluator of an experiment's metric, with the experiment's models."""

    @staticmethod
    def known_metrics() -> List[str]:
        """The built-in metric names."""
        return list(BUILTIN_EVALUATORS)

    @staticmethod
    def get_evaluator(
        metric: str,
        completion_model: Any = None,
        embedding_model: Any = None,
        evaluator: Optional[Evaluator] = None,
        column_mapping: Optional[Mapping[str, Any]] = None,
    ) -> Evaluator:
        """The evaluator for ``metric``, ready to ``evaluate(data)``.

        With ``evaluator`` (a custom metric's instance) ``metric`` is only its name: the
        instance gets the models as ``.completion`` and ``.embedding`` (a model it
        already holds is not replaced by a missing one) and is returned. Otherwise
        ``metric`` names a built-in (ValueError naming the known ones if not), which
        gets a new instance. ValueError also when a judged metric has no completion
        model, ``semantic_similarity`` no embedding model, or ``column_mapping`` (when
        given) lacks a key the built-in reads.
        """
        if evaluator is not None:
            if not callable(getattr(evaluator, "evaluate", None)):
                raise TypeError(
                    f"The evaluator of metric {metric!r} ({type(evaluator).__name__}) has no "
                    "evaluate(data) method: subclass promptlab.evaluator.evaluator.Evaluator."
                )
            if completion_model is not None or getattr(evaluator, "completion", None) is None:
                evaluator.completion = completion_model
            if embedding_model is not None or getattr(evaluator, "embedding", None) is None:
                evaluator.embedding = embedding_model
            return evaluator

        name = metric if metric in BUILTIN_EVALUATORS else _CLASS_NAMES.get(metric)
        if name is None:
            raise ValueError(
                f"Unknown evaluator: {metric!r}. Known metrics: "
                f"{', '.join(BUILTIN_EVALUATORS)}. For a metric of your own, pass an "
                "Evaluator instance as the evaluation's 'evaluator'."
            )
        cls = BUILTIN_EVALUATORS[name]
        if issubclass(cls, Judge) and completion_model is None:
            raise ValueError(
                f"Metric {name!r} is judged by a model: set completion_model_config in the "
                "experiment."
            )
        if cls is SemanticSimilarity and embedding_model is None:
            raise ValueError(
                f"Metric {name!r} compares embeddings: set embedding_model_config in the "
                "experiment."
            )
        if column_mapping is not None:
            missing = [key for key in cls.required_keys if key not in column_mapping]
            if missing:
                raise ValueError(
                    f"Metric {name!r} needs {', '.join(map(repr, missing))} in its "
                    f"column_mapping (it reads {', '.join(map(repr, cls.required_keys))})."
                )
        instance = cls()
        instance.completion = completion_model
        instance.embedding = embedding_model
        return instance
