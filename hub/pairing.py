"""First contact by pairing: a stranger gets a code, an operator approves it, the user is in.

A stranger who writes to a bot in a direct chat (``dm_policy = "pairing"``, the default of every
channel's ``AccessConfig``) is given a short code and told to ask the person who runs the bot to
approve it. The operator approves with ``autohands pairing approve CODE`` (``hub.cli_pairing``;
it works beside a running hub: the database is the meeting point) or, as an admin of that
channel, with ``/pair approve CODE`` in any chat. Approval adds the user to the channel's allow
list kept in the store (``autohands users list | revoke``), beside the one in config.

Limits: a code lasts ``ttl_seconds``; the same user writing again while it lasts gets the same
code; a channel has at most ``max_pending`` codes pending, so a crowd of strangers cannot fill
the operator's list (later ones are told to try later). Codes use an alphabet without the
look-alikes ``0 O 1 I`` and are read case-insensitively.

The hub owns this service and ``/pair``; channels reach it as ``hub.channel.Pairing`` through
their ``ChannelContext``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from .commands import Command, CommandCall
from .durations import human_duration
from .messages import utcnow
from .store.base import StoreAPI, has_sql
from .store.pairing import ApprovedUser, CodeRequest, MemoryPairing, PairingBackend, PendingCode, SQLPairing

__all__ = [
    "CODE_ALPHABET",
    "ApprovedUser",
    "PairingLimits",
    "PairingService",
    "PendingCode",
    "describe_pending",
    "describe_user",
    "normalize_code",
    "pair_command",
    "pairing_for",
]

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
"""Upper-case letters and digits without ``0 O 1 I``, which people misread when copying."""
CODE_LENGTH = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class PairingLimits:
    ttl_seconds: float = 3600.0
    """How long a code can be approved."""
    max_pending: int = 3
    """Codes a channel may have pending at once."""


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(text: str) -> str:
    """A code as typed (``abcd-2345``, `` ABCD 2345 ``) → as stored (``ABCD2345``)."""
    return "".join(ch for ch in text.upper() if ch not in " -_")


class PairingService:
    """The pairing codes and the store's allow lists of every channel (``hub.channel.Pairing``
    for channels; the CLI and ``/pair`` for operators).

    Args:
        backend: where codes and users are kept (``pairing_for`` picks the store's).
        limits: code lifetime and pending codes per channel.
        now: UTC clock (injectable for tests).
        codes: makes a fresh code (injectable for tests).
    """

    def __init__(
        self,
        backend: PairingBackend,
        *,
        limits: PairingLimits | None = None,
        now: Callable[[], datetime] = utcnow,
        codes: Callable[[], str] = new_code,
    ) -> None:
        self._backend = backend
        self.limits = limits or PairingLimits()
        self._now = now
        self._codes = codes

    async def is_approved(self, channel: str, user_id: str) -> bool:
        return await self._backend.is_approved(channel, user_id)

    async def request_code(self, channel: str, user_id: str, display_name: str) -> str | None:
        pending = await self._backend.request(
            CodeRequest(
                channel=channel,
                user_id=user_id,
                display_name=display_name,
                now=self._now(),
                ttl=timedelta(seconds=self.limits.ttl_seconds),
                max_pending=self.limits.max_pending,
                new_code=self._codes,
            )
        )
        return pending.code if pending is not None else None

    async def approve(self, code: str, *, by: str) -> ApprovedUser | None:
        """Let the code's user in; None if no such code is pending (unknown, used or expired)."""
        return await self._backend.approve(normalize_code(code), by=by, now=self._now())

    async def deny(self, code: str) -> PendingCode | None:
        return await self._backend.deny(normalize_code(code), now=self._now())

    async def find(self, code: str) -> PendingCode | None:
        """The pending code ``code``, if any."""
        wanted = normalize_code(code)
        return next((p for p in await self.pending() if p.code == wanted), None)

    async def pending(self, channel: str | None = None) -> list[PendingCode]:
        return await self._backend.pending(channel, now=self._now())

    async def users(self, channel: str | None = None) -> list[ApprovedUser]:
        return await self._backend.users(channel)

    async def revoke(self, channel: str, user_id: str) -> bool:
        return await self._backend.revoke(channel, user_id)

    def now(self) -> datetime:
        return self._now()


def pairing_for(store: StoreAPI, limits: PairingLimits | None = None) -> PairingService:
    """The service on ``store``'s tables (shared with the CLI), or in memory on a store without
    SQL (``MemoryStore``: nothing outlives the process, so nobody else could approve anyway)."""
    backend: PairingBackend = SQLPairing(store) if has_sql(store) else MemoryPairing()
    return PairingService(backend, limits=limits)


def _who(name: str, user_id: str) -> str:
    return f"{name} (id {user_id})" if name and name != user_id else f"id {user_id}"


def describe_pending(p: PendingCode, now: datetime) -> str:
    """One line: code, channel, who, time left."""
    left = human_duration(max(0.0, (p.expires_at - now).total_seconds()))
    return f"{p.code}  {p.channel}  {_who(p.display_name, p.user_id)}  expires in {left}"


def describe_user(u: ApprovedUser) -> str:
    """One line: channel, user id, name, who approved and when."""
    when = u.approved_at.strftime("%Y-%m-%d %H:%M UTC")
    return f"{u.channel}  {u.user_id}  {u.display_name or '-'}  approved by {u.approved_by} at {when}"


_PAIR_USAGE = "Usage: /pair list | /pair approve CODE | /pair deny CODE"


def pair_command(service: PairingService) -> Command:
    """``/pair``: an admin of a channel lists, approves or denies that channel's pairing codes
    (in any chat of it; codes of other channels are for their own admins or the CLI)."""

    async def pair(call: CommandCall) -> str:
        if not call.is_admin:
            return "Sorry: only an admin of this bot can use /pair."
        action, _, rest = call.args.strip().partition(" ")
        channel = call.inbound.conversation.channel
        action = action.lower() or "list"
        if action == "list":
            pending = await service.pending(channel)
            if not pending:
                return "No pairing codes are pending."
            now = service.now()
            return "Pending pairing codes:\n" + "\n".join(describe_pending(p, now) for p in pending)
        if action not in ("approve", "deny") or not normalize_code(rest):
            return _PAIR_USAGE
        found = await service.find(rest)
        if found is None or found.channel != channel:
            last = human_duration(service.limits.ttl_seconds)
            return f"No pending code {normalize_code(rest)} here (codes last {last}; /pair list shows them)."
        if action == "deny":
            await service.deny(found.code)
            return f"Denied code {found.code} of {_who(found.display_name, found.user_id)}."
        sender = call.inbound.sender
        user = await service.approve(found.code, by=f"{channel}:{sender.id}")
        if user is None:
            return f"Code {found.code} is no longer pending."
        return f"Approved {_who(user.display_name, user.user_id)}: their next message will be answered."

    return Command(name="pair", description="approve a pairing code (admins)", handler=pair, usage="approve CODE")
