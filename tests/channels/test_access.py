"""AccessConfig / AccessPolicy: secure default, pairing, allow lists, throttles, log lines,
group policy, and the channels' config warnings (``hub.extensions.Advising``)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import ConfigDict, ValidationError

from channels.access import PAIRING_FULL_TEXT, REFUSAL_INTERVAL, AccessConfig, AccessPolicy, Verdict
from channels.discord import DiscordChannel
from channels.slack import SlackChannel
from channels.telegram import TelegramChannel
from hub.extensions import Advising
from hub.messages import Sender
from hub.pairing import PairingLimits, PairingService
from hub.store.pairing import MemoryPairing


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TelegramLikeConfig(AccessConfig):
    """Adapters subclass the mixin for their own config."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    token: str = "x"


ALICE = Sender(id="111", name="Alice", username="Alice_W")
BOB = Sender(id="222", name="Bob", username="bob")
EVE = Sender(id="666", name="Eve", username="eve")
ALLOW = Verdict(True)
IGNORE = Verdict(False)


def pairing_service(max_pending: int = 3) -> PairingService:
    return PairingService(MemoryPairing(), limits=PairingLimits(max_pending=max_pending))


def code_in(verdict: Verdict) -> str:
    assert verdict.reply is not None and not verdict.allowed
    return verdict.reply.split("approve code ")[1].split(" ")[0]


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# ---------------------------------------------------------------------- the default: pairing
async def test_a_stranger_in_a_direct_chat_gets_a_pairing_code_once_per_interval() -> None:
    clock, pairing = FakeClock(), pairing_service()
    policy = AccessPolicy(AccessConfig(allow_users=["bob"]), channel="telegram", pairing=pairing, clock=clock)
    first = await policy.check(EVE, "666", direct=True)
    code = code_in(first)
    assert first.reply == (
        f"Hi! I'm a private assistant. To talk with me, ask the person who runs this bot to approve code {code} "
        f"(autohands pairing approve {code}). Your id is 666."
    )
    assert await policy.check(EVE, "666", direct=True) == IGNORE  # one answer per interval
    clock.now += REFUSAL_INTERVAL + 1
    assert code_in(await policy.check(EVE, "666", direct=True)) == code  # the same code while it lasts
    assert [p.user_id for p in await pairing.pending("telegram")] == ["666"]


async def test_no_code_in_groups_and_none_for_bots() -> None:
    pairing = pairing_service()
    policy = AccessPolicy(AccessConfig(), channel="telegram", pairing=pairing)
    assert await policy.check(EVE, "-100", direct=False) == IGNORE
    assert await policy.check(Sender(id="5", is_bot=True), "5", direct=True) == IGNORE
    assert await pairing.pending() == []


async def test_beyond_the_pending_limit_strangers_are_told_to_try_later() -> None:
    policy = AccessPolicy(AccessConfig(), channel="telegram", pairing=pairing_service(max_pending=1))
    code_in(await policy.check(EVE, "666", direct=True))
    assert await policy.check(BOB, "222", direct=True) == Verdict(False, PAIRING_FULL_TEXT)


async def test_an_approved_user_is_let_in_everywhere_until_revoked() -> None:
    clock, pairing = FakeClock(), pairing_service()
    policy = AccessPolicy(AccessConfig(), channel="telegram", pairing=pairing, clock=clock)
    code = code_in(await policy.check(EVE, "666", direct=True))
    assert await pairing.approve(code, by="cli") is not None
    assert await policy.check(EVE, "666", direct=True) == ALLOW
    assert await policy.check(EVE, "-100", direct=False) == ALLOW  # on the channel's allow list
    other = AccessPolicy(AccessConfig(), channel="slack", pairing=pairing)
    assert await other.check(EVE, "-100", direct=False) == IGNORE  # per channel
    assert await pairing.revoke("telegram", "666")
    assert await policy.check(EVE, "666", direct=True) == IGNORE  # a stranger again (answered lately)
    clock.now += REFUSAL_INTERVAL + 1
    code_in(await policy.check(EVE, "666", direct=True))


async def test_dm_policy_allowlist_refuses_with_the_id_and_open_lets_anyone_in_dms() -> None:
    refusing = AccessPolicy(AccessConfig(dm_policy="allowlist"), channel="t", pairing=pairing_service())
    verdict = await refusing.check(EVE, "666", direct=True)
    assert verdict.reply == refusing.refusal_for(EVE) and "666" in verdict.reply
    opened = AccessPolicy(AccessConfig(dm_policy="open"), channel="t", pairing=pairing_service())
    assert await opened.check(EVE, "666", direct=True) == ALLOW
    assert await opened.check(EVE, "-100", direct=False) == IGNORE  # groups follow the allow lists


async def test_without_a_pairing_service_strangers_are_refused_with_their_id() -> None:
    policy = AccessPolicy(AccessConfig(), channel="telegram")
    verdict = await policy.check(ALICE, "111", direct=True)
    assert verdict == Verdict(False, policy.refusal_for(ALICE)) and "111" in (verdict.reply or "")


