"""How evaluators call the experiment's models: by duck typing, as PromptLab 0.1.x did.

- A completion model has ``invoke(system_prompt, user_prompt)`` (``promptlab.model``'s
  ``Model`` and the original's custom models) or is itself such a callable; the reply is
  a ``ModelResponse`` (its ``.response`` text), an object with ``.completion`` text, or
  a ``str``.
- An embedding model is a callable from text to a sequence of numbers (``EmbeddingModel``).

A model may return an awaitable (an ``async def invoke``): it is run to completion here,
which works in the worker thread where the runner evaluates a record; inside a running
event loop it is an error, because blocking that loop would stall every other task.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from typing import Any, List


def _resolve(value: Any, what: str) -> Any:
    if not inspect.isawaitable(value):
        return value
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        async def wait() -> Any:
            return await value
        return asyncio.run(wait())
    if inspect.iscoroutine(value):
        value.close()  # never awaited: close it so Python does not warn about it
    raise RuntimeError(
        f"{what} returned an awaitable inside a running event loop: evaluate the record "
        "in a worker thread (asyncio.to_thread), as the experiment runner does."
    )


def reply_text(reply: Any, metric: str) -> str:
    """The text of a completion model's reply."""
    if isinstance(reply, str):
        return reply
    for attribute in ("response", "completion"):
        text = getattr(reply, attribute, None)
        if isinstance(text, str):
            return text
    raise TypeError(
        f"Metric {metric!r}: the completion model returned {type(reply).__name__}, which has "
        "no .response text (expected a promptlab.types.ModelResponse or a str)."
    )


def complete(model: Any, system_prompt: str, user_prompt: str, metric: str) -> str:
    """Ask the completion ``model`` and return its reply's text. Model errors propagate."""
    invoke = getattr(model, "invoke", None)
    if callable(invoke):
        reply = invoke(system_prompt, user_prompt)
    elif callable(model):
        reply = model(system_prompt, user_prompt)
    else:
        raise TypeError(
            f"Metric {metric!r}: the completion model ({type(model).__name__}) has no "
            "invoke(system_prompt, user_prompt) method."
        )
    return reply_text(_resolve(reply, f"Metric {metric!r}: the completion model"), metric)


def embed(model: Any, text: str, metric: str) -> List[float]:
    """The embedding of ``text``: finite floats, at least one."""
    if not callable(model):
        raise TypeError(
            f"Metric {metric!r}: the embedding model ({type(model).__name__}) is not callable."
        )
    vector = _resolve(model(text), f"Metric {metric!r}: the embedding model")
    # Ollama's embed API (and the original's custom-model sample) answers a list
    # holding one vector for one input: the original accepted that, and so do we.
    if isinstance(vector, (list, tuple)) and len(vector) == 1 and \
            isinstance(vector[0], (list, tuple)):
        vector = vector[0]
    try:
        values = [float(x) for x in vector]
    except (TypeError, ValueError):
        raise TypeError(
            f"Metric {metric!r}: the embedding model returned {type(vector).__name__}, "
            "not a sequence of numbers."
        ) from None
    if not values or not all(math.isfinite(x) for x in values):
        raise ValueError(
            f"Metric {metric!r}: the embedding model returned an empty vector or one with "
            "NaN or infinite values."
        )
    return values
