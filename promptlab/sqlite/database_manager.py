"""The database manager: one instance per process, implemented in C.

``db_manager.initialize_database(path)`` creates the file (and its folders),
applies pending migrations under an exclusive lock, and makes sure the admin user
exists; any number of threads and processes may call it at once.
"""

from promptlab._core import DatabaseManager, db_manager

__all__ = ["DatabaseManager", "db_manager"]
