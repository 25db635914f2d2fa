"""One MCP server's life: connect, list its tools, serve calls, notice its death, restart.

A ``Connection`` is driven by one supervisor task (``run``), which owns the SDK's ``Client``:
the SDK's transports are anyio task groups, entered and left in that one task. Calls come from
other tasks and use the client only while the server is up; otherwise they fail at once with a
sentence saying the server is unavailable. A call that finds the connection closed, or a ping
between calls that goes unanswered, ends the life; the supervisor then waits out its back-off
(``hub.backoff.Backoff``) and starts the server again.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT, CallToolResult

from hub.backoff import Backoff
from hub.errors import ToolFailed

from .config import McpServerConfig

log = logging.getLogger(__name__)

Status = Literal["starting", "up", "down"]


@dataclass(frozen=True, slots=True)
class RemoteTool:
    """A tool as the server listed it."""

    name: str
    description: str
    schema: dict[str, Any]


def describe_error(exc: BaseException) -> str:
    """One line on why a start or a call failed (the first leaf of an exception group)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, TimeoutError):
        return "it did not answer in time"
    if isinstance(exc, FileNotFoundError):
        return f"program not found: {exc.filename or exc}"
    if isinstance(exc, MCPError) and exc.code == CONNECTION_CLOSED:
        return "the connection closed"
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Connection:
    """One configured server (``[mcp.servers.NAME]``) and its current client, if it is up.

    Args:
        name: the server's name in config.
        config: its table.
        backoff: the pauses between restarts.
        ping_seconds: how often a running server is pinged.
        stderr_dir: where a started program's stderr goes (``NAME.stderr.log``, rewritten at
            each start); None: the hub's stderr.
    """

    def __init__(
        self,
        name: str,
        config: McpServerConfig,
        *,
        backoff: Backoff,
        ping_seconds: float,
        stderr_dir: Path | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self._backoff = backoff
        self._ping_seconds = ping_seconds
        self._stderr_dir = stderr_dir
        self.status: Status = "starting"
        self.reason = ""
        """Why the server is down (one line, no secrets)."""
        self.tools: tuple[RemoteTool, ...] = ()
        self.starts = 0
        """How many times it came up (a restart makes it 2 or more)."""
        self.tried = asyncio.Event()
        """Set once the first start has succeeded or failed."""
        self._changed = asyncio.Event()
        self._client: Client | None = None
        self._died = asyncio.Event()
        self._death = ""

    # ------------------------------------------------------------------ the supervisor
    async def run(self) -> None:
        """Start the server, keep it running, restart it after each failure; until cancelled."""
        failures = 0
        while True:
            came_up, reason = await self._life()
            failures = 1 if came_up else failures + 1
            delay = self._backoff.delay(failures)
            self._down(reason, delay, first=came_up or failures == 1)
            await asyncio.sleep(delay)

    async def _life(self) -> tuple[bool, str]:
        """One start and the time the server stays up: whether it came up, and why it ended."""
        came_up = False
        try:
            async with AsyncExitStack() as stack:
                async with asyncio.timeout(self.config.start_timeout_seconds):
                    client = await stack.enter_async_context(self._connect(stack))
                    tools = await _list_tools(client)
                self._up(client, tools)
                came_up = True
                reason = await self._watch(client)
                self._client = None  # no call may start on a client being closed
            return came_up, reason
        except Exception as exc:  # any failure to start or to stay up: report it, try again later
            return came_up, describe_error(exc)
        finally:
            self._client = None

    def _connect(self, stack: AsyncExitStack) -> Client:
        c = self.config
        if c.url is not None:
            headers = {k: v.get_secret_value() for k, v in c.headers.items()}
            http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0))
            stack.push_async_callback(http.aclose)
            return Client(streamable_http_client(c.url, http_client=http), read_timeout_seconds=c.timeout_seconds)
        assert c.command is not None  # McpServerConfig: exactly one of command and url
        params = StdioServerParameters(
            command=c.command,
            args=list(c.args),
            env={k: v.get_secret_value() for k, v in c.env.items()},
            cwd=c.cwd,
        )
        return Client(stdio_client(params, errlog=self._errlog(stack)), read_timeout_seconds=c.timeout_seconds)

    def _errlog(self, stack: AsyncExitStack) -> TextIO:
        if self._stderr_dir is None:
            return sys.stderr
        self._stderr_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self._stderr_dir / f"{self.name}.stderr.log"
        path.touch(mode=0o600)
        return stack.enter_context(path.open("w", encoding="utf-8"))

    async def _watch(self, client: Client) -> str:
        """Wait until a call finds the connection closed or a ping goes unanswered; say why.
        A server that answers a ping with an error is alive: it answered."""
        while True:
            try:
                await asyncio.wait_for(self._died.wait(), self._ping_seconds)
                return self._death
            except TimeoutError:
                pass
            try:  # the ping: a tool listing (MCP's own ping is gone from the 2026-07-28 protocol)
                async with asyncio.timeout(self.config.timeout_seconds):
                    await client.list_tools(cache_mode="bypass")
            except MCPError as exc:
                if exc.code == CONNECTION_CLOSED:
                    return "the connection closed"
            except Exception as exc:  # no answer in time, or the transport failed: it is gone
                return f"it stopped answering ({describe_error(exc)})"

    def _up(self, client: Client, tools: tuple[RemoteTool, ...]) -> None:
        self._died.clear()
        self._client, self.status, self.reason = client, "up", ""
        self.starts += 1
        if self.starts > 1:
            log.info("MCP server %s is up again (%d tools)", self.name, len(tools))
        else:
            log.info("MCP server %s is up (%d tools)", self.name, len(tools))
        if not self.tools:
            self.tools = tools
        self.tried.set()
        self._changed.set()  # wakes every waiter; the next change sets a new one
        self._changed = asyncio.Event()

    def _down(self, reason: str, delay: float, *, first: bool) -> None:
        self.status, self.reason = "down", reason
        # One line per failure streak; the retries after it are at debug.
        level = logging.WARNING if first else logging.DEBUG
        log.log(level, "MCP server %s is unavailable: %s; restarting in %.1f s", self.name, reason, delay)
        self.tried.set()
        self._changed.set()  # wakes every waiter; the next change sets a new one
        self._changed = asyncio.Event()

    async def wait_up(self, starts: int = 1) -> None:
        """Until the server is up, having come up ``starts`` times in all."""
        while not (self.status == "up" and self.starts >= starts):
            await self._changed.wait()

    # ------------------------------------------------------------------ calls
    def unavailable(self) -> str:
        why = f" ({self.reason})" if self.reason else ""
        return f"the MCP server {self.name!r} is unavailable{why}; it is being restarted, try again later"

    async def call(self, tool: str, args: dict[str, Any]) -> CallToolResult:
        """Call ``tool`` on the server; ``ToolFailed`` with a clear sentence when it cannot answer."""
        client = self._client
        if client is None or self.status != "up":
            raise ToolFailed(self.unavailable())
        try:
            return await client.call_tool(tool, args, read_timeout_seconds=self.config.timeout_seconds)
        except MCPError as exc:
            if exc.code == REQUEST_TIMEOUT:
                raise ToolFailed(
                    f"the MCP server {self.name!r} did not answer within {self.config.timeout_seconds:g} s"
                ) from None
            if exc.code != CONNECTION_CLOSED:
                raise ToolFailed(f"the MCP server {self.name!r} refused the call: {exc.message}") from None
            self._lost(client, "the connection closed during a call")
        except (OSError, httpx2.TransportError) as exc:
            self._lost(client, describe_error(exc))
        raise ToolFailed(
            f"the MCP server {self.name!r} stopped answering during the call; it is being restarted, try again shortly"
        )

    def _lost(self, client: Client, reason: str) -> None:
        if self._client is client and not self._died.is_set():
            self._client, self.status, self._death = None, "down", reason
            self._died.set()


async def _list_tools(client: Client) -> tuple[RemoteTool, ...]:
    tools: list[RemoteTool] = []
    cursor: str | None = None
    for _ in range(100):  # a server that pages forever must not hang the start
        page = await client.list_tools(cursor=cursor)
        tools.extend(RemoteTool(t.name, t.description or "", dict(t.input_schema)) for t in page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
    return tuple(tools)
