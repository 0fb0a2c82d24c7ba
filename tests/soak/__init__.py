"""The soak test of issue 11: see runner.py. ``python -m tests.soak --seconds 600``
from the repository root, or ``pytest -m slow tests/test_soak.py``."""
