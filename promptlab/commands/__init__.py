"""Command groups of the ``promptlab`` CLI; each module exposes ``register(subparsers)``."""
