"""The scheduler's tables and the SQL it runs (through ``Store.run_write`` / ``run_read``).

``jobs`` is the source of truth for scheduled work; APScheduler only times it
(docs/PLATFORMS.md A1, A2). ``fires`` holds one row per (job, due time) that was delivered: its primary
key is what makes a job fire at most once per due time, across restarts and racing timers.
A fire is committed in the same transaction as the ``job`` inbound it produces (same
``messages`` table and codec as ``Store.record_inbound``), so the session manager resumes it
after a crash: a one-shot job killed mid-fire is still delivered exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Index, bindparam, func, insert, inspect, select, text, update
from sqlmodel import Field, SQLModel

from ..messages import ConversationRef, Inbound, Sender, utcnow
from ._rows import _insert_ignore, utc
from .codec import inbound_to_json
from .tables import CONVERSATIONS as _conversations, MESSAGES as _messages

TriggerKind = Literal["date", "interval", "cron"]
Action = Literal["send", "agent"]


class JobRow(SQLModel, table=True):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_active_conv", "active", "conversation_key"),)
    id: str = Field(primary_key=True)
    conversation_key: str
    channel: str
    chat: str
    thread: str | None = None
    creator_id: str = Field(index=True)
    creator_name: str = ""
    timezone: str = "UTC"
    description: str = ""
    action: str = "send"
    text: str = ""
    trigger_kind: str = "date"
    trigger_args: str = "{}"
    next_run_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    last_fired_at: datetime | None = None
    fire_count: int = 0
    active: bool = True
    cancelled_at: datetime | None = None
    cancelled_by: str | None = None
    granted_tools: str = "[]"
    """JSON list of the tools the job may use without asking (approved at creation)."""


class FireRow(SQLModel, table=True):
    """One delivered (job, due time): the primary key blocks a second fire."""

    __tablename__ = "fires"
    job_id: str = Field(primary_key=True)
    due_at: datetime = Field(primary_key=True)
    message_id: int = 0
    fired_at: datetime = Field(default_factory=utcnow)


jobs = SQLModel.metadata.tables["jobs"]
fires = SQLModel.metadata.tables["fires"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """A scheduled job as the rest of the hub sees it."""

    id: str
    conversation: ConversationRef
    creator: Sender
    timezone: str
    description: str
    action: Action
    text: str
    trigger_kind: TriggerKind
    trigger_args: dict[str, Any]
    next_run_at: datetime | None
    created_at: datetime
    last_fired_at: datetime | None = None
    fire_count: int = 0
    active: bool = True
    granted_tools: tuple[str, ...] = ()
    """Tools an agent job may use without asking when it runs (its creator approved them)."""


def _job_from_row(r: Any) -> Job:
    return Job(
        id=r.id,
        conversation=ConversationRef(channel=r.channel, chat=r.chat, thread=r.thread),
        creator=Sender(id=r.creator_id, name=r.creator_name),
        timezone=r.timezone,
        description=r.description,
        action=r.action,
        text=r.text,
        trigger_kind=r.trigger_kind,
        trigger_args=json.loads(r.trigger_args),
        next_run_at=utc(r.next_run_at) if r.next_run_at else None,
        created_at=utc(r.created_at),
        last_fired_at=utc(r.last_fired_at) if r.last_fired_at else None,
        fire_count=r.fire_count,
        active=bool(r.active),
        granted_tools=tuple(json.loads(r.granted_tools or "[]")),
    )


def ensure_tables(conn: Connection) -> None:
    """Create the tables if missing (the store may have been opened before this module loaded),
    and add the columns that later versions brought to a database an earlier one made."""
    for table in (jobs, fires):
        table.create(conn, checkfirst=True)
    present = {c["name"] for c in inspect(conn).get_columns("jobs")}
    if "granted_tools" not in present:
        conn.execute(text("ALTER TABLE jobs ADD COLUMN granted_tools VARCHAR NOT NULL DEFAULT '[]'"))


# ---------------------------------------------------------------------------- writes
def insert_job(conn: Connection, job: Job, *, max_per_user: int) -> Literal["ok", "duplicate", "limit"]:
    """Insert ``job`` unless its creator is at the limit; the count and insert share a transaction."""
    count = (
        conn.execute(
            select(func.count()).select_from(jobs).where(jobs.c.creator_id == job.creator.id, jobs.c.active.is_(True))
        ).scalar()
        or 0
    )
    if count >= max_per_user:
        return "limit"
    if conn.execute(select(jobs.c.id).where(jobs.c.id == job.id)).first() is not None:
        return "duplicate"
    c = job.conversation
    conn.execute(
        insert(jobs).values(
            id=job.id,
            conversation_key=c.key,
            channel=c.channel,
            chat=c.chat,
            thread=c.thread,
            creator_id=job.creator.id,
            creator_name=job.creator.name,
            timezone=job.timezone,
            description=job.description,
            action=job.action,
            text=job.text,
            trigger_kind=job.trigger_kind,
            trigger_args=json.dumps(job.trigger_args),
            next_run_at=job.next_run_at,
            created_at=job.created_at,
            active=True,
            fire_count=0,
            granted_tools=json.dumps(list(job.granted_tools)),
        )
    )
    return "ok"


def deactivate(conn: Connection, job_id: str, *, by: str) -> bool:
    """Mark a job cancelled; False if it was not active."""
    res = conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.active.is_(True))
        .values(active=False, cancelled_at=utcnow(), cancelled_by=by)
    )
    return bool(res.rowcount)


@dataclass(frozen=True, slots=True, kw_only=True)
class FireRequest:
    """Everything one fire writes, computed on the event loop before the transaction."""

    job_id: str
    due_at: datetime
    next_run_at: datetime | None
    message_id: int
    inbound: Inbound
    """The job inbound without its id; ``platform_id`` is ``job:<id>:<due iso>``."""


def record_fires(conn: Connection, reqs: Sequence[FireRequest]) -> dict[int, Inbound]:
    """In one transaction: claim each (job, due time), record its job inbound, advance its job.

    Returns the recorded inbounds (with their ids) by message id. A request is left out when
    its job is gone or cancelled, or its due time already fired (a racing timer, a restart at
    the moment of firing): the ``fires`` key refuses the claim. Statements run once per batch
    (``executemany``): a burst of due jobs costs a handful of statements, not five per job.
    """
    ids = sorted({r.job_id for r in reqs})
    active = set(conn.execute(select(jobs.c.id).where(jobs.c.id.in_(ids), jobs.c.active.is_(True))).scalars())
    candidates = [r for r in reqs if r.job_id in active]
    if not candidates:
        return {}
    now = utcnow()
    conn.execute(
        _insert_ignore(conn, fires, ["job_id", "due_at"]),
        [{"job_id": r.job_id, "due_at": r.due_at, "message_id": r.message_id, "fired_at": now}
         for r in candidates],
    )  # fmt: skip
    # Which claims are ours: message ids are allocated by this store, so they tell us apart.
    mids = [r.message_id for r in candidates]
    claimed = set(conn.execute(select(fires.c.message_id).where(fires.c.message_id.in_(mids))).scalars())
    ours = [r for r in candidates if r.message_id in claimed]
    if not ours:
        return {}
    convs = {r.inbound.conversation.key: r.inbound.conversation for r in ours}
    conn.execute(
        _insert_ignore(conn, _conversations, ["key"]),
        [{"key": k, "channel": c.channel, "chat": c.chat, "thread": c.thread, "settings": "{}",
          "input_tokens": 0, "output_tokens": 0, "created_at": now} for k, c in convs.items()],
    )  # fmt: skip
    conn.execute(
        _insert_ignore(conn, _messages, ["channel", "platform_id"]),
        [{"id": r.message_id, "channel": r.inbound.conversation.channel, "platform_id": r.inbound.platform_id,
          "conversation_key": r.inbound.conversation.key, "kind": "job", "status": "received",
          "payload": inbound_to_json(r.inbound), "attempts": 0, "created_at": now, "updated_at": now}
         for r in ours],
    )  # fmt: skip
    # The (channel, platform_id) key is a second guard: a fire whose inbound exists is not ours.
    present = set(conn.execute(select(_messages.c.id).where(_messages.c.id.in_(mids))).scalars())
    ours = [r for r in ours if r.message_id in present]
    conn.execute(
        update(jobs).where(jobs.c.id == bindparam("b_id")).values(
            next_run_at=bindparam("b_next"), last_fired_at=bindparam("b_due"), active=bindparam("b_active"),
            fire_count=jobs.c.fire_count + bindparam("b_one")),
        [{"b_id": r.job_id, "b_next": r.next_run_at, "b_due": r.due_at, "b_active": r.next_run_at is not None,
          "b_one": 1} for r in ours],
    )  # fmt: skip
    return {r.message_id: replace(r.inbound, id=r.message_id) for r in ours}


# ---------------------------------------------------------------------------- reads
def get_job(conn: Connection, job_id: str) -> Job | None:
    row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
    return _job_from_row(row) if row else None


def list_jobs(conn: Connection, *, conversation_key: str | None = None, active_only: bool = True) -> list[Job]:
    q = select(jobs)
    if conversation_key is not None:
        q = q.where(jobs.c.conversation_key == conversation_key)
    if active_only:
        q = q.where(jobs.c.active.is_(True))
    q = q.order_by(jobs.c.next_run_at, jobs.c.created_at)
    return [_job_from_row(r) for r in conn.execute(q)]


def conversation_setting(conn: Connection, key: str, name: str) -> str | None:
    raw = conn.execute(select(_conversations.c.settings).where(_conversations.c.key == key)).scalar()
    if not raw:
        return None
    value = json.loads(raw).get(name)
    return str(value) if value is not None else None


def count_fires(conn: Connection, job_id: str) -> int:
    """How many times ``job_id`` fired. Only tests use this."""
    return conn.execute(select(func.count()).select_from(fires).where(fires.c.job_id == job_id)).scalar() or 0
