"""Helpers shared by the channel tests: memory state, and config sections as ``autohands run`` reads them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hub.config import Settings, load_settings
from tests.fakes.discord import FakeDiscord
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram


class MemoryState:
    """``KeyValueState`` in a dict (what the store's scoped state is to a channel)."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    async def get(self, key: str) -> str | None:
        return self.data.get(key)

    async def set(self, key: str, value: str) -> None:
        self.data[key] = value


UNLIMITED_SENDS: dict[str, Any] = {
    level: {"per_second": 10_000.0, "burst": 10_000} for level in ("per_chat", "per_group", "per_bot")
}
"""``rate_limits`` no test's sends wait for (a platform's own are 1 message a second per chat);
the buckets themselves are tested in test_ratelimit.py and test_delivery.py."""

TELEGRAM_TIMINGS: dict[str, Any] = {
    "poll_retry_first_seconds": 0.01,
    "poll_retry_max_seconds": 0.1,
    "rate_limits": UNLIMITED_SENDS,
}
"""Test-sized waits of ``[channels.telegram]``: the poll loop's back-off and the send buckets."""


def telegram_section(fake: FakeTelegram, allow: Sequence[int], **extra: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "token": fake.token,
        "base_url": fake.base_url,
        "base_file_url": fake.base_file_url,
        "poll_timeout": 5,
        "allow_users": [str(user) for user in allow],
        **TELEGRAM_TIMINGS,
        **extra,
    }


def slack_section(fake: FakeSlack, **extra: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "bot_token": fake.bot_token,
        "signing_secret": fake.signing_secret,
        "api_url": fake.api_url,
        "allow_all": True,
        "rate_limits": UNLIMITED_SENDS,
        **extra,
    }


def discord_section(fake: FakeDiscord, **extra: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "token": fake.token,
        "api_base": fake.api_base,
        "gateway_url": fake.gateway_url,
        # Test-sized timings (see DiscordConfig): no 5 s pause before re-IDENTIFY, no 2 s wait
        # for GUILD_CREATEs, and a liveness window generous enough for a loaded 2-core runner.
        "identify_delay_seconds": 0,
        "guild_ready_timeout_seconds": 0.05,
        "liveness_timeout_seconds": 10,
        "rate_limits": UNLIMITED_SENDS,
        "allow_users": [fake.alice["id"]],
        **extra,
    }


def hub_settings(data_dir: Path, **channels: dict[str, Any]) -> Settings:
    """The echo agent and the HTTP server on a free port, with ``channels``."""
    return load_settings(
        environ={},
        overrides={
            "hub": {"data_dir": str(data_dir)},
            "server": {"enabled": True, "host": "127.0.0.1", "port": 0},
            "agent": {"runtime": "echo"},
            # the gateway's channels (on by default) are not these tests' subject
            "channels": {"web": {"enabled": False}, "api": {"enabled": False}, **channels},
        },
    )
