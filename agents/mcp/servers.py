"""``McpServers``: the configured MCP servers, run on an event loop of their own.

The agent factory is synchronous and the registry is fixed when the agent is built, so the
servers are started there: each on a supervisor task (``Connection.run``) on a dedicated thread's
loop, and ``start`` waits (bounded by each server's ``start_timeout_seconds``) until every server
has come up or failed once. Their own loop keeps the SDK's anyio task groups apart from the
hub's runs; a call crosses over with ``run_coroutine_threadsafe``, and cancelling the caller (the
executor's timeout, ``/stop``) cancels the call on the other side.

A server that failed at start still contributes the tools it listed the last time it came up
(``<data_dir>/mcp/NAME.tools.json``): they answer "unavailable" until a restart succeeds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub.agent import Check
from hub.backoff import TENTH_LONGER, Backoff

from ..tools.base import Tool, ToolRegistry
from .config import McpConfig

if TYPE_CHECKING:  # the SDK loads only when a server is configured: it costs every agent build ~0.3 s
    from mcp_types import CallToolResult

    from ._connection import Connection

log = logging.getLogger(__name__)

_STOP_SECONDS = 15.0  # the SDK's stdio shutdown: 2 s grace, SIGTERM, 2 s, SIGKILL, 2 s — per server, concurrently


class McpServers:
    """The enabled ``[mcp.servers.*]``: started by ``start``, stopped by ``aclose``.

    Args:
        config: the validated ``[mcp]`` section.
        state_dir: where the servers' stderr logs and last tool lists are kept (``<data_dir>/mcp``);
            None keeps nothing (stderr goes to the hub's).
        backoff: the pauses between restarts; default from ``restart_first_seconds`` /
            ``restart_max_seconds``.
    """

    def __init__(self, config: McpConfig, *, state_dir: Path | None = None, backoff: Backoff | None = None) -> None:
        self.config = config
        self._state_dir = state_dir
        pause = backoff or Backoff(
            first=config.restart_first_seconds, cap=config.restart_max_seconds, jitter=TENTH_LONGER
        )
        if config.enabled():
            from ._connection import Connection
        self.connections = [
            Connection(name, server, backoff=pause, ping_seconds=config.ping_seconds, stderr_dir=state_dir)
            for name, server in config.enabled().items()
        ]
        self._tasks: list[asyncio.Task[None]] = []
        self._state = "new"
        self._loop: asyncio.AbstractEventLoop
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start every server; return once each has come up or failed once (never raises for a server)."""
        if self._state != "new":
            raise RuntimeError("McpServers already started; build a new one")
        self._state = "running"
        if not self.connections:
            return
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mcp-servers", daemon=True)
        self._thread.start()
        longest = max((c.config.start_timeout_seconds for c in self.connections), default=0.0)
        started = asyncio.run_coroutine_threadsafe(self._start_all(), self._loop)
        try:
            started.result(timeout=longest + 5.0)
        except TimeoutError:  # a server whose start hangs past its own timeout: go on without waiting
            log.warning("MCP servers: still starting after %.0f s; going on without waiting", longest + 5.0)
        for conn in self.connections:
            self._remember_tools(conn)

    async def _start_all(self) -> None:
        self._tasks = [asyncio.create_task(c.run(), name=f"mcp:{c.name}") for c in self.connections]
        await asyncio.gather(*(c.tried.wait() for c in self.connections))

    async def aclose(self) -> None:
        """Stop every server (the agent's ``aclose``); safe to call more than once."""
        running, self._state = self._state == "running", "closed"
        if not running or self._thread is None:
            return
        stopping = asyncio.run_coroutine_threadsafe(self._stop_all(), self._loop)
        try:
            await asyncio.wait_for(asyncio.wrap_future(stopping), _STOP_SECONDS)
        except TimeoutError:
            log.warning("MCP servers: not all stopped within %.0f s", _STOP_SECONDS)
        self._loop.call_soon_threadsafe(self._loop.stop)
        thread = self._thread
        await asyncio.to_thread(thread.join, 5.0)
        if not thread.is_alive():
            self._loop.close()

    async def _stop_all(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait_up(self, name: str, *, starts: int = 1) -> None:
        """Until server ``name`` is up, having come up ``starts`` times (tests and ``bench/mcp.py``)."""
        conn = next(c for c in self.connections if c.name == name)
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(conn.wait_up(starts), self._loop))

    # ------------------------------------------------------------------ what the agent gets
    def register(self, registry: ToolRegistry) -> None:
        """Add the tools to ``registry``, each server's category described in one line."""
        if not self.connections:
            return
        from ._tools import build_tools, category

        for conn in self.connections:
            tools = build_tools(conn, conn.tools, self._call)
            if tools:
                registry.extend(tools)
                registry.describe(category(conn.name), _category_line(conn.name, tools))

    def checks(self) -> list[Check]:
        """One ``doctor`` row per configured server."""
        rows = [
            Check(f"mcp {name}", "off", "enabled = false") for name, s in self.config.servers.items() if not s.enabled
        ]
        return [*(self._check(c) for c in self.connections), *rows]

    def _check(self, conn: Connection) -> Check:
        what = f"mcp {conn.name}"
        where = conn.config.url or conn.config.command or ""
        if conn.status == "up":
            from ._tools import build_tools

            offered = len(build_tools(conn, conn.tools, self._call))
            return Check(what, "ok", f"{offered} of {len(conn.tools)} tools offered ({where})")
        if conn.status == "starting":
            return Check(what, "WARNING", f"still starting ({where})", fix="raise start_timeout_seconds if it is slow")
        fix = f"check [mcp.servers.{conn.name}] and that {where} runs"
        if self._state_dir is not None and conn.config.command is not None:
            fix += f"; its stderr is in {self._state_dir / f'{conn.name}.stderr.log'}"
        return Check(what, "ERROR", f"unavailable: {conn.reason}", fix=fix)

    async def _call(self, conn: Connection, tool: str, args: dict[str, Any]) -> CallToolResult:
        future = asyncio.run_coroutine_threadsafe(conn.call(tool, args), self._loop)
        return await asyncio.wrap_future(future)

    # ------------------------------------------------------------------ the last tool lists
    def _remember_tools(self, conn: Connection) -> None:
        if self._state_dir is None:
            return
        from ._connection import RemoteTool

        path = self._state_dir / f"{conn.name}.tools.json"
        try:
            if conn.tools:
                self._state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                listed = [{"name": t.name, "description": t.description, "schema": t.schema} for t in conn.tools]
                path.write_text(json.dumps(listed), encoding="utf-8")
            elif path.is_file():
                conn.tools = tuple(
                    RemoteTool(t["name"], t["description"], t["schema"]) for t in json.loads(path.read_text())
                )
        except (OSError, ValueError, KeyError, TypeError) as exc:  # a cache: never worth failing the start
            log.warning("MCP server %s: tool list cache %s unusable: %s", conn.name, path, exc)


def _category_line(server: str, tools: Sequence[Tool]) -> str:
    names = ", ".join(t.name.split("__", 1)[-1] for t in tools[:8])
    more = f" and {len(tools) - 8} more" if len(tools) > 8 else ""
    return f"tools from the MCP server {server}: {names}{more}"
