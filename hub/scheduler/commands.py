"""The scheduler's slash commands (they work without any model).

    /remind <when> <what>     /every <schedule> <what>     /jobs     /cancel <id>     /tz [zone]

``<what>`` starting with ``agent:`` runs the agent with the rest as its prompt instead of
sending the text as is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ..commands import Command, CommandCall
from ..store.jobs import Job
from .timeparse import (
    EVERY_EXAMPLES,
    WHEN_EXAMPLES,
    ScheduleError,
    TriggerSpec,
    local_time,
    parse_every,
    parse_when,
    zone,
)

if TYPE_CHECKING:
    from .service import Scheduler


def scheduler_commands(scheduler: Scheduler) -> list[Command]:
    def tz_of(call: CommandCall) -> str:
        return call.session.settings.get("tz") or scheduler.config.default_timezone

    def split_action(what: str) -> tuple[Literal["send", "agent"], str]:
        if what.lower().startswith("agent:"):
            return "agent", what[6:].strip()
        return "send", what

    async def create(call: CommandCall, spec: TriggerSpec, what: str, tz: str) -> str:
        action, text = split_action(what)
        job = await scheduler.create(
            conversation=call.inbound.conversation,
            creator=call.inbound.sender,
            trigger=spec,
            text=text,
            timezone=tz,
            action=action,
        )
        assert job.next_run_at is not None
        # A one-off fires once: "next" would suggest it repeats.
        when = "at " if spec.kind == "date" else f"{spec.description}, next "
        return (
            f"OK — {when}{local_time(job.next_run_at, tz)}: {job.description}\n"
            f"Job {job.id} (cancel with /cancel {job.id})"
        )

    async def remind(call: CommandCall) -> str:
        tz = tz_of(call)
        if not call.args.strip():
            return f"Usage: /remind <when> <what>. When: {WHEN_EXAMPLES}"
        head, _, rest = call.args.strip().partition(" ")
        if head.lower() == "every":  # "/remind every day at 9am stand up": what people type
            return await every_of(call, rest, tz)
        try:
            when, what = parse_when(call.args, tz)
            if not what:
                raise ScheduleError(f"say what to remind you of, e.g. /remind {call.args.strip()} call Ana")
            return await create(
                call,
                TriggerSpec(kind="date", args={"run_at": when.isoformat()}, description="once"),
                what,
                tz,
            )
        except ScheduleError as exc:
            return f"Sorry: {exc}"

    async def every(call: CommandCall) -> str:
        return await every_of(call, call.args, tz_of(call))

    async def every_of(call: CommandCall, args: str, tz: str) -> str:
        if not args.strip():
            return f"Usage: /every <schedule> <what>. Schedule: {EVERY_EXAMPLES}"
        try:
            spec, what = parse_every(args, tz)
            if not what:
                raise ScheduleError("say what to do each time, e.g. /every weekday 9:00 stand-up time")
            return await create(call, spec, what, tz)
        except ScheduleError as exc:
            return f"Sorry: {exc}"

    async def jobs(call: CommandCall) -> str:
        tz = tz_of(call)
        found = await scheduler.list_jobs(call.inbound.conversation)
        if not found:
            return "No scheduled jobs in this conversation. Create one with /remind or /every."
        lines = [f"Scheduled jobs (times in {tz}):"]
        for j in found:
            when = local_time(j.next_run_at, tz) if j.next_run_at else "-"
            repeat = "" if j.trigger_kind == "date" else " (repeats)"
            lines.append(
                f"{j.id} — {when}{repeat} — {j.description} (by {j.creator.name or j.creator.id}){granted_note(j)}"
            )
        return "\n".join(lines)

    async def cancel(call: CommandCall) -> str:
        job_id = call.args.strip()
        if not job_id:
            return "Usage: /cancel <job id> (see /jobs)"
        try:
            job = await scheduler.cancel(job_id, call.inbound.sender, channel=call.inbound.conversation.channel)
        except ScheduleError as exc:
            return f"Sorry: {exc}"
        return f"Cancelled job {job.id}: {job.description}"

    async def tz(call: CommandCall) -> str:
        name = call.args.strip()
        if not name:
            return f"Time zone here: {tz_of(call)}. Change it with /tz Europe/Berlin"
        try:
            zone(name)
        except ScheduleError as exc:
            return f"Sorry: {exc}"
        await call.session.set_setting("tz", name)
        return f"Time zone set to {name}."

    return [
        Command(name="remind", description="remind this conversation later", handler=remind, usage="<when> <what>"),
        Command(
            name="every",
            description="repeat a message on a schedule",
            handler=every,
            usage="<schedule> <what>",
        ),
        Command(name="jobs", description="this conversation's scheduled jobs", handler=jobs),
        Command(name="cancel", description="cancel a scheduled job", handler=cancel, usage="<id>"),
        Command(name="tz", description="show or set this conversation's time zone", handler=tz, usage="[zone]"),
    ]


def granted_note(job: Job) -> str:
    """What an agent job may do without asking, for the listings."""
    if job.action != "agent":
        return ""
    return f" [may use without asking: {', '.join(job.granted_tools) or 'nothing'}]"
