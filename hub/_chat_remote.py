"""``autohands chat`` attached to a hub that already runs: its web chat's WebSocket, in a terminal.

A second hub cannot open a database that a running one holds (``HubLockedError``), so the chat
talks to the running hub instead, through the gateway every client uses: the WebSocket ``/ws``
at ``[server]`` host and port, with the config's first admin key (else its first API key). The
protocol is docs/API.md "WebSocket"; it is spoken here over aiohttp directly (``hub/`` does not
import ``channels/``). The conversation has a fixed id, so every attached chat goes on with the
same one. What the screen shows follows the local chat (channels/terminal.py): an answer as it
streams, an approval as ``[y/N]``, a reminder labelled on its own line.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import signal
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

import aiohttp

from .agent import HistoryItem
from .answers import ANSWER_HINT, read_answer
from .config import ServerSection, Settings
from .messages import parse_command

__all__ = ["CONVERSATION", "CannotAttach", "Target", "attach", "target"]

CONVERSATION = "terminal"
"""The attached chat's conversation id on the web channel: each attach continues it."""
CONNECT_SECONDS = 10.0
"""How long connecting and the first ``resume`` may take before the hub counts as unreachable."""
PROMPT = "> "
YES_NO = "[y/N]"
REMINDER_MARK = "⏰"
STOPPING = "^C stopping the answer (Ctrl+C again to leave)…"
_CLEAR_LINE = "\r\x1b[K"
_WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}
"""A server listening on every address is reached here on loopback."""

Frame = dict[str, object]


class CannotAttach(Exception):
    """The running hub cannot be reached through its web chat; the text says why (one line)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where the running hub's web chat is, and the key to show it."""

    url: str
    """``http://host:port``: the server's address as this machine reaches it."""
    key: str | None
    """The bearer key (never shown); None: the server is open (no key configured)."""
    key_name: str
    """Where the key comes from, for messages (``[server] admin_keys``)."""


def target(server: ServerSection) -> Target:
    """The running hub's web chat, as the config describes its server.

    Raises:
        CannotAttach: the config says there is no server, or not on which port.
    """
    if not server.enabled:
        raise CannotAttach("its HTTP server is off ([server] enabled = false), so it serves no chat")
    if server.port == 0:
        raise CannotAttach("[server] port = 0 here, so the port it listens on is not known")
    host = _WILDCARD_HOSTS.get(server.host.strip(), server.host.strip())
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    if server.admin_keys:
        return Target(f"http://{shown}:{server.port}", server.admin_keys[0], "[server] admin_keys")
    if server.api_keys:
        return Target(f"http://{shown}:{server.port}", server.api_keys[0], "[server] api_keys")
    return Target(f"http://{shown}:{server.port}", None, "")


