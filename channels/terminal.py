"""A terminal chat: one local conversation on stdin/stdout (``autohands chat``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import uuid
from pathlib import Path
from typing import Any, ClassVar, TextIO

from pydantic import BaseModel, ConfigDict

from hub.channel import Capabilities, ChannelContext, Inbox, Manifest
from hub.messages import ConversationRef, Delivery, Inbound, Outbound, Sender, parse_command

log = logging.getLogger(__name__)


class TerminalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    user_name: str = "you"
    prompt: str = "> "
    history_file: str = "chat_history"
    """Readline history, relative to the data directory."""


class TerminalChannel:
    """One local conversation on stdin/stdout; the chat ends on EOF or ``/quit`` (see ``closed``)."""

    config_model: ClassVar[type[TerminalConfig]] = TerminalConfig
    manifest: ClassVar[Manifest] = Manifest(id="terminal", description="Chat in the terminal (stdin/stdout).")
    capabilities = Capabilities(max_length=100_000, dialect="plain", edits=False, buttons=False)

    def __init__(
        self,
        name: str,
        config: TerminalConfig,
        context: ChannelContext,
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self._context = context
        self._in = stdin or sys.stdin
        self._out = stdout or sys.stdout
        self._reader: asyncio.Task[None] | None = None
        self._inbox: Inbox | None = None
        self._lines: asyncio.Queue[str | BaseException | None] = asyncio.Queue()
        self._may_prompt = threading.Event()
        """Set when the next line may be read (interactive: once the answer is on screen)."""
        self._interrupting = False
        self._question_open = False
        """A question with buttons is on screen: the next line typed (not a command) answers it."""
        self._question_for: str | None = None
        """The user's message whose run asked it."""
        self._stopper: asyncio.Task[None] | None = None
        self._tty_state: list[Any] | None = None
        self._input: threading.Thread | None = None
        self._streams: dict[str, str] = {}
        self._awaiting: set[str] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.closed = asyncio.Event()
        """Set when the user ended the chat (EOF / ``/quit``) and every answer has been shown."""
        self.conversation = ConversationRef(channel=name, chat="local")
        self.problem: str | None = None
        """Never set (see ``Channel``): a terminal has nothing to lose the connection to."""

    async def start(self, inbox: Inbox) -> None:
        for stream in (self._in, self._out):
            # Bytes that are not valid UTF-8 (a pasted binary, a Latin-1 file piped in) become
            # U+FFFD instead of an exception that would end the reader mid-chat.
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(errors="replace")
        self._setup_readline()
        self._tty_state = self._save_tty()
        self._inbox = inbox
        self._may_prompt.set()
        # A daemon thread, not asyncio.to_thread: leaving the chat (Ctrl+C) must not wait for
        # the user to finish a line the prompt is still reading.
        loop = asyncio.get_running_loop()
        self._input = threading.Thread(target=self._input_thread, args=(loop,), name="terminal-input", daemon=True)
        self._input.start()
        self._reader = asyncio.create_task(self._read_loop(), name="terminal-reader")

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        if self._input is not None and self._input.is_alive():
            # Left while the prompt was reading a line (Ctrl+C): readline has the terminal in
            # no-echo, character-at-a-time mode and will not get to restore it.
            self._restore_tty()
            self._write("")
        self._save_readline()

    def _save_tty(self) -> list[Any] | None:
        if not self._interactive():
            return None
        try:
            import termios

            return termios.tcgetattr(self._in.fileno())
        except (ImportError, OSError, ValueError):  # no termios (Windows), or not a real terminal
            return None

    def _restore_tty(self) -> None:
        if self._tty_state is None:
            return
        import termios

        with contextlib.suppress(OSError, ValueError):
            termios.tcsetattr(self._in.fileno(), termios.TCSADRAIN, self._tty_state)

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

    def _input_thread(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            # One line at a time: interactive, the answer is shown before the next prompt;
            # piped, a long input is not read ahead into memory.
            self._may_prompt.wait()
            self._may_prompt.clear()
            line: str | BaseException | None
            try:
                line = self._read_line()
            except Exception as exc:  # handed to the loop, which ends the chat with the reason
                line = exc
            try:
                loop.call_soon_threadsafe(self._lines.put_nowait, line)
            except RuntimeError:  # the loop is gone: the chat has ended
                return
            if not isinstance(line, str):
                return

    @property
    def answering(self) -> bool:
        """An answer to something the user typed is still on its way (or waits for theirs)."""
        return bool(self._awaiting) or self._question_open

    def interrupt(self) -> bool:
        """Ctrl+C: stop the answer in progress (``/stop``) and return True; with nothing in
        progress, or on a second Ctrl+C before the first took effect, return False: leave."""
        if not self.answering or self._inbox is None or self._interrupting:
            return False
        self._interrupting = True
        self._write("^C — stopping the answer (Ctrl+C again to leave)")
        self._stopper = asyncio.get_running_loop().create_task(self._stop_answer(), name="terminal-interrupt")
        return True

    async def _stop_answer(self) -> None:
        try:
            await self._submit("/stop")  # a control command: it bypasses the queued run it stops
        except Exception as exc:
            log.error("terminal chat: could not stop the answer (%s: %s)", type(exc).__name__, exc)

    async def _submit(self, text: str) -> None:
        assert self._inbox is not None
        platform_id = f"term:{uuid.uuid4().hex}"
        cmd = parse_command(text)
        inbound = Inbound(
            kind="command" if cmd else "message",
            conversation=self.conversation,
            sender=Sender(id="local", name=self.config.user_name, is_admin=True),
            text=cmd[1] if cmd else text,
            command=cmd[0] if cmd else None,
            platform_id=platform_id,
            reply_to_platform_id=platform_id,
            direct=True,
            mentioned=True,
        )
        if self._question_open and not cmd:
            # The answer to the question on screen: the hub hands it to the waiting run and
            # replies nothing to it. What to wait for is the reply of the run it lets go on.
            self._question_open = False
            if self._question_for is not None:
                self._awaiting.add(self._question_for)
            self._question_for = None
        else:
            self._awaiting.add(platform_id)
        if self._awaiting:
            self._idle.clear()
        await self._inbox(inbound)

    async def _read_loop(self) -> None:
        try:
            await self._read_lines()
        except Exception as exc:  # the chat must end with a reason, not wait forever on a dead reader
            log.error("terminal chat: cannot read input (%s: %s); leaving", type(exc).__name__, exc)
            self.closed.set()

    async def _read_lines(self) -> None:
        while True:
            line = await self._lines.get()
            if isinstance(line, BaseException):
                raise line
            if line is None or line.strip() in ("/quit", "/exit"):
                break
            if text := line.strip():
                await self._submit(text)
            if self._interactive():
                await self._idle.wait()
            self._may_prompt.set()
        await self._idle.wait()
        self.closed.set()

    async def send(self, msg: Outbound) -> Delivery:
        if msg.typing:
            return Delivery()
        if not msg.final:
            key = msg.stream or msg.id
            shown = self._streams.get(key, "")
            if msg.text.startswith(shown):
                self._write(msg.text[len(shown) :], end="")
                self._streams[key] = msg.text
            return Delivery()
        shown = self._streams.pop(msg.stream, "") if msg.stream else ""
        if shown and msg.text.startswith(shown):
            self._write(msg.text[len(shown) :])
        else:
            if shown:
                self._write("")
            self._write(msg.text)
        if msg.buttons:
            labels = " / ".join(b.label for b in msg.buttons)
            self._write(f"[{labels}] — answer yes or no")
            # The run waits for the user's answer: let them type it (see _submit).
            self._question_open, self._question_for = True, msg.reply_to_platform_id
            self._awaiting.discard(msg.reply_to_platform_id or "")
            self._idle.set()
            return Delivery(platform_ids=(msg.id,))
        if msg.reply_to_platform_id is not None and msg.reply_to_platform_id == self._question_for:
            self._question_open, self._question_for = False, None  # the run went on unanswered
        if msg.reply_to_platform_id in self._awaiting:
            self._awaiting.discard(msg.reply_to_platform_id)
            if not self._awaiting:
                self._interrupting = False
                self._idle.set()
        return Delivery(platform_ids=(msg.id,))

    def _write(self, text: str, end: str = "\n") -> None:
        self._out.write(text + end)
        self._out.flush()
