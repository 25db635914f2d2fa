"""Pairing codes and the users they let in, kept in the store (``hub.pairing`` decides, this
module keeps).

Two backends keep the same ``PairingBackend`` contract: ``SQLPairing`` in the tables
``pairing_codes`` and ``allowed_users`` (``hub.store.tables``) through ``SQLStoreAPI.run_read`` /
``run_write``, so ``autohands pairing`` and ``autohands users`` in another process meet a running
hub in the database; ``MemoryPairing`` in this process (a hub on ``MemoryStore``).

Every change runs in one write transaction: a code is looked up, counted and inserted in the
same one, so two strangers racing for the last free slot cannot both get a code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, delete, insert, select

from ._rows import utc
from .base import SQLStoreAPI
from .tables import ALLOWED_USERS as _users, PAIRING_CODES as _codes

__all__ = [
    "ApprovedUser",
    "CodeRequest",
    "MemoryPairing",
    "PairingBackend",
    "PendingCode",
    "SQLPairing",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingCode:
    """A pairing code waiting for an operator."""

    code: str
    channel: str
    user_id: str
    display_name: str
    """``@username`` or the name the platform showed, for the operator to recognise."""
    created_at: datetime
    expires_at: datetime
    """After this (UTC) the code approves nothing; the user gets a new one when they write."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovedUser:
    """A user a pairing let in (the store's allow list of a channel)."""

    channel: str
    user_id: str
    display_name: str
    approved_by: str
    """Who approved: ``cli`` or ``<channel>:<user id>`` of the admin who used ``/pair``."""
    approved_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeRequest:
    """What a stranger asks for: a code for ``user_id`` on ``channel``, under these limits."""

    channel: str
    user_id: str
    display_name: str
    now: datetime
    ttl: timedelta
    max_pending: int
    """Pending codes a channel may have at once; beyond, new strangers get none."""
    new_code: Callable[[], str]


class PairingBackend(Protocol):
    """Where pairing codes and approved users are kept (``SQLPairing``, ``MemoryPairing``)."""

    async def is_approved(self, channel: str, user_id: str) -> bool: ...

    async def request(self, req: CodeRequest) -> PendingCode | None:
        """The user's unexpired code, else a new one; None when the channel has ``max_pending``
        codes of other users pending."""
        ...

    async def approve(self, code: str, *, by: str, now: datetime) -> ApprovedUser | None:
        """Let the code's user in and drop the code; None if no such code is pending."""
        ...

    async def deny(self, code: str, *, now: datetime) -> PendingCode | None:
        """Drop a pending code; None if there was none."""
        ...

    async def pending(self, channel: str | None, *, now: datetime) -> list[PendingCode]: ...

    async def users(self, channel: str | None) -> list[ApprovedUser]: ...

    async def revoke(self, channel: str, user_id: str) -> bool:
        """Remove a user from the store's allow list; False if they were not on it."""
        ...


# ---------------------------------------------------------------------------- SQL
def _pending(row: Any) -> PendingCode:
    return PendingCode(
        code=row.code,
        channel=row.channel,
        user_id=row.user_id,
        display_name=row.display_name,
        created_at=utc(row.created_at),
        expires_at=utc(row.expires_at),
    )


def _user_of(taken: PendingCode, by: str, now: datetime) -> ApprovedUser:
    """The allowed user an approval of ``taken`` makes (both stores)."""
    return ApprovedUser(
        channel=taken.channel,
        user_id=taken.user_id,
        display_name=taken.display_name,
        approved_by=by,
        approved_at=now,
    )


def _approved(row: Any) -> ApprovedUser:
    return ApprovedUser(
        channel=row.channel,
        user_id=row.user_id,
        display_name=row.display_name,
        approved_by=row.approved_by,
        approved_at=utc(row.approved_at),
    )


def _purge(c: Connection, now: datetime) -> None:
    c.execute(delete(_codes).where(_codes.c.expires_at <= now))


def _request(c: Connection, req: CodeRequest) -> PendingCode | None:
    _purge(c, req.now)
    rows = c.execute(select(_codes).where(_codes.c.channel == req.channel)).all()
    mine = next((r for r in rows if r.user_id == req.user_id), None)
    if mine is not None:
        return _pending(mine)
    if len(rows) >= req.max_pending:
        return None
    code = req.new_code()
    while c.execute(select(_codes.c.code).where(_codes.c.code == code)).first() is not None:
        code = req.new_code()  # a clash is rare (32^8 codes); pick again
    pending = PendingCode(
        code=code,
        channel=req.channel,
        user_id=req.user_id,
        display_name=req.display_name,
        created_at=req.now,
        expires_at=req.now + req.ttl,
    )
    c.execute(insert(_codes).values(**asdict(pending)))
    return pending


def _take_code(c: Connection, code: str, now: datetime) -> PendingCode | None:
    _purge(c, now)
    row = c.execute(select(_codes).where(_codes.c.code == code)).first()
    if row is None:
        return None
    c.execute(delete(_codes).where(_codes.c.code == code))
    return _pending(row)