# ---------------------------------------------------------------------- log lines
async def test_one_log_line_per_ignored_sender_naming_the_setting(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="channels.access")
    clock = FakeClock()
    policy = AccessPolicy(AccessConfig(allow_users=["1"]), channel="telegram", pairing=pairing_service(), clock=clock)
    caplog.clear()
    for _ in range(5):
        await policy.check(BOB, "-100123", direct=False)
    [line] = [r.getMessage() for r in caplog.records]
    assert line == (
        'telegram: ignored @bob (id 222) in chat -100123: not in allow_users; add "222" to [channels.telegram] '
        "allow_users (or the chat to allow_chats), or approve a pairing (they write to the bot in a direct chat)"
    )
    await policy.check(BOB, "222", direct=True)
    await policy.check(BOB, "222", direct=True)
    [_, dm_line] = [r.getMessage() for r in caplog.records]
    assert dm_line.startswith("telegram: sent a pairing code to @bob (id 222) in a direct chat: not in allow_users;")
    assert "autohands pairing approve CODE" in dm_line and 'add "222" to [channels.telegram] allow_users' in dm_line
    clock.now += REFUSAL_INTERVAL + 1
    await policy.check(BOB, "-100123", direct=False)
    assert len(caplog.records) == 3  # again after the interval


async def test_a_refusal_log_line_says_how_to_let_them_in(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="channels.access")
    policy = AccessPolicy(AccessConfig(dm_policy="allowlist", allow_users=["1"]), channel="discord")
    await policy.check(EVE, "666", direct=True)
    assert caplog.records[-1].getMessage() == (
        'discord: refused @eve (id 666) in a direct chat: not in allow_users; add "666" to [channels.discord] '
        'allow_users, or set dm_policy = "pairing"'
    )


# ---------------------------------------------------------------------- start-up warnings
def test_start_up_warnings_name_the_channel_once(caplog: pytest.LogCaptureFixture) -> None:
    AccessPolicy(AccessConfig(), channel="telegram", pairing=pairing_service())
    [line] = warnings(caplog)
    assert line.startswith("[channels.telegram]: no allow_users, allow_chats or admins: strangers who write")
    assert "pairing code" in line
    caplog.clear()
    AccessPolicy(AccessConfig(dm_policy="allowlist"), channel="discord", pairing=pairing_service())
    [line] = warnings(caplog)
    assert line.startswith("[channels.discord]: nobody can use this bot")
    caplog.clear()
    AccessPolicy(AccessConfig(allow_users=["1"]), channel="t", pairing=pairing_service())
    assert warnings(caplog) == []


# ---------------------------------------------------------------------- config warnings (Advising)
def telegram(**extra: Any) -> dict[str, Any]:
    return {"kind": "telegram", "enabled": True, "token": "1:x", **extra}


def slack(**extra: Any) -> dict[str, Any]:
    return {"enabled": True, "bot_token": "xoxb-1", "signing_secret": "s", **extra}


def discord(**extra: Any) -> dict[str, Any]:
    return {"enabled": True, "token": "t", **extra}


def test_the_channel_classes_advise() -> None:
    for cls in (TelegramChannel, SlackChannel, DiscordChannel):
        assert isinstance(cls, Advising)


@pytest.mark.parametrize(
    ("cls", "section"), [(TelegramChannel, telegram), (SlackChannel, slack), (DiscordChannel, discord)]
)
def test_a_bot_nobody_can_use_is_warned_about(cls: Any, section: Any) -> None:
    [line] = cls.config_warnings("mine", section(dm_policy="allowlist"))
    assert line.startswith("[channels.mine]: nobody can use this bot") and "allow_users" in line
    assert cls.config_warnings("mine", section()) == []  # pairing: strangers can ask
    assert cls.config_warnings("mine", section(dm_policy="open")) == []
    assert cls.config_warnings("mine", section(dm_policy="allowlist", allow_all=True)) == []
    assert cls.config_warnings("mine", section(dm_policy="allowlist", allow_chats=["C1"])) == []
    assert cls.config_warnings("mine", {"enabled": True}) == []  # invalid: config check's errors say why


def test_slack_names_where_member_ids_are_needed() -> None:
    [line] = SlackChannel.config_warnings(
        "slack", slack(allow_users=["@alice", "U07QWERTY", "@W0ORG1"], admins=["bob"])
    )
    assert line.startswith("[channels.slack]: allow_users/admins entries @alice, bob look like names")
    assert "match nobody" in line and "Copy member ID" in line
    assert SlackChannel.config_warnings("slack", slack(allow_users=["U1"], admins=["UADM"])) == []


def test_telegram_and_discord_usernames_can_change_hands() -> None:
    [line] = TelegramChannel.config_warnings("tg", telegram(allow_users=[111, "@bob"]))
    assert line.startswith("[channels.tg]: allow_users/admins entries @bob are usernames")
    assert "can be changed" in line
    assert DiscordChannel.config_warnings("dc", discord(allow_users=["123456789012345678"], admins=["-1"])) == []


