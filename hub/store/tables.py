"""The store's tables (sqlmodel). Only ``hub/store/`` touches them.

Tables are created when missing, never altered or dropped: one that is no longer declared here
(``audit``, which nothing wrote) stays unused in databases made by earlier versions.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Table, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from ..messages import utcnow


class ConversationRow(SQLModel, table=True):
    __tablename__ = "conversations"
    key: str = Field(primary_key=True)
    channel: str
    chat: str
    thread: str | None = None
    settings: str = "{}"
    input_tokens: int = 0
    output_tokens: int = 0
    created_at: datetime = Field(default_factory=utcnow)


class MessageRow(SQLModel, table=True):
    """Inbound messages: received → processing → answered (or failed)."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "platform_id", name="uq_messages_platform"),
        # Partial: only unfinished rows are indexed, so answered ones cost no index upkeep.
        Index(
            "ix_messages_unfinished",
            "status",
            sqlite_where=text("status IN ('received', 'processing')"),
            postgresql_where=text("status IN ('received', 'processing')"),
        ),
    )
    id: int = Field(primary_key=True)
    channel: str
    platform_id: str
    conversation_key: str
    kind: str
    payload: str = Field(sa_column=Column(Text, nullable=False))
    status: str = "received"
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class OutboxRow(SQLModel, table=True):
    """Outbound messages: pending → sent (with the platform's ids) or failed."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index(
            "ix_outbox_pending",
            "status",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )
    id: str = Field(primary_key=True)
    channel: str
    conversation_key: str
    inbound_id: int = 0
    payload: str = Field(sa_column=Column(Text, nullable=False))
    status: str = "pending"
    platform_ids: str = ""
    attempts: int = 0
    error: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None


class HistoryRow(SQLModel, table=True):
    __tablename__ = "history"
    id: int | None = Field(default=None, primary_key=True)
    conversation_key: str = Field(index=True)
    kind: str
    data: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class UsageRow(SQLModel, table=True):
    __tablename__ = "usage"
    id: int | None = Field(default=None, primary_key=True)
    conversation_key: str = Field(index=True)
    inbound_id: int = 0
    provider: str = ""
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    created_at: datetime = Field(default_factory=utcnow)


class StateRow(SQLModel, table=True):
    """Small durable key/value state for channels and other parts."""

    __tablename__ = "state"
    key: str = Field(primary_key=True)
    value: str


class HubLockRow(SQLModel, table=True):
    """A lease for databases without a lock file (non-SQLite URLs)."""

    __tablename__ = "hub_lock"
    id: int = Field(default=1, primary_key=True)
    owner: str
    pid: int
    host: str
    heartbeat_at: datetime


class PairingCodeRow(SQLModel, table=True):
    """A pairing code given to a stranger who wrote in a direct chat (``hub.pairing``): pending
    until an operator approves or denies it, or until ``expires_at``."""

    __tablename__ = "pairing_codes"
    __table_args__ = (Index("ix_pairing_codes_user", "channel", "user_id"),)
    code: str = Field(primary_key=True)
    channel: str
    user_id: str
    display_name: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class AllowedUserRow(SQLModel, table=True):
    """A user let in by an approved pairing: the channel's allow list kept in the store, beside
    the one in config (``autohands users list | revoke``)."""

    __tablename__ = "allowed_users"
    channel: str = Field(primary_key=True)
    user_id: str = Field(primary_key=True)
    display_name: str = ""
    approved_by: str = ""
    approved_at: datetime = Field(default_factory=utcnow)


class TaskRow(SQLModel, table=True):
    """A task (``hub.tasks``): the fields of ``hub.tasks.Task``; ``hub/store/tasks.py`` reads and
    writes it. ``requested`` is a move asked for beside the running hub (``autohands tasks``),
    which the hub takes and applies."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_owner", "owner_id", "created_at"),
        Index(
            "ix_tasks_unfinished",
            "state",
            sqlite_where=text("state IN ('pending', 'running')"),
            postgresql_where=text("state IN ('pending', 'running')"),
        ),
        Index(
            "ix_tasks_requested",
            "requested",
            sqlite_where=text("requested != ''"),
            postgresql_where=text("requested != ''"),
        ),
    )
    id: str = Field(primary_key=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    conversation_key: str
    owner_id: str
    owner: str = "[]"
    """JSON of the owner ``Sender``."""
    priority: int = 20
    mode: str = "auto"
    state: str = "pending"
    attempts: int = 0
    result: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    checkpoint: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    """JSON of the run's history so far (``[kind, data, created_at]`` per item)."""
    requested: str = ""


# The tables as SQLAlchemy Core sees them, for the store's statements (one place, typed).
MESSAGES: Table = SQLModel.metadata.tables["messages"]
OUTBOX: Table = SQLModel.metadata.tables["outbox"]
HISTORY: Table = SQLModel.metadata.tables["history"]
CONVERSATIONS: Table = SQLModel.metadata.tables["conversations"]
USAGE: Table = SQLModel.metadata.tables["usage"]
STATE: Table = SQLModel.metadata.tables["state"]
HUB_LOCK: Table = SQLModel.metadata.tables["hub_lock"]
PAIRING_CODES: Table = SQLModel.metadata.tables["pairing_codes"]
ALLOWED_USERS: Table = SQLModel.metadata.tables["allowed_users"]
TASKS: Table = SQLModel.metadata.tables["tasks"]