async def attach(settings: Settings, *, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Chat with the running hub until the person leaves: 0, 130 after Ctrl+C at the prompt,
    1 when the connection is lost.

    Raises:
        CannotAttach: its web chat cannot be reached, or refused the key.
    """
    to = target(settings.server)
    async with aiohttp.ClientSession() as http:
        ws = await _connect(http, to)
        try:
            history = await _resume(ws)
            from .cli_chat import banner  # the local chat's words (cli_chat imports this lazily)

            print(f"Attached to the running hub at {to.url} (conversation {CONVERSATION!r}).", file=sys.stderr)
            print(banner(history), file=sys.stderr)
            return await _Chat(ws, to.url, stdin or sys.stdin, stdout or sys.stdout).run()
        finally:
            await ws.close()


async def _connect(http: aiohttp.ClientSession, to: Target) -> aiohttp.ClientWebSocketResponse:
    headers = {"Authorization": f"Bearer {to.key}"} if to.key else {}
    try:
        async with asyncio.timeout(CONNECT_SECONDS):
            return await http.ws_connect(f"{to.url}/ws", headers=headers, heartbeat=30.0)
    except aiohttp.WSServerHandshakeError as exc:
        raise CannotAttach(_refusal(exc.status, to)) from None
    except TimeoutError:
        raise CannotAttach(f"{to.url} did not answer within {CONNECT_SECONDS:g} s") from None
    except aiohttp.ClientError as exc:
        raise CannotAttach(f"nothing answers at {to.url} ({type(exc).__name__})") from None


def _refusal(status: int, to: Target) -> str:
    if status == 401:
        if to.key is None:
            return f"{to.url} asks for a key and this config has none ([server] admin_keys or api_keys)"
        return f"{to.url} refused the key (the first of {to.key_name})"
    if status == 404:
        return f"{to.url} serves no web chat (/ws: HTTP 404; is [channels.web] enabled?)"
    return f"{to.url}/ws answered HTTP {status}"


async def _resume(ws: aiohttp.ClientWebSocketResponse) -> list[HistoryItem]:
    """Join the conversation; what it already holds (counted by the banner, not shown again)."""
    await ws.send_json({"type": "resume", "conversation": CONVERSATION, "after": 0})
    history: list[HistoryItem] = []
    try:
        async with asyncio.timeout(CONNECT_SECONDS):
            while (frame := await _next(ws)) is not None:
                if frame.get("type") == "status" and frame.get("state") == "synced":
                    return history
                text, at = frame.get("text"), frame.get("at")
                if frame.get("type") in ("message", "question") and isinstance(text, str) and isinstance(at, str):
                    kind = str(frame.get("role", "assistant"))
                    history.append(HistoryItem(kind=kind, data={"text": text}, created_at=datetime.fromisoformat(at)))
    except TimeoutError:
        raise CannotAttach(f"its web chat did not resume the conversation within {CONNECT_SECONDS:g} s") from None
    raise CannotAttach("it closed the connection before the conversation was resumed")


async def _next(ws: aiohttp.ClientWebSocketResponse) -> Frame | None:
    """The next JSON frame; None once the socket has ended."""
    while True:
        msg = await ws.receive()
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
            return None
        if msg.type is aiohttp.WSMsgType.ERROR:
            return None
        if msg.type is aiohttp.WSMsgType.TEXT:
            with contextlib.suppress(ValueError):
                frame = json.loads(msg.data)
                if isinstance(frame, dict):
                    return frame


def _str(frame: Frame, key: str) -> str | None:
    value = frame.get(key)
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class _Question:
    """A question on screen: the next line typed (not a command) answers it."""

    id: str
    choices: tuple[tuple[str, str], ...]
    """(choice id, label); with two, the first approves and the second denies."""
    first: str
    """Its first line, asked beside the choices."""
    asked_by: str | None
    """The message whose run asked it: its reply is what to wait for once answered."""

    def choice_for(self, text: str) -> str | None:
        if len(self.choices) == 2:  # approve / deny (agents/approvals.py); Enter denies
            said = read_answer(text) if text else False
            return None if said is None else self.choices[0 if said else 1][0]
        return next((cid for cid, label in self.choices if label.casefold() == text.casefold()), None)

    @property
    def prompt(self) -> str:
        shown = YES_NO if len(self.choices) == 2 else "[" + " / ".join(label for _, label in self.choices) + "]"
        return f"{self.first} {shown} "

    @property
    def again(self) -> str:
        if len(self.choices) == 2:
            return "Please answer y or n (Enter: n)."
        return "Please answer with one of the choices."


def _question(frame: Frame) -> tuple[_Question, str]:
    """The question a ``question`` frame asks, and its text (without the hint about buttons)."""
    text = (_str(frame, "text") or "").removesuffix(ANSWER_HINT).rstrip("\n")
    raw = frame.get("choices")
    choices = tuple(
        (str(c.get("id")), str(c.get("label"))) for c in (raw if isinstance(raw, list) else []) if isinstance(c, dict)
    )
    first = text.split("\n", 1)[0]
    return _Question(_str(frame, "question") or "", choices, first, _str(frame, "reply_to")), text


class _Chat:
    """The terminal side: lines typed become frames, frames become lines on screen."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, url: str, stdin: TextIO, stdout: TextIO) -> None:
        self._ws, self._url, self._in, self._out = ws, url, stdin, stdout
        self._interactive = stdin.isatty()
        if isinstance(stdin, io.TextIOWrapper):  # a paste that is not UTF-8 must not end the chat
            stdin.reconfigure(errors="replace")
        self._awaiting: set[str] = set()
        """Our messages whose final reply has not come yet."""
        self._quiet: set[str] = set()
        """Our messages whose replies are not shown (the ``/stop`` of a Ctrl+C)."""
        self._streams: dict[str, str] = {}
        self._asked: dict[str, str] = {}
        """Questions shown, by ref: their outcome (an edit) shows only what it adds."""
        self._question: _Question | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False
        self._reading: str | None = None
        """The prompt ``input`` shows while a line is being typed (interactive)."""
        self._at_line_start = True
        self._leave = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> int:
        talk = asyncio.create_task(self._talk(), name="chat-talk")
        hear = asyncio.create_task(self._hear(), name="chat-hear")
        leave = asyncio.create_task(self._leave.wait(), name="chat-leave")
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError):  # no add_signal_handler on Windows
            loop.add_signal_handler(signal.SIGINT, self._ctrl_c)
        tty = _tty_state(self._in) if self._interactive else None
        if self._interactive:
            with contextlib.suppress(ImportError):  # input() edits lines with readline once loaded
                import readline  # noqa: F401
        try:
            done, _ = await asyncio.wait({talk, hear, leave}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(signal.SIGINT)
            for task in (talk, hear, leave, *self._tasks):
                task.cancel()
            if self._reading is not None and tty is not None:
                tty()  # left while input() read a line: readline will not restore the terminal
            self._end_line()
        if talk in done:
            if (failed := talk.exception()) is not None:
                print(f"autohands: cannot read input ({type(failed).__name__}: {failed})", file=sys.stderr)
                return 1
            return 0
        if leave in done:
            return 130  # 128 + SIGINT, as a shell reports an interrupted command
        gone = "is stopping" if self._ws.close_code == aiohttp.WSCloseCode.GOING_AWAY else "closed the connection"
        print(f"autohands: the running hub at {self._url} {gone}; the chat has ended", file=sys.stderr)
        return 1

    # ----------------------------------------------------------------- typing
    async def _talk(self) -> None:
        while True:
            await self._idle.wait()
            line = await self._read_line()
            if line is None or line.strip() in ("/quit", "/exit"):
                break
            await self._take(line.strip())
        await self._idle.wait()

    async def _read_line(self) -> str | None:
        prompt = self._question.prompt if self._question else PROMPT
        if not self._interactive:
            if self._question is not None:
                self._write(prompt.rstrip())
            return await _in_thread(self._in.readline, lambda line: line.rstrip("\n") if line else None)
        self._reading = prompt
        try:
            return await _in_thread(lambda: input(prompt), lambda line: line)
        finally:
            self._reading = None

    async def _take(self, text: str) -> None:
        question = self._question
        if question is not None and not parse_command(text):
            choice = question.choice_for(text)
            if choice is None:
                self._write(question.again)
                return
            self._question = None
            if question.asked_by is not None:
                self._wait_for(question.asked_by)
            await self._ws.send_json(
                {"type": "answer", "question": question.id, "choice": choice, "conversation": CONVERSATION}
            )
        elif text:
            await self._send(text)

    async def _send(self, text: str, *, quiet: bool = False) -> None:
        client_id = f"t-{uuid.uuid4().hex}"
        self._wait_for(client_id)
        if quiet:
            self._quiet.add(client_id)
        await self._ws.send_json({"type": "message", "id": client_id, "conversation": CONVERSATION, "text": text})

    def _wait_for(self, client_id: str) -> None:
        self._awaiting.add(client_id)
        self._idle.clear()

    def _ctrl_c(self) -> None:
        """Stop the answer in progress (``/stop``); with none, or pressed again, leave."""
        if self._stopping or not (self._awaiting or self._question):
            self._leave.set()
            return
        self._stopping = True
        self._apart(STOPPING)
        task = asyncio.get_running_loop().create_task(self._send("/stop", quiet=True), name="chat-stop")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ----------------------------------------------------------------- hearing
    async def _hear(self) -> None:
        while (frame := await _next(self._ws)) is not None:
            kind = frame.get("type")
            if kind == "delta":
                self._delta(frame)
            elif kind == "message" and frame.get("role") == "assistant":
                self._final(frame)
            elif kind == "question":
                self._ask(frame)
            elif kind == "error":
                self._error(frame)

    def _delta(self, frame: Frame) -> None:
        stream, text = _str(frame, "stream"), _str(frame, "text")
        if stream is None or text is None or self._stopping or self._reading is not None:
            return
        if _str(frame, "reply_to") not in self._awaiting:
            return
        shown = self._streams.get(stream, "")
        if text.startswith(shown):
            if not shown:
                self._end_line()
            self._write(text[len(shown) :], end="")
            self._streams[stream] = text

    def _final(self, frame: Frame) -> None:
        text, to, edit_of = _str(frame, "text") or "", _str(frame, "reply_to"), _str(frame, "edit_of")
        if self._question is not None and to is not None and to == self._question.asked_by:
            self._question = None  # the run went on unanswered (timed out, stopped)
        if to is not None and to in self._quiet:
            self._quiet.discard(to)
        elif to is None and edit_of is None:  # nobody asked for it here: a scheduled job
            self._apart(text if text.startswith(REMINDER_MARK) else f"{REMINDER_MARK} Reminder: {text}")
        elif edit_of is not None:
            before = self._asked.pop(edit_of, None)
            if before is not None and text.startswith(before):
                text = text[len(before) :].lstrip("\n")
            self._apart(text)
        else:
            self._finish(_str(frame, "stream"), text)
        self._answered(to)

    def _finish(self, stream: str | None, text: str) -> None:
        shown = self._streams.pop(stream, "") if stream else ""
        if shown and text.startswith(shown) and not self._at_line_start and self._reading is None:
            self._write(text[len(shown) :])
        else:
            self._apart(text)

    def _ask(self, frame: Frame) -> None:
        question, text = _question(frame)
        self._asked[_str(frame, "ref") or question.id] = text
        rest = text.split("\n", 1)[1] if "\n" in text else ""
        if rest:
            self._apart(rest)
        self._question = question
        # The run waits for the person's answer: let them type it.
        self._awaiting.discard(question.asked_by or "")
        self._stopping = False
        self._idle.set()

    def _error(self, frame: Frame) -> None:
        self._apart(f"[error] {_str(frame, 'message') or 'the hub refused a frame'}")
        self._answered(_str(frame, "id"))

    def _answered(self, client_id: str | None) -> None:
        self._awaiting.discard(client_id or "")
        if not self._awaiting:
            self._stopping = False
            self._idle.set()

    # ----------------------------------------------------------------- the screen
    def _apart(self, text: str) -> None:
        """``text`` on lines of its own; over the prompt being read, drawn again below it."""
        if self._reading is None:
            self._end_line()
            self._write(text)
            return
        prompt = self._question.prompt if self._question else PROMPT
        typed = _line_buffer()
        self._out.write(f"{_CLEAR_LINE}{text}\n{prompt}{typed}")
        self._out.flush()

    def _end_line(self) -> None:
        if not self._at_line_start:
            self._write("")

    def _write(self, text: str, end: str = "\n") -> None:
        if text or end:
            self._at_line_start = (text + end).endswith("\n")
        self._out.write(text + end)
        self._out.flush()


async def _in_thread(read: Callable[[], str], done: Callable[[str], str | None]) -> str | None:
    """``read()`` in a daemon thread (leaving must not wait for a line being typed); None at EOF."""
    loop = asyncio.get_running_loop()
    got: asyncio.Future[str | None] = loop.create_future()

    def settle(value: str | None, exc: BaseException | None) -> None:
        if got.done():
            return
        if exc is not None:
            got.set_exception(exc)
        else:
            got.set_result(value)

    def run() -> None:
        value: str | None = None
        exc: BaseException | None = None
        try:
            value = done(read())
        except EOFError:
            value = None
        except Exception as error:  # handed to the loop: the chat ends with the reason
            exc = error
        with contextlib.suppress(RuntimeError):  # the loop is gone: the chat has ended
            loop.call_soon_threadsafe(settle, value, exc)

    threading.Thread(target=run, name="chat-input", daemon=True).start()
    return await got


def _line_buffer() -> str:
    """What has been typed of the line readline reads ("" without readline)."""
    try:
        import readline
    except ImportError:  # pragma: no cover - not on every platform
        return ""
    return readline.get_line_buffer()


def _tty_state(stream: TextIO) -> Callable[[], None] | None:
    """A function that puts the terminal back as it is now (None: not a terminal we can restore)."""
    try:
        import termios

        fd = stream.fileno()
        saved = termios.tcgetattr(fd)
    except (ImportError, OSError, ValueError):
        return None

    def restore() -> None:
        with contextlib.suppress(OSError, ValueError):
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)

    return restore
