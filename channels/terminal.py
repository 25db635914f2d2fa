"""A terminal chat: one local conversation on stdin/stdout (``autohands chat``).

On a terminal the screen is shared by the person typing and the hub talking, so this channel
keeps them apart: what nobody asked for here (a scheduled job's reminder, an error the command
line passes to ``note``) is shown labelled on lines of its own, and the prompt is drawn again
under it with what had been typed so far. A question with two buttons (an approval) is asked as
``[y/N]`` and its answer goes back as the tapped button. A paste of several lines is one
message (bracketed paste), and so is a block typed between two lines of ``\"\"\"``; piped
input stays one line, one message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, TextIO

from pydantic import BaseModel, ConfigDict

from hub.answers import ANSWER_HINT, read_answer
from hub.channel import Capabilities, ChannelContext, Inbox, Manifest
from hub.config import StrictBool
from hub.messages import Button, ConversationRef, Delivery, Inbound, InboundKind, Outbound, Sender, parse_command

log = logging.getLogger(__name__)

REMINDER_MARK = "⏰"
BLOCK = '"""'
"""A line starting with it opens a message of several lines; one ending with it closes it."""
MORE_PROMPT = "... "
YES_NO = "[y/N]"
_CLEAR_LINE = "\r\x1b[K"
_DIM, _UNDIM = "\x1b[2m", "\x1b[0m"
_PASTE_OFF = "\x1b[?2004l"
"""Turns the terminal's bracketed paste mode off (readline turns it on while it reads a line)."""


class TerminalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: StrictBool = False
    """``autohands chat`` turns it on by itself; ``true`` also chats on the hub's own terminal
    under ``autohands run``."""
    user_name: str = "you"
    """Your name in the conversation's transcript and in job lists (your id is always ``local``)."""
    prompt: str = "> "
    """Shown where you type; a yes/no question replaces it with ``[y/N]`` while it waits."""
    history_file: str = "chat_history"
    """Readline history, relative to the data directory."""


@dataclass(frozen=True, slots=True)
class _Question:
    """A question with buttons on screen: the next line typed (not a command) answers it."""

    buttons: tuple[Button, ...]
    asked_by: str | None
    """The user's message whose run asked it (its reply is what to wait for once answered)."""

    def button_for(self, text: str) -> Button | None:
        """The button ``text`` taps; None: not an answer (ask again)."""
        if len(self.buttons) == 2:  # yes / no (agents/approvals.py: Approve, Deny); Enter is no
            said = read_answer(text) if text else False
            return None if said is None else self.buttons[0 if said else 1]
        return next((b for b in self.buttons if b.label.casefold() == text.casefold()), None)

    @property
    def choices(self) -> str:
        return YES_NO if len(self.buttons) == 2 else "[" + " / ".join(b.label for b in self.buttons) + "]"

    @property
    def again(self) -> str:
        return "Please answer y or n (Enter: n)." if len(self.buttons) == 2 else f"Please answer {self.choices}."


