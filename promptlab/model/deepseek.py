"""``deepseek/<model>``: the original's import path; the adapter lives in openai_compat."""

from promptlab.model.openai_compat import DeepSeek, DeepSeek_Embedding

deepseek_completion = DeepSeek
deepseek_embedding = DeepSeek_Embedding

__all__ = ["DeepSeek", "DeepSeek_Embedding"]
