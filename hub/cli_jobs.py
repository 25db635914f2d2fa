"""``autohands jobs list | cancel <id>``: the scheduled jobs, from the command line.

    autohands jobs list
    autohands jobs cancel ID

Both work beside a running hub: the database decides (see ``cli_jobs``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .cli_base import Command, Parser
from .config import Settings

if TYPE_CHECKING:  # the scheduler (APScheduler, the store) is imported when a command runs
    from .scheduler import Job, SchedulerConfig


def _add_jobs(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    """The ``jobs`` command and its two actions, under the CLI's subcommands ``sub``."""
    jobs = sub.add_parser("jobs", parents=[common], help="scheduled jobs")
    actions = jobs.add_subparsers(dest="jobs_command", metavar="ACTION", parser_class=Parser)
    actions.add_parser("list", parents=[common], help="list scheduled jobs")
    cancel = actions.add_parser("cancel", parents=[common], help="cancel a job")
    cancel.add_argument("job_id")


def _jobs(settings: Settings, args: argparse.Namespace, parser: Parser) -> int:
    if args.jobs_command not in ("list", "cancel"):
        parser.error("'jobs' needs an action: list or cancel")
    return asyncio.run(cli_jobs(settings, args))


async def cli_jobs(settings: Settings, args: argparse.Namespace) -> int:
    """``autohands jobs list|cancel <id>``; works beside a running hub (the database decides)."""
    from .bus import Bus
    from .config import validate_section
    from .errors import StoreError
    from .messages import Sender
    from .scheduler import ScheduleError, Scheduler, SchedulerConfig, granted_note, local_time
    from .store import Store

    config = validate_section(SchedulerConfig, settings.scheduler, "scheduler")
    # No hub lock: reads are safe beside a running hub (WAL), and a cancel is honoured by it
    # because every fire re-checks the job's row in its own transaction.
    store = Store.from_settings(settings, lock=False)
    try:
        async with store:
            scheduler = Scheduler(store, Bus(), config)
            if args.jobs_command == "cancel":
                try:
                    job = await scheduler.cancel(
                        args.job_id,
                        Sender(id="cli", name="operator", is_admin=True),
                        where_to_look="'autohands jobs list' shows every active job",
                    )
                except ScheduleError as exc:
                    print(f"autohands: error: {exc}", file=sys.stderr)
                    return 1
                print(f"cancelled job {job.id}: {job.description}")
                return 0
            jobs = await scheduler.list_jobs()
            if not jobs:
                print("no active jobs")
            now = datetime.now(UTC)
            for j in jobs:
                nxt = local_time(j.next_run_at, j.timezone) if j.next_run_at else "-"
                print(
                    f"{j.id}  {nxt:<26} {j.trigger_kind:<8} {j.action:<5} {j.conversation.key}  "
                    f"by {j.creator.name or j.creator.id}: {j.description}{granted_note(j)}{_overdue(j, now, config)}"
                )
            return 0
    except StoreError as exc:
        print(f"autohands: error: {exc}", file=sys.stderr)
        return 1


def _overdue(job: Job, now: datetime, config: SchedulerConfig) -> str:
    """Why a listed job's time has passed: the hub is down (or just starting), and what it will do."""
    due = job.next_run_at
    if due is None or due > now:
        return ""
    if job.trigger_kind != "date":  # runs it missed are coalesced into one, judged by the latest
        return "  (overdue: handled once as soon as the hub runs, then on schedule)"
    if (now - due).total_seconds() <= config.grace_seconds:
        return "  (overdue: it runs as soon as the hub runs)"
    return "  (missed: beyond the grace period; the hub will say so in the conversation)"


JOBS = Command("jobs", _add_jobs, _jobs)
