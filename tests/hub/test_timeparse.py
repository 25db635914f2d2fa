"""Time phrases → times and triggers (dateparser for points in time, APScheduler for the rest)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.scheduler.timeparse import (
    ScheduleError,
    build_trigger,
    describe_seconds,
    min_gap_seconds,
    parse_at,
    parse_every,
    parse_when,
    zone,
)

NOW = datetime(2026, 11, 21, 8, 30, tzinfo=UTC)  # Saturday, 09:30 in Berlin
BERLIN = "Europe/Berlin"


@pytest.mark.parametrize(
    ("args", "due", "what"),
    [
        ("in 10m call Ana", datetime(2026, 11, 21, 8, 40, tzinfo=UTC), "call Ana"),
        ("in 2 hours to stretch", datetime(2026, 11, 21, 10, 30, tzinfo=UTC), "stretch"),
        ("tomorrow 9am standup notes", datetime(2026, 11, 22, 8, 0, tzinfo=UTC), "standup notes"),
        ("2026-12-01 14:00 dentist", datetime(2026, 12, 1, 13, 0, tzinfo=UTC), "dentist"),
        ("friday 17:30 beer", datetime(2026, 11, 27, 16, 30, tzinfo=UTC), "beer"),
        ("next monday 10:00 plan the week", datetime(2026, 11, 23, 9, 0, tzinfo=UTC), "plan the week"),
        # trailing words that do not change the time belong to the text
        ("in 2s after the restart", NOW + timedelta(seconds=2), "after the restart"),
        ("9am coffee", datetime(2026, 11, 22, 8, 0, tzinfo=UTC), "coffee"),  # 9:00 has passed today
        # a day without a time of day is 09:00 on it, not midnight (it used to wake people at 00:00)
        ("friday pay rent", datetime(2026, 11, 27, 8, 0, tzinfo=UTC), "pay rent"),
        ("dec 25 call grandma", datetime(2026, 12, 25, 8, 0, tzinfo=UTC), "call grandma"),
        ("2026-12-01 dentist", datetime(2026, 12, 1, 8, 0, tzinfo=UTC), "dentist"),
        ("2027-03-28 clocks went forward", datetime(2027, 3, 28, 7, 0, tzinfo=UTC), "clocks went forward"),  # CEST
        # ... but midnight said outright stays midnight, and relative days keep the time of now
        ("friday 00:00 deploy", datetime(2026, 11, 26, 23, 0, tzinfo=UTC), "deploy"),
        ("tomorrow water plants", datetime(2026, 11, 22, 8, 30, tzinfo=UTC), "water plants"),
        ("in 3 days check in", datetime(2026, 11, 24, 8, 30, tzinfo=UTC), "check in"),
    ],
)
def test_parse_when_examples(args: str, due: datetime, what: str) -> None:
    assert parse_when(args, BERLIN, NOW) == (due, what)


def test_parse_when_uses_the_users_zone() -> None:
    assert parse_when("tomorrow 9am x", "America/New_York", NOW)[0] == datetime(2026, 11, 22, 14, 0, tzinfo=UTC)
    assert parse_when("tomorrow 9am x", "UTC", NOW)[0] == datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("blah blah", "could not read a time"),
        ("", "could not read a time"),
        ("2020-01-01 10:00 old", "which has passed"),
        ("12 apples", "could not read a time"),  # a bare number is not a time
    ],
)
def test_parse_when_errors_give_examples(args: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message) as info:
        parse_when(args, BERLIN, NOW)
    assert "tomorrow 9am" in str(info.value)


def test_parse_at_whole_phrase_and_iso() -> None:
    assert parse_at("in 20 minutes", "UTC", NOW) == NOW + timedelta(minutes=20)
    assert parse_at("2026-12-24T18:00", BERLIN, NOW) == datetime(2026, 12, 24, 17, 0, tzinfo=UTC)
    assert parse_at("whenever", "UTC", NOW) is None


@pytest.mark.parametrize(
    ("args", "expr_or_seconds", "what", "description"),
    [
        ("30m stretch", 1800.0, "stretch", "every 30 minutes"),
        ("2h drink water", 7200.0, "drink water", "every 2 hours"),
        ("2 hours drink", 7200.0, "drink", "every 2 hours"),
        ("every hour look up", 3600.0, "look up", "every hour"),
        ("weekday 9:00 stand-up", "0 9 * * mon-fri", "stand-up", "every weekday at 09:00"),
        ("weekdays at 9am stand-up", "0 9 * * mon-fri", "stand-up", "every weekday at 09:00"),
        ("weekday at 9 standup", "0 9 * * mon-fri", "standup", "every weekday at 09:00"),
        ("every day at 7 pm walk", "0 19 * * *", "walk", "every day at 19:00"),
        ("monday at 17 review", "0 17 * * mon", "review", "every mon at 17:00"),
        ("day 8:30 news", "30 8 * * *", "news", "every day at 08:30"),
        ("monday 10:00 plan", "0 10 * * mon", "plan", "every mon at 10:00"),
        ("mon,wed 6pm gym", "0 18 * * mon,wed", "gym", "every mon,wed at 18:00"),
        ('cron: "0 9 * * 1-5" hi', "0 9 * * mon,tue,wed,thu,fri", "hi", "cron 0 9 * * 1-5"),
        ("cron: 0 9 * * 0 sunday", "0 9 * * sun", "sunday", "cron 0 9 * * 0"),
        ('"*/15 * * * *" ping', "*/15 * * * *", "ping", "cron */15 * * * *"),
    ],
)
def test_parse_every(args: str, expr_or_seconds: object, what: str, description: str) -> None:
    spec, rest = parse_every(args, BERLIN, NOW)
    assert rest == what and spec.description == description
    if isinstance(expr_or_seconds, float):
        assert spec.kind == "interval" and spec.args["seconds"] == expr_or_seconds
    else:
        assert spec.kind == "cron" and spec.args["expr"] == expr_or_seconds
    build_trigger(spec.kind, spec.args, BERLIN)  # stored specs rebuild


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("sometimes water", "could not read a schedule"),
        ("weekday standup", "at what time"),
        ("weekday 9 standup", "at what time"),  # a bare number without "at" could be a count
        ("weekday at 24 x", "at what time"),
        ("day 25:00 x", "at what time"),
        ('cron: "0 9 *" x', "5 fields"),
        ('cron: "0 9 * * 9" x', "invalid cron expression"),
        ('cron: "0 9 * * 1-5 x', "unbalanced quotes"),
        ("", "say how often"),
    ],
)
def test_parse_every_errors(args: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        parse_every(args, BERLIN, NOW)


def test_cron_follows_the_zone_across_dst() -> None:
    spec, _ = parse_every("day 9:00 x", BERLIN, NOW)
    trigger = build_trigger(spec.kind, spec.args, BERLIN)
    before = trigger.get_next_fire_time(None, datetime(2027, 3, 26, 12, 0, tzinfo=UTC))
    after = trigger.get_next_fire_time(before, before + timedelta(microseconds=1))
    assert before.astimezone(UTC).hour == 8 and after.astimezone(UTC).hour == 7  # CET → CEST
    assert after.astimezone(zone(BERLIN)).hour == 9


def test_interval_keeps_its_phase_from_the_stored_start() -> None:
    spec, _ = parse_every("2h x", "UTC", NOW)
    trigger = build_trigger(spec.kind, spec.args, "UTC")
    later = NOW + timedelta(hours=5, minutes=1)
    assert trigger.get_next_fire_time(None, later) == NOW + timedelta(hours=6)


def test_min_gap_and_descriptions() -> None:
    spec, _ = parse_every('"*/5 * * * *" x', "UTC", NOW)
    assert min_gap_seconds(build_trigger(spec.kind, spec.args, "UTC"), NOW) == 300
    spec, _ = parse_every("weekday 9:00 x", "UTC", NOW)
    assert min_gap_seconds(build_trigger(spec.kind, spec.args, "UTC"), NOW) == 86400
    assert describe_seconds(60) == "minute" and describe_seconds(90) == "90 seconds"
    assert describe_seconds(172800) == "2 days"


def test_unknown_zone() -> None:
    with pytest.raises(ScheduleError, match="unknown time zone 'Mars/Olympus'"):
        zone("Mars/Olympus")
