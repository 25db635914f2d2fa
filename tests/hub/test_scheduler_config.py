"""``[scheduler] default_timezone``: the host's zone unless the operator names one."""

from __future__ import annotations

import pytest

from hub.config import load_settings, validate_section
from hub.errors import ConfigError
from hub.scheduler import SchedulerConfig


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York"])
def test_the_default_zone_is_the_hosts(monkeypatch: pytest.MonkeyPatch, zone: str) -> None:
    """Before, it was UTC whatever the host said: `/remind at 9am` was 09:00 UTC in Berlin."""
    monkeypatch.setenv("TZ", zone)
    settings = load_settings(environ={}, user_file=False)
    assert validate_section(SchedulerConfig, settings.scheduler, "scheduler").default_timezone == zone
    assert SchedulerConfig().default_timezone == zone


def test_a_host_without_a_zone_name_means_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Not/AZone")
    assert SchedulerConfig().default_timezone == "UTC"


def test_a_named_zone_wins_and_a_wrong_one_is_named() -> None:
    assert SchedulerConfig(default_timezone="Asia/Tokyo").default_timezone == "Asia/Tokyo"
    with pytest.raises(ConfigError, match=r"scheduler\.default_timezone"):
        validate_section(SchedulerConfig, {"default_timezone": "Mars/Olympus"}, "scheduler")
