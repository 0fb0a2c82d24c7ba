"""``azure_openai/<model>``: the original's import path; the adapter lives in openai_compat."""

from promptlab.model.openai_compat import AzOpenAI, AzOpenAI_Embedding

azure_openai_completion = AzOpenAI
azure_openai_embedding = AzOpenAI_Embedding

__all__ = ["AzOpenAI", "AzOpenAI_Embedding"]
