"""The hub's store: the source of truth for everything that must survive a restart.

``StoreAPI`` (``base``) is what the rest of the hub is typed against; ``Store`` (``sql``) keeps
it in any SQLAlchemy database (SQLite in WAL mode by default), ``MemoryStore`` (``memory``) in
this process alone. Only this package writes SQL: ``tables`` and ``jobs`` declare the tables,
``outbox`` and ``jobs`` hold the SQL that ``autohands outbox``, the outbox and the scheduler run
through ``SQLStoreAPI.run_read`` / ``run_write``, ``pairing`` the pairing codes and allowed users,
``history`` the read-only queries of ``autohands sessions`` and the dashboard, and ``codec``
turns the bus envelopes into JSON.
"""

from .base import ScopedState, SessionSnapshot, SQLStoreAPI, StoreAPI, WriteStats, has_sql
from .memory import MemoryStore
from .sql import Store

__all__ = [
    "MemoryStore",
    "SQLStoreAPI",
    "ScopedState",
    "SessionSnapshot",
    "Store",
    "StoreAPI",
    "WriteStats",
    "has_sql",
]
