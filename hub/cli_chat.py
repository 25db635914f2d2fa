"""``autohands chat``: a conversation with the agent in this terminal, on the hub's own core.

The hub runs in this process with the terminal as its only channel (no platform channel, no
server: a second Telegram poller on the same token would conflict with a running hub). Log
records go to the log file only; an error the person should know of is shown dimmed on a line
of its own, apart from the conversation. While another hub holds the database, the chat attaches
to it through its gateway's WebSocket instead (``hub/_chat_remote.py``), or says why it cannot.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from .agent import HistoryItem
from .channel import ConsoleChannel
from .cli_base import Command, Parser
from .config import Settings
from .errors import HubLockedError, StoreError
from .logs import RedactingFilter, RepeatFilter
from .messages import utcnow

if TYPE_CHECKING:
    from .app import Hub

__all__ = ["CHAT", "banner"]

WELCOME = "AutoHands terminal chat — /help for commands, Ctrl+C stops an answer, Ctrl+D leaves."


def _add_chat(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    sub.add_parser("chat", parents=[common], help="chat with the agent in this terminal")


def _chat(settings: Settings, args: argparse.Namespace, parser: Parser) -> int:
    return asyncio.run(_chat_async(settings))


def _chat_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "channels": {"terminal": {**settings.channels.get("terminal", {}), "enabled": True}},
            "server": settings.server.model_copy(update={"enabled": False}),
        }
    )


async def _chat_async(settings: Settings) -> int:
    from .app import Hub

    hub = Hub(_chat_settings(settings))
    try:
        await hub.start()
    except HubLockedError as exc:
        from ._chat_remote import CannotAttach, attach

        try:  # through its gateway instead (hub/_chat_remote.py)
            return await attach(settings)
        except CannotAttach as why:
            raise StoreError(
                f"the hub running on this database ({exc.holder}) holds it, and the chat cannot attach "
                f"to it: {why}; stop the hub first, or chat on data of your own: "
                "autohands chat --config OTHER.toml, with its own [hub] data_dir (or [store] url)"
            ) from None
    try:
        terminal = hub.channels["terminal"]
        console = terminal if isinstance(terminal, ConsoleChannel) else None
        history = await hub.store.load_session(console.conversation.key) if console else None
        print(banner(history.history if history else ()), file=sys.stderr)
        if console is None:
            await hub.wait_stopped()
            return 0
        return await _converse(hub, console)
    finally:
        await hub.stop()


async def _converse(hub: Hub, console: ConsoleChannel) -> int:
    """Run the chat until the person leaves: 130 when they left with Ctrl+C."""
    left_with_ctrl_c = False

    def on_ctrl_c() -> None:
        # Ctrl+C stops the answer in progress, as in other chat tools; at the prompt (or
        # pressed again) it leaves, without waiting for the line being typed.
        nonlocal left_with_ctrl_c
        if not console.interrupt():
            left_with_ctrl_c = True
            hub.request_stop()

    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # no add_signal_handler on Windows
        loop.add_signal_handler(signal.SIGINT, on_ctrl_c)
    errors = _ErrorsToConsole(console, loop)
    root = logging.getLogger()
    root.addHandler(errors)
    root.setLevel(min(root.level, logging.ERROR))
    console.begin()
    waiters = [asyncio.ensure_future(hub.wait_stopped()), asyncio.ensure_future(console.closed.wait())]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        root.removeHandler(errors)
        for w in waiters:
            w.cancel()
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(signal.SIGINT)
    return 130 if left_with_ctrl_c else 0  # 128 + SIGINT, as a shell reports an interrupted command


class _ErrorsToConsole(logging.Handler):
    """Error records as one line each in the chat (the log file has them whole)."""

    def __init__(self, console: ConsoleChannel, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(logging.ERROR)
        self._console, self._loop = console, loop
        # The log's own filters have redacted a record by now unless its repeat filter held it
        # back; this one holds back the same records, so nothing unredacted gets through.
        self.addFilter(RepeatFilter())
        self.addFilter(RedactingFilter())

    def emit(self, record: logging.LogRecord) -> None:
        first = (record.getMessage().strip().splitlines() or [""])[0]
        with contextlib.suppress(RuntimeError):  # the loop has closed: the chat is over
            self._loop.call_soon_threadsafe(self._console.note, f"[error] {first}")


def banner(history: Sequence[HistoryItem], now: datetime | None = None) -> str:
    """The chat's first lines; when the conversation goes on from an earlier one, they say so."""
    if not history:
        return WELCOME
    # Messages are what carries text (the person's, the agent's, a summary), not tool results.
    said = [item for item in history if isinstance(item.data.get("text"), str) and item.data["text"]]
    when = _when(history[-1].created_at, now or utcnow())
    return f"{WELCOME}\nContinuing your conversation from {when} ({len(said)} messages) — /new starts afresh."


def _when(at: datetime, now: datetime) -> str:
    local, today = at.astimezone(), now.astimezone()
    clock = local.strftime("%H:%M")
    days = (today.date() - local.date()).days
    if days == 0:
        return f"today at {clock}"
    if days == 1:
        return f"yesterday at {clock}"
    day = local.strftime("%a %d %b" if local.year == today.year else "%a %d %b %Y")
    return f"{day} at {clock}"


CHAT = Command("chat", _add_chat, _chat, log_level="OFF", offers_setup=True)
"""``log_level="OFF"``: nothing on stderr unless ``--log-level`` asks; the file keeps it all."""
