"""What the ``postgres`` memory backend's two halves share: the ``memories`` columns, the scope
filter, rows as ``Memory`` and database errors in one line (``hub/memory/postgres.py``, the
backend and its full text; ``hub/memory/_postgres_vectors.py``, its vectors)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Row
from sqlalchemy.exc import DBAPIError

from hub.memory.base import Memory, Scope

if TYPE_CHECKING:  # needs greenlet (the postgres extra)
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["COLUMNS", "IN_SCOPES", "Begin", "first_line", "memory_from_row", "scope_params"]

Begin = Callable[[], "AbstractAsyncContextManager[AsyncConnection]"]
"""Opens one transaction (``PostgresMemory._begin``: tables made on first use, errors as ``StoreError``)."""

COLUMNS = "m.id, m.scope_kind, m.scope_key, m.text, m.created_at, m.source, m.metadata"
"""A ``Memory``'s columns of ``memories m``, as ``memory_from_row`` reads them."""
IN_SCOPES = "(m.scope_kind, m.scope_key) IN (SELECT * FROM unnest(CAST(:kinds AS text[]), CAST(:keys AS text[])))"
"""The condition that ``memories m`` is in the scopes of ``scope_params``."""


def scope_params(scopes: Sequence[Scope]) -> dict[str, object]:
    """``IN_SCOPES``' parameters for ``scopes``."""
    unique = list(dict.fromkeys(scopes))
    return {"kinds": [scope.kind for scope in unique], "keys": [scope.key for scope in unique]}


def memory_from_row(row: Row[tuple[object, ...]]) -> Memory:
    """The ``Memory`` of a row holding ``COLUMNS``."""
    values = row._mapping
    created: datetime = values["created_at"]
    return Memory(
        id=str(values["id"]),
        scope=Scope(values["scope_kind"], str(values["scope_key"])),
        text=str(values["text"]),
        created_at=created.astimezone(UTC),
        source=str(values["source"]),
        metadata={str(k): str(v) for k, v in dict(values["metadata"]).items()},
    )


def first_line(exc: DBAPIError) -> str:
    """The database's own error, its first line."""
    # str(exc) would add the statement and its parameters: memory text stays out of errors.
    lines = str(exc.orig).strip().splitlines()
    return lines[0] if lines else type(exc.orig).__name__
