"""The SQL behind the outbox's retries and ``autohands outbox`` (run through ``Store.run_write`` /
``run_read``).

A reply that fails for a passing reason stays ``pending`` while the hub retries it; each failed
try adds one to ``attempts`` and leaves its error on the row, so ``autohands outbox list
--pending`` says why a reply is late. ``autohands outbox retry`` sets ``failed`` rows back to
``pending`` and names them under the ``state`` key ``RESEND_KEY``: a running hub takes that key
every ``[outbox] resend_check_seconds`` and sends the rows it names; a hub that starts later finds
them among its pending rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from ._rows import utc
from .tables import OUTBOX as _outbox, STATE as _state

RESEND_KEY = "outbox:resend"
"""``state`` key: JSON list of outbox ids an operator set back to pending, not yet taken by a hub."""

_CHUNK = 500
"""Ids per ``IN (…)`` list: well under every database's limit on bound parameters."""

_ERROR_MAX = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxEntry:
    """One outbox row, as ``autohands outbox`` shows it."""

    id: str
    status: str
    """``pending``, ``sent`` or ``failed``."""
    channel: str
    conversation_key: str
    attempts: int
    """Sends tried so far."""
    error: str
    """The last failure (for a failed row: why it was given up)."""
    created_at: datetime
    """When the reply was written (UTC)."""


def _entry(row: Any) -> OutboxEntry:
    return OutboxEntry(
        id=row.id,
        status=row.status,
        channel=row.channel,
        conversation_key=row.conversation_key,
        attempts=row.attempts,
        error=row.error,
        created_at=utc(row.created_at),
    )


_COLUMNS = (
    _outbox.c.id,
    _outbox.c.status,
    _outbox.c.channel,
    _outbox.c.conversation_key,
    _outbox.c.attempts,
    _outbox.c.error,
    _outbox.c.created_at,
)


def list_entries(c: Connection, statuses: Sequence[str], limit: int) -> tuple[list[OutboxEntry], int]:
    """The newest ``limit`` rows in ``statuses``, and how many there are in all."""
    where = _outbox.c.status.in_(statuses)
    total = c.execute(select(func.count()).select_from(_outbox).where(where)).scalar() or 0
    rows = c.execute(select(*_COLUMNS).where(where).order_by(_outbox.c.created_at.desc()).limit(limit)).all()
    return [_entry(r) for r in rows], total


def note_failure(c: Connection, outbound_id: str, error: str) -> None:
    """Count one failed try of a reply that stays pending, and keep its error."""
    c.execute(
        update(_outbox)
        .where(_outbox.c.id == outbound_id, _outbox.c.status == "pending")
        .values(attempts=_outbox.c.attempts + 1, error=error[:_ERROR_MAX])
    )


def resend(c: Connection, ids: Sequence[str] | None) -> tuple[list[OutboxEntry], list[str]]:
    """Set failed rows back to pending: all of ``ids`` (``None``: every failed row) or, if any of
    them is not a failed row, none. Returns the rows set back, and one problem per refused id."""
    if ids is None:
        rows = c.execute(select(*_COLUMNS).where(_outbox.c.status == "failed").order_by(_outbox.c.created_at)).all()
        found = [_entry(r) for r in rows]
    else:
        found = _by_id(c, list(dict.fromkeys(ids)))
        problems = _refusals(ids, found)
        if problems:
            return [], problems
    for start in range(0, len(found), _CHUNK):
        chunk = [e.id for e in found[start : start + _CHUNK]]
        c.execute(update(_outbox).where(_outbox.c.id.in_(chunk), _outbox.c.status == "failed").values(status="pending"))
    _add_resend_request(c, [e.id for e in found])
    return [replace(e, status="pending") for e in found], []


def _by_id(c: Connection, ids: list[str]) -> list[OutboxEntry]:
    found: list[OutboxEntry] = []
    for start in range(0, len(ids), _CHUNK):
        rows = c.execute(select(*_COLUMNS).where(_outbox.c.id.in_(ids[start : start + _CHUNK]))).all()
        found.extend(_entry(r) for r in rows)
    order = {outbound_id: i for i, outbound_id in enumerate(ids)}
    return sorted(found, key=lambda e: order[e.id])


def _refusals(ids: Sequence[str], found: list[OutboxEntry]) -> list[str]:
    by_id = {e.id: e for e in found}
    problems = []
    for outbound_id in dict.fromkeys(ids):
        entry = by_id.get(outbound_id)
        if entry is None:
            problems.append(f"no reply with id {outbound_id!r} in the outbox")
        elif entry.status == "pending":
            problems.append(f"reply {outbound_id} is pending already: the hub sends it as soon as it can")
        elif entry.status != "failed":
            problems.append(f"reply {outbound_id} was {entry.status} already; only failed replies are resent")
    return problems


def _add_resend_request(c: Connection, ids: list[str]) -> None:
    if not ids:
        return
    current = c.execute(select(_state.c.value).where(_state.c.key == RESEND_KEY)).scalar()
    if current is None:
        c.execute(insert(_state).values(key=RESEND_KEY, value=json.dumps(ids)))
        return
    merged = list(dict.fromkeys([*json.loads(current), *ids]))
    c.execute(update(_state).where(_state.c.key == RESEND_KEY).values(value=json.dumps(merged)))


def resend_requested(c: Connection) -> bool:
    """Whether an operator asked for resends since a hub last took them (a cheap read)."""
    return c.execute(select(_state.c.key).where(_state.c.key == RESEND_KEY)).first() is not None


def take_resend_requests(c: Connection) -> list[str]:
    """Take the resend request: the payloads of the rows it names that are still pending, oldest
    first. Read and cleared in one transaction, so a request written meanwhile is never lost."""
    current = c.execute(select(_state.c.value).where(_state.c.key == RESEND_KEY)).scalar()
    if current is None:
        return []
    c.execute(delete(_state).where(_state.c.key == RESEND_KEY))
    ids: list[str] = json.loads(current)
    rows: list[Any] = []
    for start in range(0, len(ids), _CHUNK):
        rows.extend(
            c.execute(
                select(_outbox.c.payload, _outbox.c.created_at).where(
                    _outbox.c.id.in_(ids[start : start + _CHUNK]), _outbox.c.status == "pending"
                )
            ).all()
        )
    return [r.payload for r in sorted(rows, key=lambda r: r.created_at)]
