"""Time phrases → times and APScheduler triggers, in the user's time zone.

Points in time ("in 10m", "tomorrow 9am", "friday 17:30", "2026-12-01 14:00") are read by
``dateparser`` (future dates preferred, relative to now in the user's zone); a day named without
a time of day ("friday", "dec 25") is 09:00 on it. Recurrences are an interval ("2h",
"30 minutes"), a day phrase ("weekday 9:00", "monday 10:00", "day 8:30") or a 5-field crontab;
all time arithmetic is APScheduler's own triggers, never ours.
"""

from __future__ import annotations

import itertools
import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from ..errors import AutoHandsError

WHEN_EXAMPLES = "in 10m, in 2 hours, tomorrow 9am, friday 17:30, 2026-12-01 14:00"
EVERY_EXAMPLES = '30m, 2h, day 8:30, weekday 9:00, monday 10:00, cron: "0 9 * * 1-5"'
_MAX_WHEN_WORDS = 6
DAY_ONLY_TIME = time(9, 0)
"""A day without a time of day ("friday", "dec 25") means this time on it, not midnight."""


class ScheduleError(AutoHandsError):
    """A scheduling request the user (or the model) must fix; the message says how."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TriggerSpec:
    """A trigger as stored in the ``jobs`` table: kind plus JSON-serialisable arguments."""

    kind: Literal["date", "interval", "cron"]
    args: dict[str, Any]
    description: str


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``, or ``ScheduleError`` with an example."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(
            f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin, America/New_York or UTC"
        ) from None


def build_trigger(kind: str, args: dict[str, Any], tz: str) -> BaseTrigger:
    """The APScheduler trigger for a stored spec (the only place time arithmetic is set up)."""
    tzinfo = zone(tz)
    if kind == "date":
        return DateTrigger(run_date=datetime.fromisoformat(args["run_at"]), timezone=tzinfo)
    if kind == "interval":
        start = datetime.fromisoformat(args["start"])
        return IntervalTrigger(seconds=float(args["seconds"]), start_date=start, timezone=tzinfo)
    if kind == "cron":
        minute, hour = args["expr"].split()[:2]
        return _WallClockCron(
            CronTrigger.from_crontab(args["expr"], timezone=tzinfo), fixed_time="*" not in minute + hour
        )
    raise ScheduleError(f"unknown trigger kind {kind!r}")


class _WallClockCron(BaseTrigger):  # type: ignore[misc, unused-ignore]  # APScheduler 3 has no types: Any
    """A ``CronTrigger`` that keeps to the local wall clock when it goes back (end of DST).

    APScheduler's ``CronTrigger`` fires ``30 2 * * *`` at 02:30 CEST *and* at 02:30 CET on the
    last Sunday of October, and asked for the next time from exactly a repeated time it can
    answer that same time again (the job never advances). As cron does, a job with a fixed hour
    and minute does not run again in the repeated hour (it skips wall-clock times it has already
    passed); one with ``*`` in either keeps its rhythm. Every answer is after the previous one.
    """

    __slots__ = ("cron", "fixed_time")

    def __init__(self, cron: CronTrigger, *, fixed_time: bool) -> None:
        self.cron = cron
        self.fixed_time = fixed_time

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        nxt: datetime | None = self.cron.get_next_fire_time(previous_fire_time, now)
        if previous_fire_time is None:
            return nxt
        probe = previous_fire_time.astimezone(UTC)
        while nxt is not None and (nxt <= previous_fire_time or self._repeats(previous_fire_time, nxt)):
            # In UTC: adding to a zone-aware time is wall-clock arithmetic and drops ``fold``;
            # the probe only moves forward, so this ends once the repeated hour is over.
            probe = max(probe, nxt.astimezone(UTC)) + timedelta(seconds=1)
            nxt = self.cron.get_next_fire_time(None, probe)
        return nxt

    def _repeats(self, previous: datetime, nxt: datetime) -> bool:
        """The wall clock went back to (or before) ``previous``'s local time: naive times compare
        without ``fold``, so 02:30 CET is not after 02:30 CEST."""
        if not self.fixed_time:
            return False
        tz = self.cron.timezone
        return nxt.astimezone(tz).replace(tzinfo=None) <= previous.astimezone(tz).replace(tzinfo=None)

    def __str__(self) -> str:
        return str(self.cron)

    def __repr__(self) -> str:
        return f"<_WallClockCron {self.cron!r} fixed_time={self.fixed_time}>"


# ---------------------------------------------------------------------------- one point in time
def _dateparser_settings(tz: str, now: datetime) -> dict[str, Any]:
    return {
        "PREFER_DATES_FROM": "future",
        "RELATIVE_BASE": now.astimezone(zone(tz)).replace(tzinfo=None),
        "TIMEZONE": tz,
        "RETURN_AS_TIMEZONE_AWARE": True,
        "RETURN_TIME_AS_PERIOD": True,  # tells "friday" (a day) from "friday 00:00" (a time)
    }


def parse_at(phrase: str, tz: str, now: datetime | None = None) -> datetime | None:
    """``phrase`` as a whole → an aware UTC datetime, or None if it is not a time."""
    from dateparser.date import DateDataParser  # slow import (~0.3 s): only when a time is parsed

    phrase = phrase.strip()
    if not phrase or phrase.isdigit():  # a bare number is a day of month to dateparser: too surprising
        return None
    now = now or datetime.now(UTC)
    try:
        data = DateDataParser(languages=["en"], settings=_dateparser_settings(tz, now)).get_date_data(phrase)
    except (ValueError, OverflowError):
        return None
    when: datetime | None = data.date_obj
    if when is None:
        return None
    local = when.astimezone(zone(tz)) if when.tzinfo else when.replace(tzinfo=zone(tz))
    if data.period == "day" and local.time() == time(0):
        # "friday" / "dec 25" come back at midnight; "tomorrow" and "in 3 days" keep the time of now.
        local = datetime.combine(local.date(), DAY_ONLY_TIME, tzinfo=zone(tz))
    return local.astimezone(UTC)


def parse_when(args: str, tz: str, now: datetime | None = None) -> tuple[datetime, str]:
    """``"<when> <what>"`` → (due time in UTC, what).

    The time is the longest leading phrase whose every word changes what it means: dateparser
    also reads "in 2s after the" as "in 2s", and those trailing words belong to the text.
    Raises ``ScheduleError`` with examples when no prefix parses or the time has passed.
    """
    now = now or datetime.now(UTC)
    words = args.split()
    best: tuple[int, datetime] | None = None
    previous: datetime | None = None
    for n in range(1, min(len(words), _MAX_WHEN_WORDS) + 1):
        when = parse_at(" ".join(words[:n]), tz, now)
        if when is not None and when != previous:
            best = (n, when)
        previous = when
    if best is None:
        raise ScheduleError(f"I could not read a time at the start of {args!r}. Examples: {WHEN_EXAMPLES}")
    n, when = best
    if when <= now:
        local = when.astimezone(zone(tz)).strftime("%a %d %b %Y %H:%M")
        raise ScheduleError(
            f"{' '.join(words[:n])!r} is {local} ({tz}), which has passed; give a future time, e.g. {WHEN_EXAMPLES}"
        )
    return when, _strip_to(" ".join(words[n:]))


def _strip_to(text: str) -> str:
    """ "remind me in 10m to call Ana": the reminder text is "call Ana"."""
    return text[3:].strip() if text.lower().startswith("to ") else text.strip()


# ---------------------------------------------------------------------------- recurrences
_UNITS = {
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "week": 604800,
    "weeks": 604800,
}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([a-z]+)$")
_CLOCK = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*(am|pm)?$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_NAMES = {**{d: d for d in _DAYS}, **{f: f[:3] for f in _FULL_DAYS}, "tues": "tue", "thurs": "thu"}
_DAY_WORDS = {
    "day": "*",
    "daily": "*",
    "days": "*",
    "weekday": "mon-fri",
    "weekdays": "mon-fri",
    "weekend": "sat,sun",
    "weekends": "sat,sun",
}


def _duration(text: str) -> float | None:
    m = _DURATION.match(text.lower())
    if m is None or m.group(2) not in _UNITS:
        return None
    return float(m.group(1)) * _UNITS[m.group(2)]


def _clock(text: str, *, bare_hour: bool = False) -> tuple[int, int] | None:
    """``9:30``, ``9am``, ``21:00`` → (hour, minute). A bare ``9`` only when ``bare_hour`` (it
    followed "at": "every weekday at 9"); alone it could be a count."""
    m = _CLOCK.match(text.lower())
    if m is None:
        return None
    hour, minute, half = int(m.group(1)), int(m.group(2) or 0), m.group(3)
    if half is None and m.group(2) is None and not bare_hour:
        return None
    if half:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half == "pm" else 0)
    return (hour, minute) if hour < 24 and minute < 60 else None


def _days(word: str) -> str | None:
    """ "weekday", "day", "monday", "mon,wed,fri" → a cron day-of-week field, else None."""
    w = word.lower().rstrip(",")
    if w in _DAY_WORDS:
        return _DAY_WORDS[w]
    names = []
    for part in w.split(","):
        day = _DAY_NAMES.get(part) or _DAY_NAMES.get(part.removesuffix("s"))
        if day is None:
            return None
        names.append(day)
    return ",".join(names)


def _crontab_dow(field: str) -> str:
    """Crontab weekdays (0/7 = Sunday) → APScheduler names (its 3.x numbers start at Monday, #286)."""
    if not any(ch.isdigit() for ch in field):
        return field
    days: set[int] = set()
    for part in field.split(","):
        rng, _, step_s = part.partition("/")
        step = int(step_s) if step_s else 1
        if rng == "*":
            lo, hi = 0, 6
        elif "-" in rng:
            a, b = rng.split("-", 1)
            lo, hi = int(a), int(b)
        else:
            lo = hi = int(rng)
        if not (0 <= lo <= 7 and 0 <= hi <= 7 and lo <= hi):
            raise ValueError(f"bad day of week {part!r}")
        days.update(d % 7 for d in range(lo, hi + 1, step))
    # crontab 0 = sun, 1 = mon … ; _DAYS[0] = mon
    return ",".join(_DAYS[(d - 1) % 7] for d in sorted(days, key=lambda d: (d - 1) % 7))


def cron_spec(expr: str, tz: str) -> TriggerSpec:
    fields = expr.split()
    if len(fields) != 5:
        raise ScheduleError(f"a cron expression has 5 fields (minute hour day month weekday), got {expr!r}")
    try:
        fields[4] = _crontab_dow(fields[4])
        norm = " ".join(fields)
        CronTrigger.from_crontab(norm, timezone=zone(tz))
    except ValueError as exc:
        raise ScheduleError(f"invalid cron expression {expr!r}: {exc}") from None
    return TriggerSpec(kind="cron", args={"expr": norm}, description=f"cron {expr}")


def interval_spec(seconds: float, start: datetime) -> TriggerSpec:
    first = start + timedelta(seconds=seconds)
    return TriggerSpec(
        kind="interval",
        args={"seconds": seconds, "start": first.isoformat()},
        description=f"every {describe_seconds(seconds)}",
    )


def describe_seconds(seconds: float) -> str:
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}" if n != 1 else unit
    return f"{seconds:g} second{'s' if seconds != 1 else ''}"


