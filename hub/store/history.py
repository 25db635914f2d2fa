"""The reads behind ``autohands sessions``: conversations and what was said in them.

Read-only, run through ``Store.run_read`` beside a running hub (no lock taken, nothing written).
A conversation's history is what its agent remembers (cleared by ``/new``, rewritten by
compaction); its transcript is the messages it received and the replies it wrote, kept
whatever ``/new`` did, but without tool calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, desc, func, select

from ._rows import utc
from .codec import inbound_from_json, outbound_from_json
from .tables import CONVERSATIONS as _conversations, HISTORY as _history, MESSAGES as _messages, OUTBOX as _outbox


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationSummary:
    """One conversation, as ``autohands sessions list`` shows it."""

    key: str
    channel: str
    messages: int
    """Inbound messages recorded (commands, button taps and job fires included)."""
    input_tokens: int
    output_tokens: int
    started_at: datetime
    """When its first message was recorded (UTC)."""
    last_activity: datetime
    """When its latest message was received or finished (UTC)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEntry:
    """One item of a conversation's history, in its agent's own vocabulary (``kind``, ``data``)."""

    kind: str
    data: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptEntry:
    """A message received (``from_user``) or a reply written, as the platform got it."""

    from_user: bool
    who: str
    """The sender's name (or id) for a message; ``""`` for a reply."""
    text: str
    at: datetime
    status: str
    """The message's (``answered`` …) or the reply's (``sent``, ``pending``, ``failed``)."""


def _activity() -> Any:
    """Per conversation: its message count and latest activity (a subquery to join on)."""
    m = _messages.c
    return (
        select(m.conversation_key, func.count().label("n"), func.max(m.updated_at).label("last"))
        .group_by(m.conversation_key)
        .subquery()
    )


def _summaries(c: Connection, *, channel: str | None, key: str | None, limit: int) -> list[ConversationSummary]:
    conv, act = _conversations.c, _activity()
    last = func.coalesce(act.c.last, conv.created_at).label("last_activity")
    query = select(
        conv.key,
        conv.channel,
        conv.input_tokens,
        conv.output_tokens,
        conv.created_at,
        func.coalesce(act.c.n, 0).label("n"),
        last,
    ).select_from(_conversations.outerjoin(act, act.c.conversation_key == conv.key))
    if channel is not None:
        query = query.where(conv.channel == channel)
    if key is not None:
        query = query.where(conv.key == key)
    rows = c.execute(query.order_by(desc("last_activity"), conv.key).limit(limit)).all()
    return [
        ConversationSummary(
            key=r.key,
            channel=r.channel,
            messages=r.n,
            input_tokens=r.input_tokens,
            output_tokens=r.output_tokens,
            started_at=utc(r.created_at),
            last_activity=utc(r.last_activity),
        )
        for r in rows
    ]


def list_conversations(c: Connection, *, channel: str | None, limit: int) -> tuple[list[ConversationSummary], int]:
    """The ``limit`` most recently active conversations (of ``channel``, if given), newest
    first, and how many there are in all."""
    total_q = select(func.count()).select_from(_conversations)
    if channel is not None:
        total_q = total_q.where(_conversations.c.channel == channel)
    total = c.execute(total_q).scalar() or 0
    return _summaries(c, channel=channel, key=None, limit=limit), total


def conversation(c: Connection, key: str) -> ConversationSummary | None:
    found = _summaries(c, channel=None, key=key, limit=1)
    return found[0] if found else None


def history(c: Connection, key: str, limit: int) -> tuple[list[HistoryEntry], int]:
    """The newest ``limit`` history items of ``key``, oldest first, and how many it has."""
    h = _history.c
    total = c.execute(select(func.count()).select_from(_history).where(h.conversation_key == key)).scalar() or 0
    rows = c.execute(
        select(h.kind, h.data, h.created_at).where(h.conversation_key == key).order_by(h.id.desc()).limit(limit)
    ).all()
    return [
        HistoryEntry(kind=r.kind, data=json.loads(r.data), created_at=utc(r.created_at)) for r in reversed(rows)
    ], total


def transcript(c: Connection, key: str, limit: int) -> list[TranscriptEntry]:
    """The newest ``limit`` messages and replies of ``key``, oldest first."""
    m, o = _messages.c, _outbox.c
    received = c.execute(
        select(m.payload, m.status, m.created_at).where(m.conversation_key == key).order_by(m.id.desc()).limit(limit)
    ).all()
    replies = c.execute(
        select(o.payload, o.status, o.created_at)
        .where(o.conversation_key == key)
        .order_by(o.created_at.desc())
        .limit(limit)
    ).all()
    entries = [_said(r.payload, r.status, r.created_at) for r in received]
    entries += [_replied(r.payload, r.status, r.created_at) for r in replies]
    return sorted(entries, key=lambda e: e.at)[-limit:]


def _said(payload: str, status: str, at: datetime) -> TranscriptEntry:
    inbound = inbound_from_json(payload)
    text = inbound.text
    if inbound.kind == "command" and inbound.command:
        text = f"/{inbound.command} {text}".rstrip()
    elif inbound.kind == "button":
        text = f"[tapped {inbound.button}]"
    elif inbound.kind == "job" and inbound.job is not None:
        text = f"[scheduled job {inbound.job.description or inbound.job.job_id}] {text}".rstrip()
    who = inbound.sender.name or inbound.sender.id
    return TranscriptEntry(from_user=True, who=who, text=text, at=utc(at), status=status)


def _replied(payload: str, status: str, at: datetime) -> TranscriptEntry:
    return TranscriptEntry(from_user=False, who="", text=outbound_from_json(payload).text, at=utc(at), status=status)
