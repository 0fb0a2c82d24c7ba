"""PromptLab: a local experiment store for LLM prompts, with a C database core."""

__version__ = "0.2.0"
