"""The scheduler inside a real Hub (store, bus, sessions, outbox) with a recording channel."""

from __future__ import annotations

import asyncio
import re
from argparse import Namespace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from hub.bus import Bus
from hub.cli_jobs import cli_jobs
from hub.errors import ConfigError
from hub.messages import utcnow
from hub.scheduler import Scheduler, SchedulerConfig
from hub.scheduler.timeparse import TriggerSpec, interval_spec
from hub.store import Store, jobs as sj
from tests.hub.scheduler_support import (
    ADMIN,
    ALICE,
    BOB,
    CONV,
    THREAD,
    RecordingChannel,
    ask,
    make_hub,
    settings,
)

JOB_ID = re.compile(r"Job ([2-9a-z]{6})")


def job_id_of(reply: str) -> str:
    m = JOB_ID.search(reply)
    assert m, reply
    return m.group(1)


async def test_one_shot_reminder_arrives_in_origin_thread(tmp_path: Path) -> None:
    ch = RecordingChannel()
    async with make_hub(tmp_path, ch) as hub:
        reply = await ask(hub, ch, "remind", "in 0.3s to stretch your legs", conv=THREAD)
        assert reply.startswith("OK — at ") and "stretch your legs" in reply
        jid = job_id_of(reply)
        await ch.wait_for(lambda: "stretch your legs" in ch.texts(THREAD), within=4)
        out = ch.sent[-1]
        assert out.conversation == THREAD and out.text == "stretch your legs"
        job = await hub.scheduler.get(jid)
        assert job is not None and not job.active and job.fire_count == 1
        assert await hub.store.run_read(lambda c: sj.count_fires(c, jid)) == 1


async def test_recurring_job_fires_repeatedly_then_cancelled(tmp_path: Path) -> None:
    ch = RecordingChannel()
    async with make_hub(tmp_path, ch) as hub:
        reply = await ask(hub, ch, "every", "0.1s tick")
        assert "every 0.1 seconds" in reply
        jid = job_id_of(reply)
        await ch.wait_for(lambda: ch.texts().count("tick") >= 3, within=4)
        assert (await ask(hub, ch, "cancel", jid)).startswith(f"Cancelled job {jid}")
        count = ch.texts().count("tick")
        await asyncio.sleep(0.3)  # would have fired twice more
        # at most a fire committed just before the cancel is still on its way; none after it
        assert ch.texts().count("tick") <= count + 1
        assert hub.scheduler._aps.get_job(jid) is None


async def test_commands_and_bad_input(tmp_path: Path) -> None:
    ch = RecordingChannel()
    async with make_hub(tmp_path, ch, min_interval_seconds=60, max_jobs_per_user=3) as hub:
        assert (await ask(hub, ch, "remind")).startswith("Usage: /remind <when> <what>")
        bad = await ask(hub, ch, "remind", "blah blah call Ana")
        assert "could not read a time" in bad and "tomorrow 9am" in bad
        assert "say what to remind you of" in await ask(hub, ch, "remind", "in 10m")
        assert "has passed" in await ask(hub, ch, "remind", "2020-01-01 10:00 too late")
        assert "could not read a schedule" in await ask(hub, ch, "every", "sometimes water plants")
        assert "at most every 60 s" in await ask(hub, ch, "every", "10s spam")
        assert "at what time" in await ask(hub, ch, "every", "weekday standup")
        assert "5 fields" in await ask(hub, ch, "every", 'cron: "0 9 *" x')
        assert "Usage: /cancel" in await ask(hub, ch, "cancel")
        assert "no active job 'zzzzzz'; /jobs lists" in await ask(hub, ch, "cancel", "zzzzzz")
        assert "unknown time zone" in await ask(hub, ch, "tz", "Mars/Olympus")
        assert "No scheduled jobs" in await ask(hub, ch, "jobs")

        assert await ask(hub, ch, "tz") == "Time zone here: UTC. Change it with /tz Europe/Berlin"
        assert await ask(hub, ch, "tz", "Europe/Berlin") == "Time zone set to Europe/Berlin."
        r1 = await ask(hub, ch, "remind", "tomorrow 9am standup notes")
        assert "09:00 CET" in r1 or "09:00 CEST" in r1
        r2 = await ask(hub, ch, "every", "weekday 9:00 stand-up time")
        assert "every weekday at 09:00" in r2
        r3 = await ask(hub, ch, "every", 'cron: "30 8 * * 1-5" agent: summarise the news')
        listing = await ask(hub, ch, "jobs")
        assert listing.startswith("Scheduled jobs (times in Europe/Berlin):")
        for r in (r1, r2, r3):
            assert job_id_of(r) in listing
        assert "(repeats)" in listing and "summarise the news" in listing
        job3 = await hub.scheduler.get(job_id_of(r3))
        assert job3 is not None and job3.action == "agent" and job3.timezone == "Europe/Berlin"
        assert job3.trigger_args == {"expr": "30 8 * * mon,tue,wed,thu,fri"}  # crontab 1-5 = Mon-Fri
        assert "3 active jobs, the most allowed" in await ask(hub, ch, "remind", "in 1h one too many")
        # Another conversation's listing does not show these.
        assert "No scheduled jobs" in await ask(hub, ch, "jobs", conv=THREAD)


