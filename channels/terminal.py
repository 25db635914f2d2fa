"""A terminal chat: one local conversation on stdin/stdout (``autohands chat``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import uuid
from pathlib import Path
from typing import ClassVar, TextIO

from pydantic import BaseModel, ConfigDict

from hub.messages import ConversationRef, Delivery, Inbound, Outbound, Sender, parse_command
from hub.plugins import Capabilities, ChannelContext, Inbox, Manifest

log = logging.getLogger(__name__)


class TerminalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    user_name: str = "you"
    prompt: str = "> "
    history_file: str = "chat_history"
    """Readline history, relative to the data directory."""


class TerminalChannel:
    config_model: ClassVar[type[BaseModel]] = TerminalConfig
    manifest: ClassVar[Manifest] = Manifest(id="terminal", description="Chat in the terminal (stdin/stdout).")
    capabilities = Capabilities(max_length=100_000, dialect="plain", edits=False, buttons=False)

    def __init__(self, name: str, config: TerminalConfig, context: ChannelContext,
                 *, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
        self.name = name
        self.config = config
        self._context = context
        self._in = stdin or sys.stdin
        self._out = stdout or sys.stdout
        self._reader: asyncio.Task[None] | None = None
        self._streams: dict[str, str] = {}
        self._awaiting: set[str] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.closed = asyncio.Event()
        """Set when the user ended the chat (EOF / ``/quit``) and every answer has been shown."""
        self.conversation = ConversationRef(channel=name, chat="local")

    async def start(self, inbox: Inbox) -> None:
        for stream in (self._in, self._out):
            # Bytes that are not valid UTF-8 (a pasted binary, a Latin-1 file piped in) become
            # U+FFFD instead of an exception that would end the reader mid-chat.
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(errors="replace")
        self._setup_readline()
        self._reader = asyncio.create_task(self._read_loop(inbox), name="terminal-reader")

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        self._save_readline()

    def _interactive(self) -> bool:
        return hasattr(self._in, "isatty") and self._in.isatty()

    def _setup_readline(self) -> None:
        if not self._interactive():
            return
        try:
            import readline
        except ImportError:  # pragma: no cover - not on every platform
            return
        path = Path(self._context.data_dir) / self.config.history_file
        with contextlib.suppress(OSError):
            readline.read_history_file(path)

    def _save_readline(self) -> None:
        if not self._interactive():
            return
        try:
            import readline
        except ImportError:  # pragma: no cover
            return
        path = Path(self._context.data_dir) / self.config.history_file
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(path)

    def _read_line(self) -> str | None:
        if self._interactive():
            try:
                return input(self.config.prompt)
            except EOFError:
                return None
        line = self._in.readline()
        return line.rstrip("\n") if line else None

    async def _read_loop(self, inbox: Inbox) -> None:
        try:
            await self._read_lines(inbox)
        except Exception as exc:  # the chat must end with a reason, not wait forever on a dead reader
            log.error("terminal chat: cannot read input (%s: %s); leaving", type(exc).__name__, exc)
            self.closed.set()

    async def _read_lines(self, inbox: Inbox) -> None:
        sender = Sender(id="local", name=self.config.user_name, is_admin=True)
        while True:
            if self._interactive():
                await self._idle.wait()  # show the answer before the next prompt
            line = await asyncio.to_thread(self._read_line)
            if line is None or line.strip() in ("/quit", "/exit"):
                break
            text = line.strip()
            if not text:
                continue
            platform_id = f"term:{uuid.uuid4().hex}"
            cmd = parse_command(text)
            inbound = Inbound(
                kind="command" if cmd else "message", conversation=self.conversation, sender=sender,
                text=cmd[1] if cmd else text, command=cmd[0] if cmd else None,
                platform_id=platform_id, reply_to=platform_id, direct=True, mentioned=True,
            )
            self._awaiting.add(platform_id)
            self._idle.clear()
            await inbox(inbound)
        await self._idle.wait()
        self.closed.set()

    async def send(self, msg: Outbound) -> Delivery:
        if msg.typing:
            return Delivery()
        if not msg.final:
            key = msg.stream or msg.id
            shown = self._streams.get(key, "")
            if msg.text.startswith(shown):
                self._write(msg.text[len(shown):], end="")
                self._streams[key] = msg.text
            return Delivery()
        shown = self._streams.pop(msg.stream, "") if msg.stream else ""
        if shown and msg.text.startswith(shown):
            self._write(msg.text[len(shown):])
        else:
            if shown:
                self._write("")
            self._write(msg.text)
        if msg.buttons:
            labels = " / ".join(b.label for b in msg.buttons)
            self._write(f"[{labels}] — answer yes or no")
            self._idle.set()  # the run waits for the user's answer: let them type it
        if msg.reply_to in self._awaiting:
            self._awaiting.discard(msg.reply_to)
            if not self._awaiting:
                self._idle.set()
        return Delivery(platform_ids=(msg.id,))

    def _write(self, text: str, end: str = "\n") -> None:
        self._out.write(text + end)
        self._out.flush()