def parse_every(args: str, tz: str, now: datetime | None = None) -> tuple[TriggerSpec, str]:
    """``"<recurrence> <what>"`` → (trigger spec, what). Raises ``ScheduleError`` with examples."""
    now = now or datetime.now(UTC)
    text = args.strip()
    low = text.lower()
    if low.startswith("cron:") or (text[:1] and text[:1] in "\"'"):
        body = text[5:].strip() if low.startswith("cron:") else text
        try:
            tokens = shlex.split(body)
        except ValueError:
            raise ScheduleError(f"unbalanced quotes in {args!r}") from None
        if tokens and len(tokens[0].split()) == 5:
            return cron_spec(tokens[0], tz), " ".join(tokens[1:])
        if len(tokens) >= 5:
            return cron_spec(" ".join(tokens[:5]), tz), " ".join(tokens[5:])
        raise ScheduleError(
            f'a cron schedule needs 5 fields, e.g. cron: "0 9 * * 1-5" <what>. Examples: {EVERY_EXAMPLES}'
        )
    words = text.split()
    if not words:
        raise ScheduleError(f"say how often and what, e.g. /every 2h stretch. Examples: {EVERY_EXAMPLES}")
    words = words[1:] if words[0].lower() == "every" else words
    for n, chunk in ((2, " ".join(words[:2])), (1, words[0] if words else "")):
        seconds = _duration(chunk) if len(words) >= n else None
        if seconds is None and n == 1 and chunk.lower() in ("hour", "minute", "hourly"):
            seconds = 3600.0 if chunk.lower() != "minute" else 60.0
        if seconds:
            return interval_spec(seconds, now), " ".join(words[n:])
    days = _days(words[0])
    if days is not None:
        rest = words[1:]
        said_at = bool(rest) and rest[0].lower() == "at"
        if said_at:
            rest = rest[1:]
        clock = None
        if len(rest) >= 2 and rest[1].lower() in ("am", "pm"):
            clock = _clock(" ".join(rest[:2]))  # "9 am"
            rest = rest[1:] if clock else rest
        if clock is None and rest:
            clock = _clock(rest[0], bare_hour=said_at)
        if clock is None:
            raise ScheduleError(f"say at what time, e.g. '{words[0]} 9:00'. Examples: {EVERY_EXAMPLES}")
        hour, minute = clock
        spec = cron_spec(f"{minute} {hour} * * {days}", tz)
        label = {"*": "day", "mon-fri": "weekday", "sat,sun": "weekend day"}.get(days, days)
        return TriggerSpec(
            kind="cron", args=spec.args, description=f"every {label} at {hour:02d}:{minute:02d}"
        ), " ".join(rest[1:])
    raise ScheduleError(f"I could not read a schedule at the start of {args!r}. Examples: {EVERY_EXAMPLES}")


def min_gap_seconds(trigger: BaseTrigger, now: datetime, samples: int = 8) -> float:
    """The shortest gap between the next few fire times (the interval limit for cron jobs)."""
    times: list[datetime] = []
    prev = None
    for _ in range(samples):
        # CronTrigger searches from min(now, previous + 1 µs): "now" must move with the walk.
        nxt = trigger.get_next_fire_time(prev, prev + timedelta(microseconds=1) if prev else now)
        if nxt is None:
            break
        times.append(nxt)
        prev = nxt
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    return min(gaps) if gaps else float("inf")


# ---------------------------------------------------------------------------- display
def local_time(dt: datetime, tz: str) -> str:
    """``Sat 21 Nov 09:40 CET`` (with the year when it is not this year)."""
    local = dt.astimezone(zone(tz))
    fmt = "%a %d %b %H:%M %Z" if local.year == datetime.now(local.tzinfo).year else "%a %d %b %Y %H:%M %Z"
    return local.strftime(fmt)
