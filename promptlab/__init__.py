"""PromptLab: versioned prompt templates and datasets, experiments with evaluations,
and a studio, in one SQLite file with a C core.

``from promptlab import PromptLab`` and ``from promptlab import Model`` work as in the
original; both load on first use, so ``import promptlab`` alone stays cheap.
"""

from __future__ import annotations  # annotations stay text: no typing import at start-up

__version__ = "0.2.0"

__all__ = ["PromptLab", "Model", "__version__"]

# What __getattr__ returns, for type checkers (without it they see ``object``); a
# constant rather than typing.TYPE_CHECKING, which would import typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from promptlab.core import PromptLab
    from promptlab.model.model import Model


def __getattr__(name: str) -> object:
    if name == "PromptLab":
        from promptlab.core import PromptLab

        return PromptLab
    if name == "Model":
        from promptlab.model.model import Model

        return Model
    raise AttributeError(f"module 'promptlab' has no attribute {name!r}")
