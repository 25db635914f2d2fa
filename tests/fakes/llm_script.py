"""Per-test scripting shared by the fake OpenAI and Anthropic servers.

A test queues steps on an ``LLMScript``; each request to a fake pops the next one. The fake
turns the step into its own vendor's wire format, so one script drives either SDK::

    script = LLMScript()  # fails loudly on calls the test did not script
    script.error(429, retry_after=0.2).reply("Hello there", chunks=3)
    script.tool_calls(ScriptedCall("get_time", {"tz": "UTC"}), ScriptedCall("add", '{"a": 1'))
    ...
    assert script.requests[0].body["model"] == "gpt-test"
    script.assert_done()
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal, Self

import orjson
from aiohttp import web

DefaultMode = Literal["echo", "fail"]


@dataclass(frozen=True, slots=True)
class ScriptedCall:
    """One tool call the fake model emits."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    """A dict is sent as JSON; a string is sent verbatim (so it may be malformed JSON)."""
    id: str | None = None

    @property
    def arguments_json(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyStep:
    """A normal answer: text (maybe empty) and tool calls, each streamed in ``chunks`` pieces."""

    text: str = ""
    calls: tuple[ScriptedCall, ...] = ()
    chunks: int = 3
    first_token_delay: float = 0.0
    """Seconds between the response headers and the first chunk (a slow first token)."""
    stop: Literal["end", "max_tokens"] = "end"
    kind: Literal["reply"] = "reply"


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorStep:
    """An HTTP error in the vendor's JSON error shape."""

    status: int
    retry_after: float | str | None = None
    """Sent as the ``retry-after`` header: seconds, or a string such as an HTTP date."""
    message: str = ""
    mid_stream: bool = False
    """Streamed requests only: answer 200 and report the error inside the stream, as the real
    APIs do when they fail after the stream opened (Anthropic: an ``error`` event; OpenAI: a
    chunk whose only field is ``error``)."""
    partial: str = ""
    """With ``mid_stream``: answer text streamed (in two chunks) before the error."""
    kind: Literal["error"] = "error"


_DROP_TEXT = "This answer will never be finished because"


@dataclass(frozen=True, slots=True, kw_only=True)
class DropStep:
    """Stream ``after_chunks`` text chunks of ``text``, then cut the TCP connection; with
    ``clean``, end the body properly instead, but without the stream's end marker (as a proxy
    that gives up on a long stream does)."""

    text: str = _DROP_TEXT
    after_chunks: int = 2
    chunks: int = 6
    clean: bool = False
    kind: Literal["drop"] = "drop"


Step = ReplyStep | ErrorStep | DropStep


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedRequest:
    method: str
    path: str
    headers: dict[str, str]
    """Lower-cased header names."""
    body: Any
    """The parsed JSON body (None for GET)."""
    raw_size: int

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and bool(self.body.get("stream"))


class UnexpectedRequest(AssertionError):
    """Raised by ``assert_done`` when the fake got calls the script did not plan."""