async def test_remind_every_is_the_every_command(tmp_path: Path) -> None:
    # "/remind every day at 9am …" is what people type; it used to answer "could not read a time".
    ch = RecordingChannel()
    async with make_hub(tmp_path, ch) as hub:
        r = await ask(hub, ch, "remind", "every day at 9am stand up")
        assert r.startswith("OK — every day at 09:00, next ") and ": stand up" in r
        job = await hub.scheduler.get(job_id_of(r))
        assert job is not None and job.trigger_kind == "cron" and job.trigger_args == {"expr": "0 9 * * *"}
        assert (await ask(hub, ch, "remind", "every")).startswith("Usage: /every <schedule> <what>")
        assert "could not read a schedule" in await ask(hub, ch, "remind", "every sometimes water plants")


async def test_only_creator_or_admin_can_cancel(tmp_path: Path) -> None:
    ch = RecordingChannel()
    async with make_hub(tmp_path, ch) as hub:
        jid = job_id_of(await ask(hub, ch, "remind", "in 1h water plants"))
        refused = await ask(hub, ch, "cancel", jid, sender=BOB)
        assert refused == f"Sorry: only Alice or an admin can cancel job {jid}"
        assert (await hub.scheduler.get(jid)).active
        jid2 = job_id_of(await ask(hub, ch, "remind", "in 2h feed cat"))
        assert (await ask(hub, ch, "cancel", jid2, sender=ADMIN)).startswith(f"Cancelled job {jid2}")
        assert (await ask(hub, ch, "cancel", jid.upper())).startswith(f"Cancelled job {jid}")


async def test_job_survives_restart_and_fires_exactly_once(tmp_path: Path) -> None:
    ch1 = RecordingChannel()
    async with make_hub(tmp_path, ch1) as hub:
        jid = job_id_of(await ask(hub, ch1, "remind", "in 1s after the restart"))
    ch2 = RecordingChannel()
    async with make_hub(tmp_path, ch2) as hub:
        await ch2.wait_for(lambda: "after the restart" in ch2.texts(), within=5)
        await asyncio.sleep(0.3)
        assert ch2.texts().count("after the restart") == 1
        assert await hub.store.run_read(lambda c: sj.count_fires(c, jid)) == 1
    ch3 = RecordingChannel()
    async with make_hub(tmp_path, ch3) as hub:  # a third start: nothing left to fire or resume
        await asyncio.sleep(0.3)
        assert ch3.sent == [] and hub.scheduler.fired == 0
    assert "after the restart" not in ch1.texts()


async def _seed(tmp_path: Path, spec: TriggerSpec, *, created: datetime, text: str) -> str:
    """Store a job while no hub runs (as if created before the hub went down)."""
    async with Store(settings(tmp_path).store_url) as store:
        scheduler = Scheduler(store, Bus(), SchedulerConfig(min_interval_seconds=0))
        job = await scheduler.create(
            conversation=CONV, creator=ALICE, trigger=spec, text=text, timezone="Europe/Berlin", now=created
        )
        return job.id