class TerminalChannel:
    """One local conversation on stdin/stdout; the chat ends on EOF or ``/quit`` (see ``closed``)."""

    config_model: ClassVar[type[TerminalConfig]] = TerminalConfig
    manifest: ClassVar[Manifest] = Manifest(
        id="terminal",
        name="Terminal",
        description="Chat in the terminal (stdin/stdout).",
        provides=("channel:terminal",),
        config=TerminalConfig,
    )
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
        self._reading: str | None = None
        """The prompt readline shows while it reads a line (set in the input thread)."""
        self._line_buffer: Callable[[], str] | None = None
        """What readline has of the line being typed (None without readline)."""
        self._at_line_start = True
        self._interrupting = False
        self._stop_line = False
        """The "stopping the answer" line waits on screen for the outcome to end it."""
        self._question: _Question | None = None
        self._questions: dict[str, str] = {}
        """Questions shown, by outbound id: their settled edit shows only what it adds."""
        self._quiet: set[str] = set()
        """Our own inputs whose replies are not shown (the ``/stop`` of a Ctrl+C)."""
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
        """Get ready; the first prompt waits for ``begin`` (after the command line's banner)."""
        for stream in (self._in, self._out):
            # Bytes that are not valid UTF-8 (a pasted binary, a Latin-1 file piped in) become
            # U+FFFD instead of an exception that would end the reader mid-chat.
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(errors="replace")
        self._setup_readline()
        self._tty_state = self._save_tty()
        self._inbox = inbox
        # A daemon thread, not asyncio.to_thread: leaving the chat (Ctrl+C) must not wait for
        # the user to finish a line the prompt is still reading.
        loop = asyncio.get_running_loop()
        self._input = threading.Thread(target=self._input_thread, args=(loop,), name="terminal-input", daemon=True)
        self._input.start()
        self._reader = asyncio.create_task(self._read_loop(), name="terminal-reader")

    def begin(self) -> None:
        """Show the first prompt and read what the person types."""
        self._may_prompt.set()

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        if self._input is not None and self._input.is_alive() and self._reading is not None:
            # Left while the prompt was reading a line (Ctrl+C): readline has the terminal in
            # no-echo, character-at-a-time mode with bracketed paste on, and will not get to
            # restore it.
            self._restore_tty()
            self._out.write(_PASTE_OFF)
            self._at_line_start = False
        if not self._at_line_start:
            self._write("")
        self._save_readline()

    # ----------------------------------------------------------------- the terminal
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

    def _readline(self) -> ModuleType | None:
        if not self._interactive():
            return None
        try:
            import readline
        except ImportError:  # pragma: no cover - not on every platform
            return None
        return readline

    def _setup_readline(self) -> None:
        if (readline := self._readline()) is None:
            return
        # Python turns bracketed paste off for its own prompt; on, a paste of several lines
        # arrives as one line (the terminal marks its start and end) instead of one per line.
        readline.parse_and_bind("set enable-bracketed-paste on")
        self._line_buffer = readline.get_line_buffer
        with contextlib.suppress(OSError):
            readline.read_history_file(Path(self._context.data_dir) / self.config.history_file)

    def _save_readline(self) -> None:
        if (readline := self._readline()) is None:
            return
        path = Path(self._context.data_dir) / self.config.history_file
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(path)

    # ----------------------------------------------------------------- reading (input thread)
    def _prompted(self, prompt: str) -> str | None:
        self._reading = prompt
        try:
            return input(prompt)
        except EOFError:
            return None
        finally:
            self._reading = None

    def _read_line(self) -> str | None:
        if not self._interactive():
            line = self._in.readline()
            return line.rstrip("\n") if line else None
        first = self._prompted(self._prompt())
        if first is None or not first.lstrip().startswith(BLOCK):
            return first
        return self._read_block(first.lstrip().removeprefix(BLOCK))

    def _prompt(self) -> str:
        return self._question.choices + " " if self._question else self.config.prompt

    def _read_block(self, first: str) -> str:
        """The lines typed up to the one ending with ``\"\"\"``, as one message (Ctrl+D ends it too)."""
        lines = [first]
        while not lines[-1].rstrip().endswith(BLOCK):
            more = self._prompted(MORE_PROMPT)
            if more is None:
                return "\n".join(lines)
            lines.append(more)
        lines[-1] = lines[-1].rstrip().removesuffix(BLOCK)
        return "\n".join(lines)

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

    # ----------------------------------------------------------------- reading (event loop)
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
            await self._take(line.strip())
            if self._interactive():
                await self._idle.wait()
                self._end_line()
            self._may_prompt.set()
        await self._idle.wait()
        self._end_line()
        self.closed.set()

    async def _take(self, text: str) -> None:
        """Hand one line (or pasted block) to the hub: an answer to the question on screen, a
        command or a message."""
        question = self._question
        if question is not None and not parse_command(text) and (text or self._interactive()):
            button = question.button_for(text)
            if button is not None:
                await self._answer(question, button)
                return
            if self._interactive():  # piped, it goes to the hub as a message, as typed
                self._write(question.again)
                return
        if text:
            await self._submit(text)

    async def _answer(self, question: _Question, button: Button) -> None:
        # The hub hands the tap to the waiting run and replies nothing to it: what to wait for
        # is the reply of the run it lets go on.
        self._question = None
        if question.asked_by is not None:
            self._awaiting.add(question.asked_by)
            self._idle.clear()
        assert self._inbox is not None
        await self._inbox(self._inbound("button", button.label, button=button.id))

    async def _submit(self, text: str, *, quiet: bool = False) -> None:
        """Send what the person typed and wait for its reply (``quiet``: without showing it)."""
        cmd = parse_command(text)
        inbound = self._inbound("command", cmd[1], command=cmd[0]) if cmd else self._inbound("message", text)
        self._awaiting.add(inbound.platform_id)
        self._idle.clear()
        if quiet:
            self._quiet.add(inbound.platform_id)
        assert self._inbox is not None
        await self._inbox(inbound)

    def _inbound(
        self, kind: InboundKind, text: str, *, command: str | None = None, button: str | None = None
    ) -> Inbound:
        platform_id = f"term:{uuid.uuid4().hex}"
        return Inbound(
            kind=kind,
            conversation=self.conversation,
            sender=Sender(id="local", name=self.config.user_name, is_admin=True),
            text=text,
            command=command,
            button=button,
            platform_id=platform_id,
            reply_to_platform_id=platform_id,
            direct=True,
            mentioned=True,
        )

    # ----------------------------------------------------------------- Ctrl+C
    @property
    def answering(self) -> bool:
        """An answer to something the user typed is still on its way (or waits for theirs)."""
        return bool(self._awaiting) or self._question is not None

    def interrupt(self) -> bool:
        """Ctrl+C: stop the answer in progress (``/stop``) and return True; with nothing in
        progress, or on a second Ctrl+C before the first took effect, return False: leave."""
        if not self.answering or self._inbox is None or self._interrupting:
            return False
        self._interrupting = True
        # One line: the outcome ("Stopped.") ends it. "\r" writes over the "^C" the terminal
        # echoed at the start of a line.
        if self._reading is not None:
            self._apart("^C stopping the answer (Ctrl+C again to leave)…")
        else:
            self._end_line()
            self._write("\r^C stopping the answer (Ctrl+C again to leave)… ", end="")
            self._stop_line = True
        self._stopper = asyncio.get_running_loop().create_task(self._stop_answer(), name="terminal-interrupt")
        return True

    async def _stop_answer(self) -> None:
        try:
            # A control command: it bypasses the queued run it stops. Its own reply is not
            # shown: the stopped run's ("Stopped.") says how it ended.
            await self._submit("/stop", quiet=True)
        except Exception as exc:
            log.error("terminal chat: could not stop the answer (%s: %s)", type(exc).__name__, exc)

    # ----------------------------------------------------------------- showing
    async def send(self, msg: Outbound) -> Delivery:
        if msg.typing:
            return Delivery()
        to = msg.reply_to_platform_id
        unprompted = to is None and msg.edit_of is None  # nobody asked here: a scheduled job
        if not msg.final:
            if not unprompted and not self._interrupting and self._reading is None:
                self._stream(msg)
            return Delivery()
        if not msg.buttons and to is not None and self._question is not None and to == self._question.asked_by:
            self._question = None  # the run went on unanswered (timed out, stopped)
        if to is not None and to in self._quiet:
            self._quiet.discard(to)
        elif unprompted:
            self._apart(_labelled(msg.text))
        elif msg.edit_of is not None:
            self._show_edit(msg.edit_of, msg.text)
        elif msg.buttons:
            self._ask(msg)
        else:
            self._show_final(msg)
        self._answered(to)
        return Delivery(platform_ids=(msg.id,))

    def note(self, text: str) -> None:
        """Show ``text`` apart from the conversation: dimmed, on a line of its own."""
        if not self._out.isatty():
            print(text, file=sys.stderr)
            return
        self._apart(f"{_DIM}{text}{_UNDIM}")

    def _answered(self, reply_to: str | None) -> None:
        if reply_to in self._awaiting:
            self._awaiting.discard(reply_to)
        if not self._awaiting:
            self._interrupting = False
            self._idle.set()

    def _stream(self, msg: Outbound) -> None:
        key = msg.stream or msg.id
        shown = self._streams.get(key, "")
        if msg.text.startswith(shown):
            if not shown:
                self._end_line()
            self._write(msg.text[len(shown) :], end="")
            self._streams[key] = msg.text

    def _show_final(self, msg: Outbound) -> None:
        shown = self._streams.pop(msg.stream, "") if msg.stream else ""
        if shown and msg.text.startswith(shown) and not self._stop_line and self._reading is None:
            self._write(msg.text[len(shown) :])
        else:
            self._show(msg.text)

    def _show_edit(self, edit_of: str, text: str) -> None:
        """An edit as what it adds (a question's outcome) when the earlier text was shown here."""
        before = self._questions.pop(edit_of, None)
        if before is not None and text.startswith(before):
            text = text[len(before) :].lstrip("\n")
        self._show(text)

    def _ask(self, msg: Outbound) -> None:
        """The question without its hint about buttons (there are none here), then its choices."""
        question = _Question(msg.buttons, msg.reply_to_platform_id)
        text = msg.text.removesuffix(ANSWER_HINT).rstrip("\n")
        self._questions[msg.id] = text
        self._show(text)
        self._question = question
        if not self._interactive():
            self._write(question.choices)  # interactive, it is the prompt
        # The run waits for the user's answer: let them type it (see _take).
        self._awaiting.discard(msg.reply_to_platform_id or "")
        self._idle.set()

    def _show(self, text: str) -> None:
        """A message on lines of its own, after the line in progress (the "stopping" line, when
        a one-line outcome can end it)."""
        if self._reading is not None:
            self._apart(text)
            return
        if self._stop_line:
            self._stop_line = False
            if "\n" not in text and len(text) < 40:
                self._write(text)
                return
        self._end_line()
        self._write(text)

    def _apart(self, text: str) -> None:
        """``text`` on lines of its own; over the prompt, which is then drawn again below with
        what was typed so far, when readline is reading a line."""
        if self._reading is None:
            self._end_line()
            self._write(text)
            return
        # The prompt as it stands now: a question that has gone (stopped, timed out) leaves the
        # chat's own prompt (readline moves its cursor relative to where it is, so it follows).
        prompt = self._reading if self._reading == MORE_PROMPT else self._prompt()
        typed = self._line_buffer() if self._line_buffer is not None else ""
        self._out.write(f"{_CLEAR_LINE}{text}\n{prompt}{typed}")
        self._out.flush()

    def _end_line(self) -> None:
        self._stop_line = False
        if not self._at_line_start:
            self._write("")

    def _write(self, text: str, end: str = "\n") -> None:
        if text or end:
            self._at_line_start = (text + end).endswith("\n")
        self._out.write(text + end)
        self._out.flush()


def _labelled(text: str) -> str:
    """A scheduled job's message, so that it is not taken for something the person typed."""
    return text if text.startswith(REMINDER_MARK) else f"{REMINDER_MARK} Reminder: {text}"