# ---------------------------------------------------------------------- allow lists (as before)
async def test_allow_all_opens_the_bot() -> None:
    policy = AccessPolicy(AccessConfig(allow_all=True))
    assert await policy.check(EVE, "1", direct=True) == ALLOW
    assert await policy.check(EVE, "-1", direct=False) == ALLOW


async def test_ids_and_usernames_case_insensitive_at_stripped() -> None:
    cfg = TelegramLikeConfig.model_validate({"allow_users": [111, "@ALICE_w", " @Bob "], "token": "t"})
    assert cfg.allow_users == ["111", "@ALICE_w", "@Bob"]
    policy = AccessPolicy(cfg)
    assert await policy.check(Sender(id="999", username="alice_w"), "999", direct=True) == ALLOW
    assert await policy.check(Sender(id="111"), "111", direct=True) == ALLOW
    assert await policy.check(BOB, "g", direct=False) == ALLOW
    assert not (await policy.check(EVE, "666", direct=True)).allowed


def test_comma_separated_string_from_the_environment() -> None:
    cfg = AccessConfig.model_validate({"allow_users": "111, 222", "admins": 111})
    assert cfg.allow_users == ["111", "222"]
    assert cfg.admins == ["111"]


def test_bad_values_are_clear_validation_errors() -> None:
    with pytest.raises(ValidationError, match="group_policy"):
        AccessConfig.model_validate({"group_policy": "sometimes"})
    with pytest.raises(ValidationError, match="dm_policy"):
        AccessConfig.model_validate({"dm_policy": "pair"})
    with pytest.raises(ValidationError, match="allow_users"):
        AccessConfig.model_validate({"allow_users": {"a": 1}})
    with pytest.raises(ValidationError, match="extra"):
        TelegramLikeConfig.model_validate({"allow_user": ["x"]})


async def test_allowed_chat_lets_everyone_in_it_talk() -> None:
    policy = AccessPolicy(AccessConfig(allow_chats=["-100123"]))
    assert await policy.check(EVE, "-100123", direct=False) == ALLOW
    assert await policy.check(EVE, "-100999", direct=False) == IGNORE


async def test_admins_are_allowed_and_marked() -> None:
    policy = AccessPolicy(AccessConfig(admins=["@alice_w"], allow_users=["bob"]))
    assert await policy.check(ALICE, "111", direct=True) == ALLOW
    assert policy.is_admin(ALICE) and not policy.is_admin(BOB)
    built = policy.sender("111", name="Alice", username="@Alice_W")
    assert built == Sender(id="111", name="Alice", username="Alice_W", is_admin=True)
    assert policy.with_admin(BOB).is_admin is False


async def test_one_refusal_per_user_per_ten_minutes() -> None:
    clock = FakeClock()
    policy = AccessPolicy(AccessConfig(allow_users=["bob"]), clock=clock)
    assert (await policy.check(EVE, "666", direct=True)).reply is not None
    assert await policy.check(EVE, "666", direct=True) == IGNORE
    assert (await policy.check(ALICE, "111", direct=True)).reply is not None  # per user
    clock.now += REFUSAL_INTERVAL - 1
    assert await policy.check(EVE, "666", direct=True) == IGNORE
    clock.now += 2
    assert (await policy.check(EVE, "666", direct=True)).reply is not None


async def test_unknown_bots_are_never_refused() -> None:
    policy = AccessPolicy(AccessConfig(allow_users=["bob"]))
    assert await policy.check(Sender(id="5", is_bot=True), "5", direct=True) == IGNORE


def test_refusal_text_is_configurable_and_brace_safe() -> None:
    policy = AccessPolicy(AccessConfig(refusal_text="No {username} ({user_id}) {not a field}"))
    assert policy.refusal_for(EVE) == "No eve (666) {not a field}"


@pytest.mark.parametrize(
    ("policy", "mentioned", "replied", "command", "expected"),
    [
        ("mention", False, False, False, False),
        ("mention", True, False, False, True),
        ("mention", False, True, False, True),
        ("mention", False, False, True, True),
        ("all", False, False, False, True),
        ("commands", True, False, False, False),
        ("commands", False, False, True, True),
        ("off", True, True, True, False),
    ],
)
def test_group_policy(policy: str, mentioned: bool, replied: bool, command: bool, expected: bool) -> None:
    access = AccessPolicy(AccessConfig.model_validate({"group_policy": policy, "allow_all": True}))
    assert access.addressed(False, mentioned, replied, command, "-1") is expected
    assert access.addressed(True, False, False, False, "-1") is True  # direct chats always


def test_per_chat_override() -> None:
    cfg = AccessConfig.model_validate({"chat_policies": {-100: "all", "-200": "off"}})
    access = AccessPolicy(cfg)
    assert access.addressed(False, False, False, False, "-100") is True
    assert access.addressed(False, True, False, True, "-200") is False
    assert access.addressed(False, True, False, False, "-300") is True
