"""The ``time`` category: the current time in the user's time zone, and zone conversion."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel

from hub.errors import ToolFailed

from .base import Risk, Tool, ToolContext
from .decorator import tool


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ``ToolFailed`` naming the problem if there is none."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ToolFailed(f"unknown time zone {name!r}; use an IANA name such as 'Europe/Paris' or 'UTC'") from None


class TimeInfo(BaseModel):
    iso: str
    weekday: str
    timezone: str
    utc_offset: str


def _info(moment: datetime, tz: ZoneInfo) -> TimeInfo:
    local = moment.astimezone(tz)
    offset = local.strftime("%z")
    return TimeInfo(
        iso=local.isoformat(timespec="seconds"),
        weekday=local.strftime("%A"),
        timezone=tz.key,
        utc_offset=f"{offset[:3]}:{offset[3:]}",
    )


@tool(category="time", risk=Risk.LOW)
async def now(ctx: ToolContext, timezone: str | None = None) -> TimeInfo:
    """The current date and time, in the user's time zone unless another is given.

    Args:
        timezone: IANA time zone, e.g. "Asia/Tokyo".
    """
    return _info(datetime.now(UTC), zone(timezone or ctx.timezone))


def _parse(value: str, source: ZoneInfo) -> datetime:
    text = value.strip().replace(" ", "T", 1) if len(value.strip()) > 8 else value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            clock = time.fromisoformat(text)
        except ValueError:
            raise ToolFailed(f"cannot read time {value!r}; use ISO 8601 like '2025-03-01T14:30' or '14:30'") from None
        parsed = datetime.combine(datetime.now(source).date(), clock)
    # A time that carries its own offset keeps it; a naive one is in the source zone.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=source)


@tool(category="time", risk=Risk.LOW)
async def convert_time(ctx: ToolContext, time: str, to_timezone: str, from_timezone: str | None = None) -> TimeInfo:
    """Convert a date/time from one time zone to another.

    Args:
        time: ISO 8601 date-time ("2025-03-01T14:30") or a clock time ("14:30", today).
        to_timezone: IANA target zone.
        from_timezone: IANA zone the time is in; default the user's zone.
    """
    source = zone(from_timezone or ctx.timezone)
    target = zone(to_timezone)
    return _info(_parse(time, source), target)


def time_tools() -> list[Tool]:
    return [now, convert_time]
