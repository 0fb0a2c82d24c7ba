"""JSON values PromptLab sends or serves: JSON has no NaN or infinities."""

from __future__ import annotations

import math
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None, in nested dicts, lists and
    tuples too (tuples become lists, as JSON has them); as the C core stores them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value
