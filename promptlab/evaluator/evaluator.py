"""The ``Evaluator`` base class: one metric computed on one record.

A custom metric is a subclass with an ``evaluate(self, data: dict)`` method, as in
PromptLab 0.1.x::

    class LengthEvaluator(Evaluator):
        def evaluate(self, data: dict):
            return len(str(data["response"]))

``data`` maps the keys of the metric's ``column_mapping`` to values: the completion
for ``"$completion"``, otherwise the named column of the dataset record. Before it is
used, ``EvaluatorFactory.get_evaluator`` gives the evaluator the experiment's models as
``self.completion`` (``invoke(system_prompt, user_prompt)`` returning an object with
``.response``) and ``self.embedding`` (a callable from text to a list of floats). The
value returned is stored as the record's result for the metric; numbers and booleans
are averaged by the studio, other values are shown but not averaged.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Dict, Tuple


class Evaluator(ABC):
    """Base of every metric, built-in or custom."""

    # Class-level defaults, so that a subclass with its own __init__ that does not
    # call super().__init__() still has the attributes.
    completion: Any = None
    embedding: Any = None

    #: The keys ``evaluate`` reads from ``data`` (built-in metrics declare them so that a
    #: missing column mapping is reported before the run; custom ones may leave it empty).
    required_keys: ClassVar[Tuple[str, ...]] = ()

    @abstractmethod
    def evaluate(self, data: Dict[str, Any]) -> Any:
        """The metric's value for one record."""


def require(metric: str, data: Dict[str, Any], key: str) -> str:
    """``data[key]`` as text (None as ""); ValueError naming the metric when it is missing.

    Dataset values may be numbers (a reference answer ``42``): they are compared as text.
    """
    try:
        value = data[key]
    except KeyError:
        raise ValueError(
            f"Metric {metric!r} needs {key!r} in its data: add {key!r} to its column_mapping."
        ) from None
    except TypeError:
        raise TypeError(
            f"Metric {metric!r}: data must be a dict, not {type(data).__name__}.") from None
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)
