"""Scheduled jobs survive a restart unchanged, and daily jobs keep to the local clock across DST.

The restart test persists a mix of one-off, interval and cron jobs in several time zones
through the scheduler's own ``create`` inside a real ``Hub``, stops it, starts a new one on the
same database and compares every job's next run time before and after (database and timer).
The DST tests drive the scheduler with its injectable ``now`` and ``fire``: each fire records
the due time it was for and advances the job, exactly as the timer's fires do.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hub.app import Hub
from hub.bus import Bus
from hub.config import Settings
from hub.default_agent import EchoAgent
from hub.messages import ConversationRef, Sender, utcnow
from hub.scheduler import Scheduler, SchedulerConfig
from hub.scheduler.timeparse import TriggerSpec, build_trigger, cron_spec, interval_spec, parse_every
from hub.store import Store

ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Chatham")
CONV = ConversationRef(channel="test", chat="c1")
ALICE = Sender(id="u-alice", name="Alice")


def settings(tmp: Path) -> Settings:
    return Settings.model_validate(
        {
            "hub": {"data_dir": str(tmp / "data")},
            "server": {"enabled": False},
            "scheduler": {"max_jobs_per_user": 1_000_000, "min_interval_seconds": 0},
        }
    )


DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order


def mixed_spec(i: int, now: datetime, tz: str) -> TriggerSpec:
    """One-offs, intervals and crontabs (daily, weekdays, the DST hours 02:xx included)."""
    kind = i % 3
    if kind == 0:
        return TriggerSpec(
            kind="date", args={"run_at": (now + timedelta(days=2, seconds=37 * i)).isoformat()}, description="once"
        )
    if kind == 1:
        return interval_spec(3600 + 61 * (i % 500), now + timedelta(days=1, seconds=i))
    # Only on days two or more days ahead in every zone, so no crontab falls due while the test
    # runs (a fire would move its next run time on): three and four days after today in UTC.
    days = [DAY_NAMES[(now.weekday() + ahead) % 7] for ahead in (3, 4)]
    return cron_spec(f"{i % 60} {(i // 60) % 24} * * {days[0] if i % 2 else ','.join(days)}", tz)


async def _restore(tmp_path: Path, count: int) -> None:
    now = utcnow()
    async with Hub(settings(tmp_path), agent=EchoAgent()) as hub:
        scheduler: Scheduler = hub.scheduler

        async def create(i: int) -> tuple[str, datetime]:
            tz = ZONES[i % len(ZONES)]
            spec = mixed_spec(i, now, tz)
            job = await scheduler.create(
                conversation=ConversationRef(channel="test", chat=f"c{i % 50}"),
                creator=Sender(id=f"u{i % 100}", name="someone"),
                trigger=spec,
                text=f"job {i}",
                timezone=tz,
                now=now,
            )
            # What the trigger itself says, independently of what was stored.
            expected = build_trigger(spec.kind, spec.args, tz).get_next_fire_time(None, now)
            assert job.next_run_at == expected
            return job.id, expected

        expected: dict[str, datetime] = {}
        for chunk in range(0, count, 1000):  # concurrent creates share group commits
            expected.update(await asyncio.gather(*(create(i) for i in range(chunk, min(count, chunk + 1000)))))
        timer = {jid: scheduler._aps.get_job(jid).next_run_time for jid in expected}
    assert len(expected) == count and timer == expected

    async with Hub(settings(tmp_path), agent=EchoAgent()) as hub:
        scheduler = hub.scheduler
        stored = {job.id: job.next_run_at for job in await scheduler.list_jobs()}
        restored = {jid: scheduler._aps.get_job(jid).next_run_time for jid in expected}
        assert len(scheduler._armed) == count and scheduler.fired == 0
    assert stored == expected
    assert restored == expected


async def test_a_thousand_mixed_jobs_are_restored_with_the_same_next_run_times(tmp_path: Path) -> None:
    await _restore(tmp_path, 1_000)


# ``create`` costs ~1.3 ms per job on the development VM: 10,000 take ~15 s, too much for every
# run under the suite's 60 s timeout on a loaded 2-core runner, so this one gets its own bound.
@pytest.mark.timeout(240)
async def test_ten_thousand_mixed_jobs_are_restored_with_the_same_next_run_times(tmp_path: Path) -> None:
    await _restore(tmp_path, 10_000)


# ---------------------------------------------------------------------- DST
async def _daily_fires(tmp_path: Path, tz: str, clock: str, start: datetime, days: int) -> list[datetime]:
    """Create ``every day <clock>`` at ``start``, then fire it ``days`` times at its due times."""
    async with Store(settings(tmp_path).store_url) as store:
        scheduler = Scheduler(store, Bus(), SchedulerConfig(min_interval_seconds=0))
        spec, text = parse_every(f"day {clock} stand-up", tz, start)
        job = await scheduler.create(conversation=CONV, creator=ALICE, trigger=spec, text=text, timezone=tz, now=start)
        dues = []
        for _ in range(days):
            current = await scheduler.get(job.id)
            assert current is not None and current.next_run_at is not None
            due = current.next_run_at
            woken = due + timedelta(milliseconds=3)  # the timer wakes a little after the due time
            inbound = await scheduler.fire(job.id, [due], now=woken)
            assert inbound is not None and inbound.job is not None and inbound.job.due_at == due
            assert inbound.text == "stand-up" and not inbound.job.missed
            assert await scheduler.fire(job.id, [due], now=woken) is None  # a second timer: refused
            dues.append(due)
        return dues


def _wall(d: date, clock: time, tz: ZoneInfo) -> time:
    """``clock`` on ``d``, or the first valid time after it when the clocks skip it."""
    local = datetime.combine(d, clock, tzinfo=tz)
    return local.astimezone(UTC).astimezone(tz).time()


@pytest.mark.parametrize(
    ("tz", "first_day", "change"),
    [
        ("Europe/Berlin", date(2026, 3, 26), date(2026, 3, 29)),  # last Sunday of March
        ("Europe/Berlin", date(2026, 10, 22), date(2026, 10, 25)),  # last Sunday of October
        ("America/New_York", date(2026, 3, 5), date(2026, 3, 8)),
        ("America/New_York", date(2026, 10, 29), date(2026, 11, 1)),
    ],
)
@pytest.mark.parametrize("clock", ["9:00", "2:30", "1:30"])  # 02:xx repeats in Berlin, 01:xx in New York
async def test_a_daily_job_fires_once_per_local_day_across_a_dst_change(
    tmp_path: Path, tz: str, first_day: date, change: date, clock: str
) -> None:
    zone = ZoneInfo(tz)
    start = datetime.combine(first_day, time(0, 5), tzinfo=zone).astimezone(UTC)
    dues = await _daily_fires(tmp_path, tz, clock, start, days=7)
    local = [d.astimezone(zone) for d in dues]
    assert [d.date() for d in local] == [first_day + timedelta(days=n) for n in range(7)]
    hour, minute = map(int, clock.split(":"))
    assert [d.time() for d in local] == [_wall(d.date(), time(hour, minute), zone) for d in local]
    assert len({d.utcoffset() for d in local}) == 2  # both sides of the change
    assert change in [d.date() for d in local]


async def test_an_hourly_job_fires_every_real_hour_across_the_repeated_hour(tmp_path: Path) -> None:
    """Only fixed-time jobs skip the repeated hour; an hourly one keeps its rhythm. Fired at the
    exact due time: APScheduler's CronTrigger then answered 02:00 CEST again (the job was stuck)."""
    tz = "Europe/Berlin"
    start = datetime(2026, 10, 24, 20, 5, tzinfo=UTC)
    async with Store(settings(tmp_path).store_url) as store:
        scheduler = Scheduler(store, Bus(), SchedulerConfig(min_interval_seconds=0))
        job = await scheduler.create(
            conversation=CONV, creator=ALICE, trigger=cron_spec("0 * * * *", tz), text="tick", timezone=tz, now=start
        )
        dues = []
        for _ in range(10):
            current = await scheduler.get(job.id)
            assert current is not None and current.next_run_at is not None
            assert await scheduler.fire(job.id, [current.next_run_at], now=current.next_run_at) is not None
            dues.append(current.next_run_at)
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(dues)] == [3600.0] * 9
    walls = [d.astimezone(ZoneInfo(tz)).strftime("%H:%M %Z") for d in dues]
    assert "02:00 CEST" in walls and "02:00 CET" in walls
