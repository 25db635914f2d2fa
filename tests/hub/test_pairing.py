"""The pairing service (``hub.pairing``) on both stores: codes, their lifetime and limits,
approving, denying and revoking; and ``/pair`` as an admin and as anyone else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub.commands import CommandCall
from hub.messages import ConversationRef, Inbound, Sender
from hub.pairing import CODE_ALPHABET, PairingLimits, PairingService, new_code, normalize_code, pair_command
from hub.store import MemoryStore, Store, StoreAPI
from hub.store.pairing import MemoryPairing, SQLPairing


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(params=["sql", "memory"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreAPI]:
    s: StoreAPI = Store(f"sqlite:///{tmp_path / 'hub.db'}") if request.param == "sql" else MemoryStore()
    await s.start()
    try:
        yield s
    finally:
        await s.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(store: StoreAPI, clock: Clock) -> PairingService:
    backend = SQLPairing(store) if isinstance(store, Store) else MemoryPairing()
    return PairingService(backend, limits=PairingLimits(ttl_seconds=3600, max_pending=3), now=clock)


def test_codes_are_eight_unambiguous_characters() -> None:
    codes = {new_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(c) == 8 and set(c) <= set(CODE_ALPHABET) for c in codes)
    assert not set("0O1I") & set(CODE_ALPHABET)
    assert normalize_code(" abcd-2345 ") == "ABCD2345"


async def test_same_user_gets_the_same_code_while_it_lasts(service: PairingService, clock: Clock) -> None:
    first = await service.request_code("telegram", "42", "@bob")
    assert first is not None
    clock.advance(3599)
    assert await service.request_code("telegram", "42", "@bob") == first
    clock.advance(2)  # expired: a new one
    second = await service.request_code("telegram", "42", "@bob")
    assert second is not None and second != first
    assert await service.approve(first, by="cli") is None  # an expired code approves nothing


async def test_at_most_three_pending_codes_per_channel(service: PairingService, clock: Clock) -> None:
    codes = [await service.request_code("telegram", str(uid), "") for uid in (1, 2, 3)]
    assert None not in codes
    assert await service.request_code("telegram", "4", "") is None  # try later
    assert await service.request_code("telegram", "2", "") == codes[1]  # a pending user still gets theirs
    assert await service.request_code("slack", "U4", "") is not None  # per channel
    await service.deny(codes[0] or "")
    assert await service.request_code("telegram", "4", "") is not None  # a slot came free
    clock.advance(3601)
    assert await service.pending("telegram") == []  # expired codes free their slots
    assert await service.request_code("telegram", "5", "") is not None


async def test_approve_lets_the_user_in_once_and_revoke_takes_them_out(service: PairingService) -> None:
    code = await service.request_code("telegram", "42", "@bob")
    assert code is not None
    assert not await service.is_approved("telegram", "42")
    user = await service.approve(code.lower(), by="cli")  # typed in lower case
    assert user is not None and (user.channel, user.user_id, user.display_name) == ("telegram", "42", "@bob")
    assert user.approved_by == "cli"
    assert await service.is_approved("telegram", "42")
    assert not await service.is_approved("slack", "42")  # per channel
    assert await service.approve(code, by="cli") is None  # used
    assert await service.pending() == []
    assert [u.user_id for u in await service.users("telegram")] == ["42"]
    assert await service.users("slack") == []
    assert await service.revoke("telegram", "42")
    assert not await service.revoke("telegram", "42")
    assert not await service.is_approved("telegram", "42")


async def test_deny_drops_the_code(service: PairingService) -> None:
    code = await service.request_code("discord", "7", "carol")
    assert code is not None
    [pending] = await service.pending("discord")
    assert (pending.code, pending.user_id, pending.display_name) == (code, "7", "carol")
    denied = await service.deny(code)
    assert denied is not None and denied.user_id == "7"
    assert await service.deny(code) is None
    assert await service.approve(code, by="cli") is None
    assert not await service.is_approved("discord", "7")


async def test_a_code_clash_picks_another(store: StoreAPI, clock: Clock) -> None:
    backend = SQLPairing(store) if isinstance(store, Store) else MemoryPairing()
    picks = iter(["AAAAAAAA", "AAAAAAAA", "BBBBBBBB"])
    service = PairingService(backend, now=clock, codes=lambda: next(picks))
    assert await service.request_code("t", "1", "") == "AAAAAAAA"
    assert await service.request_code("t", "2", "") == "BBBBBBBB"


async def test_sql_approval_is_seen_by_another_store_on_the_same_database(tmp_path: Path) -> None:
    """The CLI's store beside the hub's: the database is the meeting point."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    async with Store(url) as hub_store, Store(url, lock=False) as cli_store:
        hub_side = PairingService(SQLPairing(hub_store))
        cli_side = PairingService(SQLPairing(cli_store))
        code = await hub_side.request_code("telegram", "42", "@bob")
        assert code is not None and [p.code for p in await cli_side.pending()] == [code]
        assert await cli_side.approve(code, by="cli") is not None
        assert await hub_side.is_approved("telegram", "42")
        assert await cli_side.revoke("telegram", "42")
        assert not await hub_side.is_approved("telegram", "42")


# ---------------------------------------------------------------------- /pair
class NoSession:
    settings: dict[str, str] = {}  # noqa: RUF012 - read only

    async def set_setting(self, key: str, value: str | None) -> None: ...
    async def reset(self) -> None: ...
    def stop_run(self) -> bool:
        return False

    def status(self) -> str:
        return ""


def pair_call(args: str, *, admin: bool, channel: str = "telegram") -> CommandCall:
    sender = Sender(id="1001", name="Alice", is_admin=admin)
    inbound = Inbound(
        kind="command",
        conversation=ConversationRef(channel=channel, chat="1001"),
        sender=sender,
        text=args,
        command="pair",
    )
    return CommandCall(inbound=inbound, args=args, session=NoSession(), is_admin=admin)


async def test_pair_command_for_admins_only(service: PairingService) -> None:
    pair = pair_command(service).handler
    code = await service.request_code("telegram", "42", "@bob")
    assert code is not None
    refused = await pair(pair_call(f"approve {code}", admin=False))
    assert refused is not None and "only an admin" in refused
    assert not await service.is_approved("telegram", "42")
    listing = await pair(pair_call("list", admin=True))
    assert listing is not None and code in listing and "@bob (id 42)" in listing
    other = await pair(pair_call(f"approve {code}", admin=True, channel="slack"))
    assert other is not None and "No pending code" in other  # another channel's admin
    approved = await pair(pair_call(f"approve {code.lower()}", admin=True))
    assert approved == "Approved @bob (id 42): their next message will be answered."
    [user] = await service.users("telegram")
    assert user.approved_by == "telegram:1001"
    assert await pair(pair_call("approve", admin=True)) == "Usage: /pair list | /pair approve CODE | /pair deny CODE"


async def test_pair_deny(service: PairingService) -> None:
    pair = pair_command(service).handler
    code = await service.request_code("telegram", "42", "")
    assert code is not None
    assert await pair(pair_call(f"deny {code}", admin=True)) == f"Denied code {code} of id 42."
    assert await pair(pair_call("", admin=True)) == "No pairing codes are pending."