async def test_missed_one_shot_inside_grace_fires_late_once(tmp_path: Path) -> None:
    now = utcnow()
    due = now - timedelta(minutes=5)
    jid = await _seed(
        tmp_path,
        TriggerSpec(kind="date", args={"run_at": due.isoformat()}, description="once"),
        created=now - timedelta(hours=1),
        text="call Ana",
    )
    ch = RecordingChannel()
    async with make_hub(tmp_path, ch, grace_seconds=3600) as hub:
        await ch.wait_for(lambda: len(ch.sent) >= 1)
        assert ch.sent[0].text.startswith("call Ana\n\n(This was due ")
        assert "5 min late (the hub was offline)" in ch.sent[0].text
        job = await hub.scheduler.get(jid)
        assert job is not None and not job.active


async def test_missed_one_shot_beyond_grace_says_missed(tmp_path: Path) -> None:
    now = utcnow()
    due = now - timedelta(hours=3)
    await _seed(
        tmp_path,
        TriggerSpec(kind="date", args={"run_at": due.isoformat()}, description="once"),
        created=now - timedelta(hours=4),
        text="call Ana",
    )
    ch = RecordingChannel()
    async with make_hub(tmp_path, ch, grace_seconds=3600) as hub:
        await ch.wait_for(lambda: len(ch.sent) >= 1)
        text = ch.sent[0].text
        assert text.startswith("⏰ Missed: “call Ana” was due ") and "beyond the 60 min grace period" in text
        rows = await hub.store.run_read(
            lambda c: c.exec_driver_sql("select payload from messages where kind = 'job'").all()
        )
        assert len(rows) == 1 and '"send",' in rows[0][0] and "true" in rows[0][0]  # JobInfo.missed


async def test_missed_recurring_runs_coalesce_into_one_catch_up(tmp_path: Path) -> None:
    now = utcnow()
    created = now - timedelta(hours=5, seconds=30)
    jid = await _seed(tmp_path, interval_spec(3600, created), created=created, text="hourly check")
    ch = RecordingChannel()
    async with make_hub(tmp_path, ch) as hub:
        await ch.wait_for(lambda: len(ch.sent) >= 1)
        await asyncio.sleep(0.3)
        assert len(ch.sent) == 1
        assert "4 earlier run(s) were missed and merged into this one" in ch.sent[0].text
        job = await hub.scheduler.get(jid)
        assert job is not None and job.active and job.next_run_at is not None
        assert now < job.next_run_at <= now + timedelta(hours=1)


async def test_two_timers_for_the_same_due_time_deliver_once(tmp_path: Path) -> None:
    ch = RecordingChannel()
    async with make_hub(tmp_path, ch) as hub:
        jid = job_id_of(await ask(hub, ch, "remind", "in 1s only once please"))
        # A second scheduler on the same database (a restart racing the old process, or a
        # duplicate deployment) arms the same job: both timers fire for the same due time.
        twin = Scheduler(hub.store, hub.bus, hub.scheduler.config)
        await twin.start()
        try:
            await ch.wait_for(lambda: "only once please" in ch.texts(), within=4)
            await asyncio.sleep(0.5)
        finally:
            await twin.stop()
        assert ch.texts().count("only once please") == 1
        assert hub.scheduler.fired + twin.fired == 1 and hub.scheduler.duplicates + twin.duplicates == 1
        # Replaying the fire directly is refused as well.
        job = await hub.scheduler.get(jid)
        assert job is not None and job.last_fired_at is not None
        again = await asyncio.gather(*(s.fire(jid, [job.last_fired_at]) for s in (hub.scheduler, twin)))
        assert again == [None, None]


