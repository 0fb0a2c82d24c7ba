"""Enumerations shared across PromptLab (same names and values as PromptLab 0.1.x)."""

from enum import Enum


class TracerType(Enum):
    """Where experiments are recorded."""

    REMOTE = "remote"
    LOCAL = "local"


class AssetType(Enum):
    """The kinds of versioned assets stored in the ``assets`` table."""

    PROMPT_TEMPLATE = "prompt_template"
    DATASET = "dataset"
