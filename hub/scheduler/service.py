"""Delayed and recurring jobs whose answers go back where they were asked.

APScheduler 3 is only the *timer* here (docs/PLATFORMS.md A1–A3). The hub's ``jobs`` table
is the source of truth; at start a reconciler loads the active jobs into an
``AsyncIOScheduler`` with the in-memory job store (the SQLAlchemy store is synchronous,
pickles callables, deletes jobs it cannot unpickle and advances a job when it is *submitted*).
All time arithmetic is APScheduler's triggers. When a timer fires for due time T, one
transaction claims ``fires(job, T)`` (a conflict means it already fired), records a ``job``
inbound for the origin conversation and advances the job; the inbound is then published and
the session manager answers it through the origin channel, chat and thread. A fire that
committed but was not published (crash) is resumed by the session manager on restart.

APScheduler does not tell a job function which due time it runs for, so every APScheduler
job targets the module-level ``_due`` with the hub's job id, and a small executor owned by
the ``Scheduler`` receives the due times (``run_times``) instead of running ``_due``. That
executor also bypasses APScheduler's misfire check: ``misfire_grace_time=None`` and
``coalesce=True`` everywhere, and lateness is judged by our own grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal

from apscheduler.executors.base import BaseExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .._lifecycle import STOP_GRACE_SECONDS, Lifecycle
from ..bus import Bus
from ..commands import CommandRegistry
from ..config import StrictBool
from ..durations import human_duration
from ..messages import ConversationRef, Inbound, JobInfo, Sender, utcnow
from ..store import SQLStoreAPI, jobs as sj
from ..store.jobs import Job
from .commands import scheduler_commands
from .timeparse import (
    ScheduleError,
    TriggerSpec,
    build_trigger,
    local_time,
    min_gap_seconds,
    parse_at,
    parse_every,
    parse_when,
    zone,
)

log = logging.getLogger(__name__)

_ID_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o, 1/l/i: ids are typed by hand
MAX_TEXT = 4000
_SLACK = timedelta(seconds=1)


class SchedulerConfig(BaseModel):
    """``[scheduler]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: StrictBool = True
    """Run scheduled jobs: the ``/remind``, ``/every``, ``/jobs``, ``/cancel`` and ``/tz``
    commands and the agent's ``schedule`` tool. ``false`` turns them all off (stored jobs are kept)."""
    default_timezone: str = Field(default="local", validate_default=True)
    """The time zone of a user who has not set one with ``/tz``: an IANA name
    (``Europe/Berlin``), or ``local`` for the host's zone (``TZ``, else ``/etc/localtime``; UTC
    when the host names none)."""
    grace_seconds: float = Field(default=3600, ge=0)
    """A run this late (hub down) still fires, noting the delay; later, the user is told it was missed."""
    late_note_seconds: float = Field(default=60, ge=0)
    """Runs later than this say how late they are."""
    max_jobs_per_user: int = Field(default=50, ge=1)
    """Active jobs one user may have at once, across all conversations; a new one is refused
    until they ``/cancel`` one. Raise it for users who schedule a lot."""
    min_interval_seconds: float = Field(default=60, ge=0)
    """Shortest time, in seconds, between two runs of a repeating job (one-off reminders are not
    limited). Lower it to allow more frequent jobs; each run of an agent job is a model call."""
    admins: tuple[str, ...] = ()
    """User ids that may cancel anyone's job (besides senders the channel marks admin)."""

    @field_validator("default_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value.strip().lower() == "local":
            return host_timezone()
        try:
            zone(value)
        except ScheduleError as exc:
            raise ValueError(str(exc)) from None
        return value


def host_timezone() -> str:
    """The host's IANA zone name (``TZ``, else ``/etc/localtime``), ``UTC`` when it names none."""
    import tzlocal  # APScheduler 3's own dependency for the same question

    named = os.environ.get("TZ", "").lstrip(":")  # read each time: tzlocal caches its answer
    try:
        name = named or tzlocal.get_localzone_name() or "UTC"
        zone(name)
    except Exception:  # an unknown or unreadable zone: the documented fallback
        return "UTC"
    return name


def _due(job_id: str) -> None:
    """Target of every APScheduler job; never called (``_FireExecutor`` receives the run times)."""


class _FireExecutor(BaseExecutor):  # type: ignore[misc, unused-ignore]  # APScheduler 3 has no types: Any
    """Hands (job id, due times) to the scheduler instead of running the job function."""

    def __init__(self, on_due: Callable[[str, list[datetime]], None]) -> None:
        super().__init__()
        self._on_due = on_due

    def submit_job(self, job: Any, run_times: list[datetime]) -> None:
        # No max_instances accounting: overlapping fires are deduplicated by the fires table.
        self._on_due(job.id, list(run_times))

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:  # pragma: no cover
        self._on_due(job.id, list(run_times))


class _QuietInfo(logging.LoggerAdapter[logging.Logger]):
    """APScheduler logs every job it adds or removes at INFO (10,000 lines at start): DEBUG here."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        super().log(logging.DEBUG if level == logging.INFO else level, msg, *args, **kwargs)


@dataclass(slots=True)
class _Armed:
    job: Job
    trigger: BaseTrigger


class Scheduler:
    """The hub's scheduler service: create, list and cancel jobs; fire them at most once each."""

    def __init__(self, store: SQLStoreAPI, bus: Bus, config: SchedulerConfig | None = None) -> None:
        self.store = store
        self.bus = bus
        self.config = config or SchedulerConfig()
        self._aps: AsyncIOScheduler | None = None
        self._armed: dict[str, _Armed] = {}
        self._due: list[tuple[str, list[datetime]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._tables_ready = False
        self._tables_lock = asyncio.Lock()
        self._life = Lifecycle("Scheduler")
        self.fired = 0
        """Job inbounds published so far (only tests read the counters)."""
        self.duplicates = 0
        """Fires refused because that due time had already fired (or the job was cancelled)."""

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> int:
        """Load every active job into the timer; returns how many were armed.

        Raises:
            RuntimeError: started before (one life: docs/ARCHITECTURE.md, "Lifecycle").
        """
        with self._life.starting():
            await self._ensure_tables()
            active = await self.store.run_read(lambda c: sj.list_jobs(c))
            aps = AsyncIOScheduler(
                timezone=UTC,
                logger=_QuietInfo(logging.getLogger(f"{__name__}.timer"), {}),
                executors={"default": _FireExecutor(self._on_due)},
                job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
            )
            self._aps = aps
            try:
                for i, job in enumerate(active):
                    self._arm(job)  # before aps.start(): queued, added in one pass at start
                    if i % 1000 == 999:
                        await asyncio.sleep(0)  # arming thousands of jobs takes a while: let channels breathe
                aps.start()
            except BaseException:
                self._aps = None
                self._armed.clear()
                if aps.running:
                    aps.shutdown(wait=False)
                raise
            log.info("scheduler started with %d active job(s)", len(active))
            return len(active)

    async def stop(self) -> None:
        """Stop the timer and let fires in progress commit. Does nothing unless running."""
        if not self._life.stopping():
            return
        aps, self._aps = self._aps, None
        assert aps is not None
        aps.shutdown(wait=False)
        flusher, self._flusher = self._flusher, None
        if flusher is not None:  # fires in progress are short transactions: let them commit
            await asyncio.wait({flusher}, timeout=STOP_GRACE_SECONDS)
            if not flusher.done():  # committed: resumed after the next start; if not: fires again then
                flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await flusher
        self._armed.clear()

    async def __aenter__(self) -> Scheduler:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _ensure_tables(self) -> None:
        if self._tables_ready:
            return
        async with self._tables_lock:
            if not self._tables_ready:
                await self.store.run_write(sj.ensure_tables)
                self._tables_ready = True

    def _arm(self, job: Job) -> None:
        if job.next_run_at is None:
            return
        try:
            trigger = build_trigger(job.trigger_kind, job.trigger_args, job.timezone)
        except (ScheduleError, ValueError, KeyError) as exc:
            log.error(
                "job %s has an unusable trigger (%s); it stays in the database, inactive in this run",
                job.id,
                exc,
            )
            return
        self._armed[job.id] = _Armed(job, trigger)
        if self._aps is not None:
            # next_run_time from the database: a due time missed while the hub was down is in
            # the past, so APScheduler submits it at once, missed runs coalesced into the last.
            self._aps.add_job(
                _due,
                trigger=trigger,
                args=(job.id,),
                id=job.id,
                replace_existing=True,
                next_run_time=job.next_run_at,
                misfire_grace_time=None,
                coalesce=True,
            )

    def _disarm(self, job_id: str) -> None:
        self._armed.pop(job_id, None)
        if self._aps is not None:
            with contextlib.suppress(JobLookupError):  # a date job removes itself once submitted
                self._aps.remove_job(job_id)

    # ----------------------------------------------------------------- firing
    def _on_due(self, job_id: str, run_times: list[datetime]) -> None:
        # Called inside APScheduler's _process_jobs: queue, and let one flusher write every
        # fire that fell due meanwhile in a single transaction (a burst costs one commit).
        self._due.append((job_id, run_times))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush(), name="scheduler-fire")

    async def _flush(self) -> None:
        while self._due:
            batch, self._due = self._due, []
            try:
                await self._fire_batch(batch)
            except Exception:
                # Not committed: the rows still say "due", so the next start fires them (late).
                log.exception("recording %d job fire(s) failed; they fire again after a restart", len(batch))

    async def fire(self, job_id: str, run_times: list[datetime], *, now: datetime | None = None) -> Inbound | None:
        """Fire ``job_id`` for the last of ``run_times`` now; see ``_fire_batch``. Only tests use this."""
        return (await self._fire_batch([(job_id, run_times)], now=now))[0]

    async def _fire_batch(
        self, batch: list[tuple[str, list[datetime]]], *, now: datetime | None = None
    ) -> list[Inbound | None]:
        """Record and publish one fire per (job, due times): the last due time, earlier ones
        coalesced. Returns each published inbound, or None (job gone, or that time already fired)."""
        now = now or utcnow()
        reqs: list[sj.FireRequest | None] = []
        for job_id, run_times in batch:
            armed = self._armed.get(job_id)
            if armed is None or not run_times:
                reqs.append(None)
                continue
            job, trigger = armed.job, armed.trigger
            due = run_times[-1].astimezone(UTC)
            nxt = trigger.get_next_fire_time(run_times[-1], now)
            runs = _runs_between(trigger, job.next_run_at, run_times[-1])
            reqs.append(
                sj.FireRequest(
                    job_id=job_id,
                    due_at=due,
                    next_run_at=nxt.astimezone(UTC) if nxt else None,
                    message_id=self.store.allocate_message_id(),
                    inbound=self._job_inbound(job, due, runs, now, nxt),
                )
            )
        todo = [r for r in reqs if r is not None]
        recorded = await self.store.run_write(lambda c: sj.record_fires(c, todo)) if todo else {}
        refused = [r.job_id for r in todo if r.message_id not in recorded]
        if refused:
            self.duplicates += len(refused)
            await self._disarm_inactive(refused)
        out: list[Inbound | None] = []
        for req in reqs:
            inbound = recorded.get(req.message_id) if req is not None else None
            if req is not None and inbound is not None:
                armed = self._armed.get(req.job_id)
                if req.next_run_at is None:
                    self._armed.pop(req.job_id, None)
                elif armed is not None:
                    armed.job = replace(armed.job, next_run_at=req.next_run_at)
                self.fired += 1
                await self.bus.publish("inbound", inbound)
            out.append(inbound)
        return out

    async def _disarm_inactive(self, job_ids: list[str]) -> None:
        """A refused fire may mean the job was cancelled elsewhere (CLI, another process)."""
        for job_id in dict.fromkeys(job_ids):
            current = await self.store.run_read(partial(sj.get_job, job_id=job_id))
            if current is None or not current.active:
                self._disarm(job_id)

    def _job_inbound(self, job: Job, due: datetime, runs: int, now: datetime, nxt: datetime | None) -> Inbound:
        late = max(0.0, (now - due).total_seconds())
        missed = late > self.config.grace_seconds
        action: Literal["send", "agent"] = job.action
        what = job.description or job.text
        if missed:
            action = "send"
            text = (
                f"⏰ Missed: “{what}” was due {local_time(due, job.timezone)}, but the hub was offline; "
                f"it is now {human_duration(late)} late, beyond the "
                f"{human_duration(self.config.grace_seconds)} grace period, so it did not run."
            )
            if nxt is not None:
                text += f" Next run: {local_time(nxt, job.timezone)}."
        else:
            text = job.text
            note = ""
            if late > self.config.late_note_seconds:
                note = (
                    f"This was due {local_time(due, job.timezone)} and is {human_duration(late)} late "
                    "(the hub was offline)."
                )
            if runs > 1:
                note += f" {runs - 1} earlier run(s) were missed and merged into this one."
            if note and action == "send":
                text = f"{text}\n\n({note.strip()})"
            elif note:
                text = f"[Scheduled task: {note.strip()}]\n{text}"
        return Inbound(
            kind="job",
            conversation=job.conversation,
            sender=job.creator,
            text=text,
            platform_id=f"job:{job.id}:{due.isoformat()}",
            received_at=now,
            job=JobInfo(
                job_id=job.id,
                action=action,
                due_at=due,
                late_seconds=late,
                missed=missed,
                description=job.description,
                granted_tools=job.granted_tools if action == "agent" else (),
            ),
        )

    # ----------------------------------------------------------------- the service API
    async def create(
        self,
        *,
        conversation: ConversationRef,
        creator: Sender,
        trigger: TriggerSpec,
        text: str,
        timezone: str,
        action: Literal["send", "agent"] = "send",
        description: str = "",
        granted_tools: tuple[str, ...] = (),
        now: datetime | None = None,
    ) -> Job:
        """Validate limits, store the job and arm its timer. Raises ``ScheduleError``.

        ``granted_tools``: for an agent job, the tools its runs may use without asking (nobody
        is there to ask); the caller has had its creator approve exactly this list."""
        text = text.strip()
        if not text:
            raise ScheduleError("say what the job should do, e.g. /remind in 10m call Ana")
        if granted_tools and action != "agent":
            raise ScheduleError("only a job that runs the agent (action 'agent') can be granted tools")
        if len(text) > MAX_TEXT:
            raise ScheduleError(f"the job text is too long ({len(text)} characters; at most {MAX_TEXT})")
        await self._ensure_tables()
        now = now or utcnow()
        trig = build_trigger(trigger.kind, trigger.args, timezone)
        first = trig.get_next_fire_time(None, now)
        if first is None or first.astimezone(UTC) <= now - _SLACK:
            raise ScheduleError("that time has already passed; give a future time")
        if trigger.kind != "date":
            gap = min_gap_seconds(trig, now)
            if gap < self.config.min_interval_seconds:
                raise ScheduleError(
                    f"jobs may repeat at most every {human_duration(self.config.min_interval_seconds)}"
                    f" (this one repeats every {human_duration(gap)})"
                )
        limit = self.config.max_jobs_per_user
        for _ in range(5):
            job = Job(
                id=_new_id(),
                conversation=conversation,
                creator=creator,
                timezone=timezone,
                description=(description or text)[:200],
                action=action,
                text=text,
                trigger_kind=trigger.kind,
                trigger_args=trigger.args,
                next_run_at=first.astimezone(UTC),
                created_at=now,
                granted_tools=tuple(dict.fromkeys(granted_tools)),
            )
            outcome = await self.store.run_write(partial(sj.insert_job, job=job, max_per_user=limit))
            if outcome == "limit":
                raise ScheduleError(
                    f"you already have {limit} active jobs, the most allowed; "
                    "cancel one first (/jobs lists them, /cancel <id>)"
                )
            if outcome == "ok":
                self._arm(job)
                log.info("job %s created (%s, %s)", job.id, trigger.kind, action)
                return job
        raise ScheduleError("could not allocate a job id; try again")  # pragma: no cover

    async def create_from_phrases(
        self,
        *,
        conversation: ConversationRef,
        creator: Sender,
        text: str,
        when: str | None = None,
        every: str | None = None,
        action: Literal["send", "agent"] = "send",
        timezone: str | None = None,
        granted_tools: tuple[str, ...] = (),
    ) -> Job:
        """The tool's entry: ``when`` (a time phrase or ISO time) or ``every`` (a recurrence)."""
        tz = timezone or await self.timezone_for(conversation)
        if bool(when) == bool(every):
            raise ScheduleError(
                "give exactly one of 'when' (a time, e.g. 'tomorrow 9am') or 'every' "
                "(a recurrence, e.g. 'weekday 9:00')"
            )
        if every:
            spec, rest = parse_every(every, tz)
            if rest:
                raise ScheduleError(f"could not read {every!r} as a recurrence (left over: {rest!r})")
        else:
            assert when is not None
            at = _parse_iso(when) or parse_at(when, tz)
            if at is None:
                at, rest = parse_when(when, tz)
                if rest:
                    raise ScheduleError(f"could not read {when!r} as a time (left over: {rest!r})")
            spec = TriggerSpec(kind="date", args={"run_at": at.isoformat()}, description="once")
        return await self.create(
            conversation=conversation,
            creator=creator,
            trigger=spec,
            text=text,
            timezone=tz,
            action=action,
            granted_tools=granted_tools,
        )

    async def list_jobs(self, conversation: ConversationRef | None = None, *, active_only: bool = True) -> list[Job]:
        await self._ensure_tables()
        key = conversation.key if conversation else None
        return await self.store.run_read(lambda c: sj.list_jobs(c, conversation_key=key, active_only=active_only))

    async def get(self, job_id: str) -> Job | None:
        await self._ensure_tables()
        return await self.store.run_read(lambda c: sj.get_job(c, job_id))

    async def cancel(
        self,
        job_id: str,
        by: Sender,
        *,
        channel: str | None = None,
        where_to_look: str = "/jobs lists this conversation's jobs",
    ) -> Job:
        """Cancel a job: only its creator (same channel and user id) or an admin may.
        ``where_to_look`` ends the not-found error: where the caller's user can list jobs."""
        job_id = job_id.strip().lower()
        job = await self.get(job_id)
        if job is None or not job.active:
            raise ScheduleError(f"there is no active job {job_id!r}; {where_to_look}")
        is_creator = by.id == job.creator.id and (channel is None or channel == job.conversation.channel)
        if not (is_creator or by.is_admin or by.id in self.config.admins):
            raise ScheduleError(f"only {job.creator.name or 'its creator'} or an admin can cancel job {job_id}")
        done = await self.store.run_write(lambda c: sj.deactivate(c, job_id, by=by.id))
        self._disarm(job_id)
        if not done:
            raise ScheduleError(f"job {job_id} is no longer active")
        log.info("job %s cancelled", job_id)
        return job

    async def timezone_for(self, conversation: ConversationRef) -> str:
        """The conversation's ``tz`` setting (``/tz``), else the configured default."""
        key = conversation.key
        tz = await self.store.run_read(lambda c: sj.conversation_setting(c, key, "tz"))
        return tz or self.config.default_timezone


def _runs_between(trigger: BaseTrigger, first: datetime | None, last: datetime, cap: int = 10_000) -> int:
    """How many due times from ``first`` to ``last`` (coalesce=True hands the executor only the last)."""
    if first is None or first >= last:
        return 1
    runs, t = 1, first
    while t is not None and t < last and runs < cap:
        t = trigger.get_next_fire_time(t, t + timedelta(microseconds=1))
        runs += 1
    return runs


def _new_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(6))


def _parse_iso(text: str) -> datetime | None:
    """An ISO time with an offset (what a model usually sends) is exact: no phrase parsing."""
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return dt.astimezone(UTC) if dt.tzinfo else None


# ---------------------------------------------------------------------------- hub wiring
def build_scheduler(
    config: SchedulerConfig, store: SQLStoreAPI, bus: Bus, commands: CommandRegistry
) -> Scheduler | None:
    """Called by ``Hub`` before the agent is built: the scheduler, its chat commands added to
    ``commands`` (names already taken are left alone); None with ``enabled = false``."""
    if not config.enabled:
        return None
    scheduler = Scheduler(store, bus, config)
    for cmd in scheduler_commands(scheduler):
        if cmd.name not in commands:
            commands.add(cmd)
    return scheduler
