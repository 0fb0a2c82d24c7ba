"""``openrouter/<model>``: the original's import path; the adapter lives in openai_compat."""

from promptlab.model.openai_compat import OpenRouter, OpenRouter_Embedding

openrouter_completion = OpenRouter
openrouter_embedding = OpenRouter_Embedding

__all__ = ["OpenRouter", "OpenRouter_Embedding"]
