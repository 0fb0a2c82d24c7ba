"""The one check of a user-given file path (the original's ``Utils.sanitize_path``).

Its own module, importing only ``os``, so that a script opening a tracer with a plain
config dict does not load ``promptlab.types`` (issue 16, start-up).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Union

INVALID_PATH_CHARS = '<>"|?*'


def sanitize_path(value: Union[str, os.PathLike[str]]) -> str:
    """Reject an empty path or one holding any of ``<>"|?*``; return it normalized.

    Same checks as the original ``Utils.sanitize_path`` (ValueError on failure).
    """
    value = os.fspath(value)
    if any(char in value for char in INVALID_PATH_CHARS):
        raise ValueError("Invalid characters in file path")
    if not value:
        raise ValueError("File path cannot be empty")
    if "://" in value:
        return value  # a database URL (sqlite:///path): normpath would eat a slash
    return os.path.normpath(value)
