"""SQL helpers of the store: statement builders, row shapes, value conversion (hot path)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, delete as sa_delete, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError

from ..agent import HistoryItem
from ..errors import StoreError
from ..messages import Inbound, Outbound
from .base import SessionSnapshot
from .codec import outbound_to_json
from .tables import CONVERSATIONS as _conversations, HISTORY as _history

_INBOUND_FIELDS = tuple(f.name for f in fields(Inbound))


def _with_id(inbound: Inbound, mid: int) -> Inbound:
    """``dataclasses.replace(inbound, id=mid)`` without re-running ``__init__`` (hot path)."""
    new = object.__new__(Inbound)
    for name in _INBOUND_FIELDS:
        object.__setattr__(new, name, getattr(inbound, name))
    object.__setattr__(new, "id", mid)
    return new


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _clear_history(key: str) -> Callable[[Connection], Any]:
    return lambda c: c.execute(sa_delete(_history).where(_history.c.conversation_key == key))


def _bp(name: str) -> Any:
    from sqlalchemy import bindparam

    return bindparam(name)


def _insert_ignore(conn: Connection, table: Any, keys: list[str]) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING``: a duplicate shows as ``rowcount == 0``, and the
    group commit the statement runs in (other callers' writes) is not aborted."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as d_insert
    elif dialect == "postgresql":
        # The two dialects' insert() return different classes with the same on_conflict_do_nothing.
        from sqlalchemy.dialects.postgresql import insert as d_insert  # type: ignore[assignment]
    else:  # pragma: no cover - other databases: plain insert, duplicates raise IntegrityError
        return insert(table)
    return d_insert(table).on_conflict_do_nothing(index_elements=keys)


def _history_row(key: str, item: HistoryItem) -> dict[str, Any]:
    return {
        "conversation_key": key,
        "kind": item.kind,
        "data": orjson.dumps(item.data).decode(),
        "created_at": item.created_at,
    }


def _outbox_row(o: Outbound, now: Any) -> tuple[Any, ...]:
    """An outbox row in ``OUTBOX_KEYS`` order."""
    conv = o.conversation
    return (o.id, conv.channel, conv.key, o.inbound_id, outbound_to_json(o), "pending", "", 0, "", now, None)


def load_sessions(c: Connection, keys: list[str]) -> dict[str, SessionSnapshot]:
    hist: dict[str, list[HistoryItem]] = defaultdict(list)
    settings: dict[str, dict[str, str]] = {}
    for chunk_start in range(0, len(keys), 500):
        chunk = keys[chunk_start : chunk_start + 500]
        for r in c.execute(
            select(_history.c.conversation_key, _history.c.kind, _history.c.data, _history.c.created_at)
            .where(_history.c.conversation_key.in_(chunk))
            .order_by(_history.c.id)
        ):
            hist[r.conversation_key].append(
                HistoryItem(kind=r.kind, data=json.loads(r.data), created_at=utc(r.created_at))
            )
        for row in c.execute(
            select(_conversations.c.key, _conversations.c.settings).where(_conversations.c.key.in_(chunk))
        ):
            if row.settings and row.settings != "{}":
                settings[row.key] = json.loads(row.settings)
    return {k: SessionSnapshot(history=hist.get(k, []), settings=settings.get(k, {})) for k in keys}


def utc(dt: datetime) -> datetime:
    """A timestamp read from the database, UTC-aware: everything stored is UTC, and SQLite (and
    columns without a time zone elsewhere) give it back naive."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _sqlite_ts(v: Any) -> Any:
    """SQLAlchemy's SQLite DATETIME storage format (naive UTC), for the hot path's raw executemany."""
    if isinstance(v, datetime):
        if v.tzinfo is not None:
            v = v.astimezone(UTC).replace(tzinfo=None)
        return v.strftime("%Y-%m-%d %H:%M:%S.%f")
    return v


def _as_store_error(exc: BaseException) -> BaseException:
    # The hot statements run on the SQLite DBAPI cursor: its errors come unwrapped.
    if isinstance(exc, IntegrityError | OperationalError | sqlite3.IntegrityError | sqlite3.OperationalError):
        return StoreError(f"database error: {str(exc).splitlines()[0]}")
    return exc
