"""Read-only queries behind the dashboard and ``/metrics``: conversation search, token usage
per run, outbox counts. Run through ``SQLStoreAPI.run_read``; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, desc, func, or_, select

from ._rows import utc
from .codec import inbound_from_json
from .history import ConversationSummary
from .tables import CONVERSATIONS as _conversations, MESSAGES as _messages, OUTBOX as _outbox, USAGE as _usage

__all__ = ["UsageRun", "outbox_counts", "search_conversations", "usage_runs"]

_CHUNK = 500
"""Ids per ``IN (…)`` list (SQLite allows 32,766 parameters; smaller lists stay quick)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageRun:
    """The tokens one run (one inbound) used with one model."""

    conversation_key: str
    inbound_id: int
    user_id: str
    """The id of the sender of the message the run answered (``""`` if that row is gone)."""
    user_name: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    at: datetime
    """When the run finished (UTC)."""


def usage_runs(c: Connection, *, since: datetime) -> list[UsageRun]:
    """Token usage per run and model since ``since``, newest first, each with its sender."""
    u = _usage.c
    rows = c.execute(
        select(
            u.conversation_key,
            u.inbound_id,
            u.provider,
            u.model,
            func.sum(u.input_tokens).label("i"),
            func.sum(u.output_tokens).label("o"),
            func.sum(u.cache_read_tokens).label("cr"),
            func.sum(u.cache_write_tokens).label("cw"),
            func.max(u.created_at).label("at"),
        )
        .where(u.created_at >= since)
        .group_by(u.conversation_key, u.inbound_id, u.provider, u.model)
        .order_by(desc("at"))
    ).all()
    senders = _senders(c, sorted({r.inbound_id for r in rows if r.inbound_id}))
    return [
        UsageRun(
            conversation_key=r.conversation_key,
            inbound_id=r.inbound_id,
            user_id=senders.get(r.inbound_id, ("", ""))[0],
            user_name=senders.get(r.inbound_id, ("", ""))[1],
            provider=r.provider,
            model=r.model,
            input_tokens=int(r.i or 0),
            output_tokens=int(r.o or 0),
            cache_read_tokens=int(r.cr or 0),
            cache_write_tokens=int(r.cw or 0),
            at=utc(r.at),
        )
        for r in rows
    ]


def _senders(c: Connection, ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """Sender (id, name) of each inbound in ``ids``, from its recorded payload."""
    m = _messages.c
    found: dict[int, tuple[str, str]] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        for r in c.execute(select(m.id, m.payload).where(m.id.in_(chunk))):
            sender = inbound_from_json(r.payload).sender
            found[r.id] = (sender.id, sender.name or sender.username or "")
    return found


def search_conversations(c: Connection, text: str, *, channel: str | None, limit: int) -> list[ConversationSummary]:
    """Conversations whose key, or a message or reply in them, contains ``text`` (case-blind
    for ASCII), most recently active first."""
    needle = text.lower()
    m, o, conv = _messages.c, _outbox.c, _conversations.c
    in_messages = select(m.conversation_key).where(func.lower(m.payload).contains(needle, autoescape=True))
    in_replies = select(o.conversation_key).where(func.lower(o.payload).contains(needle, autoescape=True))
    query = select(conv.key).where(
        or_(
            func.lower(conv.key).contains(needle, autoescape=True),
            conv.key.in_(in_messages),
            conv.key.in_(in_replies),
        )
    )
    if channel is not None:
        query = query.where(conv.channel == channel)
    keys = [r.key for r in c.execute(query)]
    summaries = [s for k in keys[: limit * 4] if (s := _summary(c, k)) is not None]
    return sorted(summaries, key=lambda s: s.last_activity, reverse=True)[:limit]


def _summary(c: Connection, key: str) -> ConversationSummary | None:
    """One conversation's summary, reading only its own rows (``history.conversation`` groups
    every conversation's messages, too slow to repeat per search hit)."""
    conv, m = _conversations.c, _messages.c
    row = c.execute(
        select(conv.key, conv.channel, conv.input_tokens, conv.output_tokens, conv.created_at).where(conv.key == key)
    ).first()
    if row is None:
        return None
    n, last = c.execute(select(func.count(), func.max(m.updated_at)).where(m.conversation_key == key)).one()
    return ConversationSummary(
        key=row.key,
        channel=row.channel,
        messages=int(n or 0),
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        started_at=utc(row.created_at),
        last_activity=utc(last or row.created_at),
    )


def outbox_counts(c: Connection) -> dict[str, int]:
    """Outbox rows per status (``pending``, ``sent``, ``failed``)."""
    o = _outbox.c
    return {r.status: int(r.n) for r in c.execute(select(o.status, func.count().label("n")).group_by(o.status))}