async def test_fire_committed_but_not_published_is_delivered_after_restart(tmp_path: Path) -> None:
    now = utcnow()
    due = now - timedelta(seconds=1)
    jid = await _seed(
        tmp_path,
        TriggerSpec(kind="date", args={"run_at": due.isoformat()}, description="once"),
        created=now - timedelta(minutes=1),
        text="killed mid-fire",
    )
    # The hub "dies" right after the fire's transaction: committed, never published.
    async with Store(settings(tmp_path).store_url) as store:
        bus = Bus()  # nobody consumes it: the session manager "died" with the process
        published = bus.subscribe("inbound")
        async with Scheduler(store, bus, SchedulerConfig()) as scheduler:
            async with asyncio.timeout(3):
                fired = await anext(published)
        assert fired.job is not None and fired.job.job_id == jid and scheduler.fired == 1
    ch = RecordingChannel()
    async with make_hub(tmp_path, ch) as hub:
        await ch.wait_for(lambda: "killed mid-fire" in ch.texts())
        await asyncio.sleep(0.3)
        assert ch.texts() == ["killed mid-fire"]
        assert hub.scheduler.fired == 0
        assert await hub.store.run_read(lambda c: sj.count_fires(c, jid)) == 1


async def test_agent_action_runs_the_agent_with_the_prompt(tmp_path: Path) -> None:
    ch = RecordingChannel()
    async with make_hub(tmp_path, ch) as hub:
        await ask(hub, ch, "remind", "in 0.3s agent: summarise the thread", conv=THREAD)
        await ch.wait_for(lambda: "echo: summarise the thread" in ch.texts(THREAD), within=4)


async def test_config_is_validated_with_key_names(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"scheduler\.default_timezone: .*unknown time zone"):
        async with make_hub(tmp_path, RecordingChannel(), default_timezone="Nowhere/Land"):
            pass
    with pytest.raises(ConfigError, match=r"scheduler\.grace_secs: unknown key \(did you mean 'grace_seconds'\?"):
        async with make_hub(tmp_path, RecordingChannel(), grace_secs=5):
            pass


async def test_cli_lists_and_cancels_beside_a_running_hub(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ch = RecordingChannel()
    async with make_hub(tmp_path, ch) as hub:
        jid = job_id_of(await ask(hub, ch, "every", "0.1s cli tick"))
        await ch.wait_for(lambda: "cli tick" in ch.texts())
        s = settings(tmp_path)
        assert await cli_jobs(s, Namespace(jobs_command="list")) == 0
        assert jid in capsys.readouterr().out
        assert await cli_jobs(s, Namespace(jobs_command="cancel", job_id=jid)) == 0
        assert f"cancelled job {jid}" in capsys.readouterr().out
        count = ch.texts().count("cli tick")
        await asyncio.sleep(0.3)  # the running hub's timer fires, finds the row cancelled, stops
        assert ch.texts().count("cli tick") <= count + 1
        assert hub.scheduler._aps.get_job(jid) is None
        assert await cli_jobs(s, Namespace(jobs_command="cancel", job_id="nosuch")) == 1
        err = capsys.readouterr().err
        assert "no active job 'nosuch'" in err and "autohands jobs list" in err and "/jobs" not in err


async def test_cli_list_says_which_jobs_are_overdue_while_the_hub_is_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = utcnow()
    ids = {}
    for name, due in (
        ("late", now - timedelta(minutes=5)),
        ("missed", now - timedelta(hours=3)),
        ("later", now + timedelta(hours=1)),
    ):
        ids[name] = await _seed(
            tmp_path,
            TriggerSpec(kind="date", args={"run_at": due.isoformat()}, description="once"),
            created=now - timedelta(hours=4),
            text=name,
        )
    ids["hourly"] = await _seed(
        tmp_path,
        interval_spec(3600, now - timedelta(hours=5, seconds=30)),
        created=now - timedelta(hours=5, seconds=30),
        text="hourly",
    )
    assert await cli_jobs(settings(tmp_path), Namespace(jobs_command="list")) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert rows[ids["hourly"]].endswith("hourly  (overdue: handled once as soon as the hub runs, then on schedule)")
    assert rows[ids["late"]].endswith("late  (overdue: it runs as soon as the hub runs)")
    assert rows[ids["missed"]].endswith(
        "missed  (missed: beyond the grace period; the hub will say so in the conversation)"
    )
    assert rows[ids["later"]].endswith(": later")
