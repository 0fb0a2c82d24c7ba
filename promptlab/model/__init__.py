"""Models: the ``Model`` / ``EmbeddingModel`` bases and the built-in adapters.

Adapters are chosen by the prefix of ``ModelConfig.name`` (``ollama/llama3.2``,
``openai/gpt-4o``, ...) through ``promptlab.model.model_factory.ModelFactory``.
"""