class LLMScript:
    """A queue of steps plus a log of received requests.

    Args:
        default: what to do when the queue is empty: ``"fail"`` answers HTTP 400 with a
            message saying the call was unexpected (and records it, see ``assert_done``);
            ``"echo"`` answers ``echo: <last user message>``.
        latency: seconds every request waits before its response starts (benchmarks).
        api_key: when set, requests carrying another key get the vendor's 401.
    """

    def __init__(self, default: DefaultMode = "fail", *, latency: float = 0.0, api_key: str | None = None):
        self.default: DefaultMode = default
        self.latency = latency
        self.api_key = api_key
        self.requests: list[LoggedRequest] = []
        self.unexpected: list[LoggedRequest] = []
        self.echo_tool: ScriptedCall | None = None
        self.echo_tool_when: str | None = None
        """Call ``echo_tool`` only when the last user message contains this text (None: always)."""
        """In echo mode: answer each user message with this tool call, tool results with echo."""
        self._steps: deque[Step] = deque()

    def add(self, *steps: Step) -> LLMScript:
        self._steps.extend(steps)
        return self

    def reply(
        self,
        text: str,
        *,
        chunks: int = 3,
        first_token_delay: float = 0.0,
        stop: Literal["end", "max_tokens"] = "end",
    ) -> LLMScript:
        return self.add(ReplyStep(text=text, chunks=chunks, first_token_delay=first_token_delay, stop=stop))

    def tool_calls(self, *calls: ScriptedCall, text: str = "", chunks: int = 3) -> LLMScript:
        return self.add(ReplyStep(text=text, calls=calls, chunks=chunks))

    def error(
        self,
        status: int,
        *,
        retry_after: float | str | None = None,
        message: str = "",
        mid_stream: bool = False,
        partial: str = "",
    ) -> LLMScript:
        return self.add(
            ErrorStep(status=status, retry_after=retry_after, message=message, mid_stream=mid_stream, partial=partial)
        )

    def drop(self, *, text: str = _DROP_TEXT, after_chunks: int = 2, chunks: int = 6, clean: bool = False) -> LLMScript:
        return self.add(DropStep(text=text, after_chunks=after_chunks, chunks=chunks, clean=clean))

    @property
    def pending(self) -> int:
        return len(self._steps)

    def assert_done(self) -> None:
        """Fail if a step is left over or a request arrived that no step answered."""
        if self._steps:
            raise UnexpectedRequest(f"{len(self._steps)} scripted step(s) never requested: {list(self._steps)}")
        if self.unexpected:
            raise UnexpectedRequest(f"{len(self.unexpected)} unexpected request(s): {self.unexpected[0].path}")

    def log(self, request: LoggedRequest) -> None:
        self.requests.append(request)

    def next_step(self, request: LoggedRequest, last_user_text: str, last_is_tool_result: bool) -> Step:
        """The step answering ``request``: the next scripted one, else the default responder."""
        if self._steps:
            return self._steps.popleft()
        if self.default == "fail":
            self.unexpected.append(request)
            return ErrorStep(status=400, message="fake LLM: unexpected request (the test script is empty)")
        wanted = self.echo_tool_when is None or self.echo_tool_when in last_user_text
        if self.echo_tool is not None and not last_is_tool_result and wanted:
            return ReplyStep(calls=(self.echo_tool,))
        return ReplyStep(text=f"echo: {last_user_text}")


def estimate_tokens(text_or_size: str | int) -> int:
    """Deterministic token estimate: 4 characters (bytes of JSON) per token."""
    size = text_or_size if isinstance(text_or_size, int) else len(text_or_size)
    return max(1, size // 4) if size else 0


def split_text(text: str, chunks: int) -> list[str]:
    """Split ``text`` into ``chunks`` non-empty pieces (fewer if the text is shorter)."""
    if not text:
        return []
    n = max(1, min(chunks, len(text)))
    size, extra = divmod(len(text), n)
    pieces, pos = [], 0
    for i in range(n):
        end = pos + size + (1 if i < extra else 0)
        pieces.append(text[pos:end])
        pos = end
    return pieces


class FakeLLMServer:
    """An aiohttp server on 127.0.0.1, port 0, driven by an ``LLMScript``.

    Subclasses add their vendor's routes in ``_routes``; use as ``async with Fake() as fake``.
    """

    base_path = ""

    def __init__(self, script: LLMScript | None = None, *, port: int = 0, host: str = "127.0.0.1"):
        self.script = script if script is not None else LLMScript()
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        if self._runner is None:
            raise RuntimeError("the fake server is not running; use it as `async with`")
        return f"http://{self._host}:{self.port}{self.base_path}"

    def _routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        if self._runner is not None:
            raise RuntimeError("the fake server is already running")
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.add_routes(self._routes())
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        try:
            # A deep backlog: benchmarks open 1,000 connections at once.
            site = web.TCPSite(runner, self._host, self._port, backlog=4096)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _log(self, request: web.Request) -> tuple[LoggedRequest, Any]:
        raw = await request.read()
        body = orjson.loads(raw) if raw else None
        logged = LoggedRequest(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            raw_size=len(raw),
        )
        self.script.log(logged)
        if self.script.latency:
            await asyncio.sleep(self.script.latency)
        return logged, body


async def drop_connection(request: web.Request, resp: web.StreamResponse, step: DropStep) -> None:
    """Cut the TCP connection under a half-sent response, as a crashed proxy would; or, for a
    ``clean`` drop, end the body early."""
    if step.clean:
        await resp.write_eof()
        return
    if request.transport is not None:
        request.transport.abort()
    # Yield so the abort reaches the socket before aiohttp tries to finish the response.
    await asyncio.sleep(0)
