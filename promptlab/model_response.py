"""``ModelResponse``, what a model returns for one completion: a plain dataclass, as in
the original. Its public name is ``promptlab.types.ModelResponse``; it lives here so
that ``promptlab.types`` imports the dataclasses module only when it is asked for."""

from dataclasses import dataclass


@dataclass
class ModelResponse:
    """What a model returns for one completion (a plain dataclass, as in the original)."""

    response: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int


ModelResponse.__module__ = "promptlab.types"  # its public home (pickle finds it there)
