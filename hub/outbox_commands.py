"""``autohands outbox list | retry``: see the replies not sent yet, and resend the failed ones.

    autohands outbox list [--failed | --pending] [--limit N]
    autohands outbox retry ID [ID ...] | --all-failed

Both work beside a running hub (the database is the meeting point): ``retry`` sets failed rows
back to pending and asks for them under a ``state`` key, which the running hub takes every
``[outbox] resend_check_seconds``; with no hub running, the next ``autohands run`` sends them
with the rest of its pending replies.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .cli_base import Command, Parser, positive_int
from .config import OutboxSection, Settings
from .durations import human_duration
from .errors import HubLockedError, StoreError

if TYPE_CHECKING:  # the store (SQLAlchemy) is imported when a command runs, not for every CLI start
    from .store import Store
    from .store.outbox import OutboxEntry

RETRY_HELP = (
    "Set failed replies back to pending. A running hub sends them within [outbox] "
    f"resend_check_seconds ({OutboxSection().resend_check_seconds:g} s by default); with no hub "
    "running, the next 'autohands run' sends them first. Ids come from 'autohands outbox list --failed'."
)


def _add_outbox(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    """The ``outbox`` command and its two actions, under the CLI's subcommands ``sub``."""
    outbox = sub.add_parser("outbox", parents=[common], help="replies not sent yet, or given up on")
    actions = outbox.add_subparsers(dest="outbox_command", metavar="ACTION", parser_class=Parser)
    listing = actions.add_parser("list", parents=[common], help="list failed and pending replies, newest first")
    which = listing.add_mutually_exclusive_group()
    which.add_argument("--failed", action="store_true", help="only the replies given up on")
    which.add_argument("--pending", action="store_true", help="only the replies still being sent")
    listing.add_argument("--limit", type=positive_int, default=50, metavar="N", help="at most N rows (default 50)")
    retry = actions.add_parser("retry", parents=[common], help="resend failed replies", description=RETRY_HELP)
    retry.add_argument("ids", nargs="*", metavar="ID", help="a failed reply's id")
    retry.add_argument("--all-failed", action="store_true", help="every failed reply")


def _outbox(settings: Settings, args: argparse.Namespace, parser: Parser) -> int:
    return asyncio.run(cli_outbox(settings, args, parser))


async def cli_outbox(settings: Settings, args: argparse.Namespace, parser: Parser) -> int:
    """Run ``autohands outbox <action>``; one line per row, one line per error, exit 0 or 1."""
    if args.outbox_command == "list":
        return await _list(settings, args)
    if args.outbox_command != "retry":
        parser.error("'outbox' needs an action: list or retry")
    if bool(args.ids) == bool(args.all_failed):
        parser.error("'outbox retry' takes reply ids or --all-failed (one of the two)")
    return await _retry(settings, None if args.all_failed else args.ids)


async def _list(settings: Settings, args: argparse.Namespace) -> int:
    from .store import Store, outbox as outbox_sql

    statuses = ["failed"] if args.failed else ["pending"] if args.pending else ["failed", "pending"]
    try:
        async with Store.from_settings(settings, lock=False) as store:
            entries, total = await store.run_read(lambda c: outbox_sql.list_entries(c, statuses, args.limit))
    except StoreError as exc:
        return _error(str(exc))
    if not entries:
        print(f"no {' or '.join(statuses)} replies")
    now = datetime.now(UTC)
    for entry in entries:
        print(describe(entry, now))
    if total > len(entries):
        print(f"({len(entries)} of {total} shown; --limit {total} shows all)")
    return 0


async def _retry(settings: Settings, ids: Sequence[str] | None) -> int:
    from .store import outbox as outbox_sql

    try:
        store, running = await _open_beside_hub(settings)
        try:
            entries, problems = await store.run_write(lambda c: outbox_sql.resend(c, ids))
        finally:
            await store.stop()
    except StoreError as exc:
        return _error(str(exc))
    if problems:
        return _error("; ".join(problems) + " (nothing was resent; see 'autohands outbox list --failed')")
    if not entries:
        print("no failed replies")
        return 0
    now = datetime.now(UTC)
    for entry in entries:
        print(describe(entry, now))
    when = (
        f"the running hub ({running}) sends them within {settings.outbox.resend_check_seconds:g} s"
        if running
        else "the hub sends them when it starts ('autohands run')"
    )
    print(f"{len(entries)} repl{'y' if len(entries) == 1 else 'ies'} set back to pending; {when}")
    return 0


async def _open_beside_hub(settings: Settings) -> tuple[Store, str]:
    """A started store, and who runs a hub on it ("" if nobody: then this command holds the lock)."""
    from .store import Store

    store = Store.from_settings(settings)
    try:
        await store.start()
    except HubLockedError as exc:
        store = Store.from_settings(settings, lock=False)
        await store.start()
        return store, exc.holder
    return store, ""


def describe(entry: OutboxEntry, now: datetime) -> str:
    """One row: id, status, channel, conversation, attempts, age, error."""
    error = " ".join(entry.error.split()) or "-"
    age = human_duration(max(0.0, (now - entry.created_at).total_seconds()))
    return (
        f"{entry.id}  {entry.status:<7}  {entry.channel}  {entry.conversation_key}  "
        f"attempts {entry.attempts}  age {age}  {error}"
    )


def _error(message: str) -> int:
    print(f"autohands: error: {message}", file=sys.stderr)
    return 1


OUTBOX = Command("outbox", _add_outbox, _outbox)
