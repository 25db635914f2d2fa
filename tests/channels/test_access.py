"""AccessConfig / AccessPolicy: secure default, allow lists, refusal throttle, group policy."""

from __future__ import annotations

import pytest
from pydantic import ConfigDict, ValidationError

from channels.access import REFUSAL_INTERVAL, AccessConfig, AccessPolicy
from hub.messages import Sender


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


def test_empty_config_denies_everyone_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    policy = AccessPolicy(AccessConfig())
    assert "everyone will be refused" in caplog.text
    assert policy.decide(ALICE, "111", direct=True) == "refuse"
    assert policy.decide(BOB, "-100", direct=False) == "ignore"
    assert "111" in policy.refusal_for(ALICE)


def test_allow_all_opens_the_bot() -> None:
    policy = AccessPolicy(AccessConfig(allow_all=True))
    assert policy.decide(EVE, "1", direct=True) == "allow"


def test_ids_and_usernames_case_insensitive_at_stripped() -> None:
    cfg = TelegramLikeConfig.model_validate({"allow_users": [111, "@ALICE_w", " @Bob "], "token": "t"})
    assert cfg.allow_users == ["111", "@ALICE_w", "@Bob"]
    policy = AccessPolicy(cfg)
    assert policy.decide(Sender(id="999", username="alice_w"), "999", direct=True) == "allow"
    assert policy.decide(Sender(id="111"), "111", direct=True) == "allow"
    assert policy.decide(BOB, "g", direct=False) == "allow"
    assert policy.decide(EVE, "666", direct=True) == "refuse"


def test_comma_separated_string_from_the_environment() -> None:
    cfg = AccessConfig.model_validate({"allow_users": "111, 222", "admins": 111})
    assert cfg.allow_users == ["111", "222"]
    assert cfg.admins == ["111"]


def test_bad_values_are_clear_validation_errors() -> None:
    with pytest.raises(ValidationError, match="group_policy"):
        AccessConfig.model_validate({"group_policy": "sometimes"})
    with pytest.raises(ValidationError, match="allow_users"):
        AccessConfig.model_validate({"allow_users": {"a": 1}})
    with pytest.raises(ValidationError, match="extra"):
        TelegramLikeConfig.model_validate({"allow_user": ["x"]})


def test_allowed_chat_lets_everyone_in_it_talk() -> None:
    policy = AccessPolicy(AccessConfig(allow_chats=["-100123"]))
    assert policy.decide(EVE, "-100123", direct=False) == "allow"
    assert policy.decide(EVE, "-100999", direct=False) == "ignore"


def test_admins_are_allowed_and_marked() -> None:
    policy = AccessPolicy(AccessConfig(admins=["@alice_w"], allow_users=["bob"]))
    assert policy.decide(ALICE, "111", direct=True) == "allow"
    assert policy.is_admin(ALICE) and not policy.is_admin(BOB)
    built = policy.sender("111", name="Alice", username="@Alice_W")
    assert built == Sender(id="111", name="Alice", username="Alice_W", is_admin=True)
    assert policy.with_admin(BOB).is_admin is False


def test_one_refusal_per_user_per_ten_minutes() -> None:
    clock = FakeClock()
    policy = AccessPolicy(AccessConfig(allow_users=["bob"]), clock=clock)
    assert policy.decide(EVE, "666", direct=True) == "refuse"
    assert policy.decide(EVE, "666", direct=True) == "ignore"
    assert policy.decide(ALICE, "111", direct=True) == "refuse"  # per user
    clock.now += REFUSAL_INTERVAL - 1
    assert policy.decide(EVE, "666", direct=True) == "ignore"
    clock.now += 2
    assert policy.decide(EVE, "666", direct=True) == "refuse"


def test_unknown_bots_are_never_refused() -> None:
    policy = AccessPolicy(AccessConfig(allow_users=["bob"]))
    assert policy.decide(Sender(id="5", is_bot=True), "5", direct=True) == "ignore"


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
