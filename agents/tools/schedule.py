"""The ``schedule`` category: the model creates, lists and cancels scheduled jobs.

Jobs are created for the conversation the model is talking in, with the user who asked as
their creator, so the reminder (or the agent run) comes back to the same channel, chat and
thread. The hub's scheduler (``ToolContext.services.scheduler``) does the work; this module
only maps the model's arguments onto it and its ``ScheduleError`` onto ``ToolFailed``.

A one-off reminder is harmless and needs nobody's approval. A job that repeats, or that runs
the agent later, keeps acting with nobody watching, so creating one asks the user — and the
question lists the tools the job may use without asking (``tools``), which the job then
keeps as its grant. Nothing else may ask anyone during its runs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from hub.agent import JobScheduler
from hub.errors import ToolFailed
from hub.scheduler import Job, ScheduleError, local_time, zone

from .base import Approval, Risk, Tool, ToolContext
from .decorator import configure, tool


class JobSummary(BaseModel):
    id: str
    description: str
    action: str
    repeats: bool
    next_run: str | None
    """Local time in the job's zone, e.g. 'Sat 21 Nov 09:40 CET'."""
    next_run_iso: str | None
    created_by: str
    may_use: list[str]
    """Tools an agent job may use without asking (its creator approved them)."""


def _summary(job: Job) -> JobSummary:
    nxt = job.next_run_at
    return JobSummary(
        id=job.id,
        description=job.description,
        action=job.action,
        repeats=job.trigger_kind != "date",
        next_run=local_time(nxt, job.timezone) if nxt else None,
        next_run_iso=nxt.astimezone(zone(job.timezone)).isoformat() if nxt else None,
        created_by=job.creator.name or job.creator.id,
        may_use=list(job.granted_tools),
    )


def _scheduler(ctx: ToolContext) -> JobScheduler:
    found = ctx.services.scheduler if ctx.services is not None else None
    if found is None:
        raise ToolFailed("scheduling is not available in this hub (no scheduler is running)")
    return found


@tool(category="schedule", risk=Risk.LOW)
async def schedule(
    ctx: ToolContext,
    operation: Literal["create", "list", "cancel"],
    text: str | None = None,
    when: str | None = None,
    every: str | None = None,
    action: Literal["send", "agent"] = "send",
    tools: list[str] | None = None,
    job_id: str | None = None,
) -> JobSummary | list[JobSummary] | str:
    """Schedule a message or a task for later in this conversation, list its jobs, or cancel one.

    Args:
        operation: "create" a job, "list" this conversation's jobs, or "cancel" one by job_id.
        text: for create: the reminder text to send, or the prompt to run when action is "agent".
        when: for a one-off job: a time phrase in the user's time zone ("in 20 minutes",
            "tomorrow 9am", "friday 17:30") or an ISO 8601 time with offset.
        every: for a recurring job instead of when: "30m", "2h", "day 8:30", "weekday 9:00",
            "monday 10:00", or "cron: <5-field crontab>".
        action: "send" delivers text as is; "agent" runs you with text as the prompt at that time.
        tools: for an "agent" job: the tools it may use without asking when it runs (nobody is
            there to approve anything then; the user approves this list now). Others are refused.
        job_id: for cancel: the id shown by create or list.
    """
    scheduler = _scheduler(ctx)
    try:
        if operation == "list":
            return [_summary(j) for j in await scheduler.list_jobs(ctx.conversation)]
        if operation == "cancel":
            if not job_id:
                raise ToolFailed("cancel needs job_id (see operation 'list')")
            job = await scheduler.cancel(job_id, ctx.sender, channel=ctx.conversation.channel)
            return f"cancelled job {job.id}: {job.description}"
        if not text:
            raise ToolFailed("create needs text: the message to send or the prompt to run")
        job = await scheduler.create_from_phrases(
            conversation=ctx.conversation,
            creator=ctx.sender,
            text=text,
            when=when,
            every=every,
            action=action,
            granted_tools=tuple(tools or ()),
        )
        return _summary(job)
    except ScheduleError as exc:
        raise ToolFailed(str(exc)) from None


def assess_schedule(args: dict[str, Any], ctx: ToolContext) -> Approval | None:
    """Creating a job that repeats or runs the agent later asks first; the rest runs."""
    if args.get("operation") != "create":
        return None
    tools = args.get("tools") or []
    if tools and args.get("action", "send") != "agent":
        raise ToolFailed("tools can only be granted to a job whose action is 'agent'")
    repeats, runs_agent = bool(args.get("every")), args.get("action") == "agent"
    if not (repeats or runs_agent):
        return None
    what = " and ".join(
        w for w, on in (("repeats", repeats), ("runs the agent later with nobody watching", runs_agent)) if on
    )
    may_use = ", ".join(str(t) for t in tools) if tools else "none (any tool that needs approval is refused)"
    grant = f"; tools it may use without asking: {may_use}" if runs_agent else ""
    return Approval(reason=f"it creates a job that {what}{grant}", grantable=False)


def schedule_tools() -> list[Tool]:
    return [configure(schedule, assess=assess_schedule)]
