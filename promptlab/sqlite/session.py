"""Module-level session functions, kept from the original PromptLab API."""

from __future__ import annotations

from promptlab._core import Session, db_manager

# Annotations only (they stay text): typing is not imported at start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import os
    from typing import Optional, Union

__all__ = ["Session", "get_session", "init_engine", "is_initialized", "reset_initialization"]

_URL_PREFIX = "sqlite:///"


def init_engine(db_url: Union[str, "os.PathLike[str]"]) -> None:
    """Initialize the database named by ``"sqlite:///path"`` or by a plain path."""
    if isinstance(db_url, str) and db_url.startswith(_URL_PREFIX):
        db_url = db_url[len(_URL_PREFIX):]
    db_manager.initialize_database(db_url)


def get_session(db_file: Optional[Union[str, "os.PathLike[str]"]] = None) -> Session:
    """A new session on the default database, or on ``db_file``.

    Raises RuntimeError before any database was initialized (when db_file is None).
    """
    return db_manager.get_session(db_file)


def is_initialized() -> bool:
    """True once a default database is ready."""
    return db_manager.is_initialized()


def reset_initialization() -> None:
    """Forget every database; the next initialization checks its file again (for tests)."""
    db_manager.reset_initialization()