def _approve(c: Connection, code: str, by: str, now: datetime) -> ApprovedUser | None:
    taken = _take_code(c, code, now)
    if taken is None:
        return None
    user = _user_of(taken, by, now)
    where = (_users.c.channel == user.channel) & (_users.c.user_id == user.user_id)
    c.execute(delete(_users).where(where))  # approved again: the newer approval is kept
    c.execute(insert(_users).values(**asdict(user)))
    return user


def _list_pending(c: Connection, channel: str | None, now: datetime) -> list[PendingCode]:
    query = select(_codes).where(_codes.c.expires_at > now).order_by(_codes.c.created_at)
    if channel is not None:
        query = query.where(_codes.c.channel == channel)
    return [_pending(r) for r in c.execute(query).all()]


def _list_users(c: Connection, channel: str | None) -> list[ApprovedUser]:
    query = select(_users).order_by(_users.c.channel, _users.c.approved_at)
    if channel is not None:
        query = query.where(_users.c.channel == channel)
    return [_approved(r) for r in c.execute(query).all()]


def _is_approved(c: Connection, channel: str, user_id: str) -> bool:
    where = (_users.c.channel == channel) & (_users.c.user_id == user_id)
    return c.execute(select(_users.c.user_id).where(where)).first() is not None


def _revoke(c: Connection, channel: str, user_id: str) -> bool:
    where = (_users.c.channel == channel) & (_users.c.user_id == user_id)
    return bool(c.execute(delete(_users).where(where)).rowcount)


class SQLPairing:
    """``PairingBackend`` in the store's tables: a hub and the CLI beside it share them. The
    check of a sender is a primary-key read, made only for senders config does not let in."""

    def __init__(self, store: SQLStoreAPI) -> None:
        self._store = store

    async def is_approved(self, channel: str, user_id: str) -> bool:
        return await self._store.run_read(lambda c: _is_approved(c, channel, user_id))

    async def request(self, req: CodeRequest) -> PendingCode | None:
        return await self._store.run_write(lambda c: _request(c, req))

    async def approve(self, code: str, *, by: str, now: datetime) -> ApprovedUser | None:
        return await self._store.run_write(lambda c: _approve(c, code, by, now))

    async def deny(self, code: str, *, now: datetime) -> PendingCode | None:
        return await self._store.run_write(lambda c: _take_code(c, code, now))

    async def pending(self, channel: str | None, *, now: datetime) -> list[PendingCode]:
        return await self._store.run_read(lambda c: _list_pending(c, channel, now))

    async def users(self, channel: str | None) -> list[ApprovedUser]:
        return await self._store.run_read(lambda c: _list_users(c, channel))

    async def revoke(self, channel: str, user_id: str) -> bool:
        return await self._store.run_write(lambda c: _revoke(c, channel, user_id))


# ---------------------------------------------------------------------------- memory
class MemoryPairing:
    """``PairingBackend`` in this process (a hub on ``MemoryStore``): gone when it stops."""

    def __init__(self) -> None:
        self._codes: dict[str, PendingCode] = {}
        self._users: dict[tuple[str, str], ApprovedUser] = {}

    def _purge(self, now: datetime) -> None:
        self._codes = {k: p for k, p in self._codes.items() if p.expires_at > now}

    async def is_approved(self, channel: str, user_id: str) -> bool:
        return (channel, user_id) in self._users

    async def request(self, req: CodeRequest) -> PendingCode | None:
        self._purge(req.now)
        mine = [p for p in self._codes.values() if p.channel == req.channel]
        found = next((p for p in mine if p.user_id == req.user_id), None)
        if found is not None:
            return found
        if len(mine) >= req.max_pending:
            return None
        code = req.new_code()
        while code in self._codes:
            code = req.new_code()
        pending = PendingCode(
            code=code,
            channel=req.channel,
            user_id=req.user_id,
            display_name=req.display_name,
            created_at=req.now,
            expires_at=req.now + req.ttl,
        )
        self._codes[code] = pending
        return pending

    async def approve(self, code: str, *, by: str, now: datetime) -> ApprovedUser | None:
        taken = await self.deny(code, now=now)
        if taken is None:
            return None
        user = _user_of(taken, by, now)
        self._users[(user.channel, user.user_id)] = user
        return user

    async def deny(self, code: str, *, now: datetime) -> PendingCode | None:
        self._purge(now)
        return self._codes.pop(code, None)

    async def pending(self, channel: str | None, *, now: datetime) -> list[PendingCode]:
        self._purge(now)
        found = [p for p in self._codes.values() if channel is None or p.channel == channel]
        return sorted(found, key=lambda p: p.created_at)

    async def users(self, channel: str | None) -> list[ApprovedUser]:
        found = [u for u in self._users.values() if channel is None or u.channel == channel]
        return sorted(found, key=lambda u: (u.channel, u.approved_at))

    async def revoke(self, channel: str, user_id: str) -> bool:
        return self._users.pop((channel, user_id), None) is not None


_sql: type[PairingBackend] = SQLPairing
_memory: type[PairingBackend] = MemoryPairing
"""Checked by mypy: both keep to ``PairingBackend``."""
