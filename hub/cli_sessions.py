"""``autohands sessions list | show``: the conversations the hub keeps, and what was said.

    autohands sessions list [--channel NAME] [--limit N]
    autohands sessions show KEY [--limit N]

Both only read, beside a running hub or without one (no hub lock is taken). ``show`` prints the
conversation's history, what its agent remembers, tool calls one line each; after ``/new``
cleared it, the messages received and the replies written instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .cli_base import Command, Parser, positive_int
from .config import Settings
from .durations import human_duration
from .errors import StoreError
from .tool_calls import CallStatus, call_line

if TYPE_CHECKING:  # the store (SQLAlchemy) is imported when a command runs, not for every CLI start
    from .store.history import ConversationSummary, HistoryEntry, TranscriptEntry

_SENT_HEAD = re.compile(r"^\[sent [^\]\n]*\]\n?")
"""The time line the agent puts at the head of each user turn for the model (the entry's own
time is shown instead)."""
_INDENT = " " * 18


def _add_sessions(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    sessions = sub.add_parser("sessions", parents=[common], help="list conversations, or show one")
    actions = sessions.add_subparsers(dest="sessions_command", metavar="ACTION", parser_class=Parser)
    listing = actions.add_parser("list", parents=[common], help="conversations, most recently active first")
    listing.add_argument("--channel", metavar="NAME", help="only this channel's conversations")
    listing.add_argument("--limit", type=positive_int, default=50, metavar="N", help="at most N rows (default 50)")
    show = actions.add_parser("show", parents=[common], help="what was said in one conversation")
    show.add_argument("key", metavar="KEY", help="a conversation's key, from 'autohands sessions list'")
    show.add_argument("--limit", type=positive_int, default=50, metavar="N", help="the last N entries (default 50)")


def _sessions(settings: Settings, args: argparse.Namespace, parser: Parser) -> int:
    if args.sessions_command not in ("list", "show"):
        parser.error("'sessions' needs an action: list or show")
    try:
        return asyncio.run(_list(settings, args) if args.sessions_command == "list" else _show(settings, args))
    except StoreError as exc:
        print(f"autohands: error: {exc}", file=sys.stderr)
        return 1


async def _list(settings: Settings, args: argparse.Namespace) -> int:
    from .store import Store, history as history_sql

    async with Store.from_settings(settings, lock=False) as store:
        rows, total = await store.run_read(
            lambda c: history_sql.list_conversations(c, channel=args.channel, limit=args.limit)
        )
    if not rows:
        print(f"no conversations{f' in channel {args.channel!r}' if args.channel else ''}")
        return 0
    now = datetime.now(UTC)
    width = max(len(r.key) for r in rows)
    for row in rows:
        print(describe(row, now, width))
    if total > len(rows):
        print(f"({len(rows)} of {total} shown; --limit {total} shows all)")
    return 0


def describe(row: ConversationSummary, now: datetime, width: int = 0) -> str:
    """One conversation: key, channel, last activity, messages, tokens."""
    ago = human_duration(max(0.0, (now - row.last_activity).total_seconds()))
    tokens = row.input_tokens + row.output_tokens
    return (
        f"{_clean(row.key):<{width}}  {row.channel:<10}  active {ago} ago  {row.messages} message(s)  "
        f"{tokens:,} tokens ({row.input_tokens:,} in, {row.output_tokens:,} out)"
    )


async def _show(settings: Settings, args: argparse.Namespace) -> int:
    from .store import Store, history as history_sql

    async with Store.from_settings(settings, lock=False) as store:
        summary = await store.run_read(lambda c: history_sql.conversation(c, args.key))
        if summary is None:
            print(f"autohands: error: no conversation {args.key!r} (see 'autohands sessions list')", file=sys.stderr)
            return 1
        entries, total = await store.run_read(lambda c: history_sql.history(c, args.key, args.limit))
        said = [] if entries else await store.run_read(lambda c: history_sql.transcript(c, args.key, args.limit))
    print(describe(summary, datetime.now(UTC)))
    if entries:
        if total > len(entries):
            print(f"(the last {len(entries)} of {total} history entries; --limit {total} shows all)")
        for line in history_lines(entries):
            print(line)
    elif said:
        print("(no history kept: /new cleared it, or the agent never answered; messages and replies follow)")
        for line in transcript_lines(said):
            print(line)
    else:
        print("(nothing said yet)")
    return 0


def history_lines(entries: list[HistoryEntry]) -> Iterator[str]:
    """The history readably: when, who, what; each tool call one line under its message."""
    results = _results(entries)
    for entry in entries:
        when = _when(entry.created_at)
        data = entry.data
        if entry.kind == "user":
            yield from _message(when, "user", _SENT_HEAD.sub("", str(data.get("text", ""))))
        elif entry.kind == "assistant":
            calls = [c for c in data.get("tool_calls") or () if isinstance(c, Mapping)]
            text = str(data.get("text") or "")
            if text.strip() or not calls:
                yield from _message(when, "assistant", text)
                when = ""
            for call in calls:
                status, reason = results.get(str(call.get("id")), (None, ""))
                line = call_line(str(call.get("name", "?")), str(call.get("arguments", "")), status, reason)
                yield f"{when:<{len(_INDENT)}}{line}"
                when = ""
        elif entry.kind == "summary":
            yield from _message(
                when, "summary", f"(of {data.get('replaced', '?')} earlier entries) {data.get('text', '')}"
            )
        elif entry.kind != "tool_results":  # results are shown with their calls
            yield from _message(when, entry.kind, json.dumps(data, ensure_ascii=False))


def _results(entries: list[HistoryEntry]) -> dict[str, tuple[CallStatus, str]]:
    """Each tool call's outcome by call id, from the ``tool_results`` entries (a refused call's
    result starts ``denied:``, as ``agents/approvals.py`` writes it for the model)."""
    found: dict[str, tuple[CallStatus, str]] = {}
    for entry in entries:
        if entry.kind != "tool_results":
            continue
        for r in entry.data.get("results") or ():
            if not isinstance(r, Mapping):
                continue
            content = str(r.get("content", ""))
            if not r.get("is_error"):
                found[str(r.get("call_id"))] = ("ok", "")
            elif content.startswith("denied: "):
                found[str(r.get("call_id"))] = ("refused", content.removeprefix("denied: "))
            else:
                found[str(r.get("call_id"))] = ("failed", content)
    return found


def transcript_lines(said: list[TranscriptEntry]) -> Iterator[str]:
    for entry in said:
        status = "" if entry.status in ("answered", "sent") else f" [{entry.status}]"
        who = entry.who if entry.from_user else "reply"
        yield from _message(_when(entry.at), f"{who}{status}", entry.text)


def _message(when: str, who: str, text: str) -> Iterator[str]:
    first, *rest = _clean(text).split("\n")
    yield f"{when:<{len(_INDENT)}}{_clean(who)}: {first}"
    for line in rest:
        yield f"{_INDENT}{line}"


def _when(at: datetime) -> str:
    return at.astimezone().strftime("%Y-%m-%d %H:%M")


def _clean(text: str) -> str:
    """``text`` safe for a terminal: control characters (escape sequences a chat user may have
    typed) become ``?``; line breaks and tabs stay."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch in "\n\t" else "?" for ch in text)


SESSIONS = Command("sessions", _add_sessions, _sessions)
