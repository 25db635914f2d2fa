"""What an MCP tool call costs over calling the same function directly.

    python bench/mcp.py [--calls 500]

The function is ``add`` of the test server (``tests/fakes/mcp_servers/tools_server.py``, written
with the SDK's ``MCPServer``). Measured in the same run, per call:

- direct: the plain Python function, awaited through a coroutine as a tool would be;
- stdio and HTTP: the registry's ``Tool.invoke`` as the agent's executor awaits it — the hop to
  the MCP servers' own loop, the SDK client, JSON-RPC over the server's stdin/stdout or a
  streamable-HTTP POST on 127.0.0.1, the server's dispatch, and the result back as text.

The last line of output is one JSON object of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)

from agents.mcp import McpConfig, McpServers
from agents.tools.base import Tool, ToolContext, ToolRegistry
from agents.tools.config import ToolsConfig
from bench._common import emit, latency_figures
from hub.messages import ConversationRef, Sender
from tests.fakes.mcp_servers.tools_server import add

logging.getLogger("httpx2").setLevel(logging.WARNING)  # one INFO line per request otherwise

SERVER = "tests.fakes.mcp_servers.tools_server"


async def timed(n: int, call: Callable[[], Awaitable[Any]], *, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        await call()
    out: list[float] = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        out.append(time.perf_counter() - start)
    return out


async def http_server(home: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", SERVER, "http", cwd=ROOT, env={"PATH": os.environ["PATH"], "HOME": home},
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    return proc, f"http://127.0.0.1:{int(line.split()[1])}/mcp"


async def bench_tool(name: str, tool: Tool, ctx: ToolContext, n: int) -> dict[str, float]:
    async def once() -> None:
        assert await tool.invoke({"a": 2, "b": 40}, ctx) == "42"

    figures = latency_figures(f"{name}_", await timed(n, once))
    print(f"MCP call over {name}: p50 {figures[f'{name}_p50_ms']:.3f} ms, p99 {figures[f'{name}_p99_ms']:.3f} ms")
    return figures


async def main(n: int) -> dict[str, Any]:
    async def direct() -> None:
        assert add(2, 40) == 42

    figures: dict[str, Any] = {"calls": n, **latency_figures("direct_", await timed(n, direct))}
    print(f"direct call: p50 {figures['direct_p50_ms']:.4f} ms, p99 {figures['direct_p99_ms']:.4f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = await http_server(tmp)
        stdio = {"command": sys.executable, "args": ["-m", SERVER, "stdio"], "cwd": str(ROOT), "risk": "low"}
        config = McpConfig.model_validate({"servers": {"stdio": stdio, "http": {"url": url, "risk": "low"}}})
        servers = McpServers(config, state_dir=Path(tmp) / "mcp")
        servers.start()
        registry = ToolRegistry()
        servers.register(registry)
        ctx = ToolContext(
            conversation=ConversationRef(channel="bench", chat="c"),
            sender=Sender(id="u"),
            workspace=Path(tmp),
            config=ToolsConfig(),
        )
        try:
            for transport in ("stdio", "http"):
                tool = registry.get(f"{transport}__add")
                assert tool is not None, f"the {transport} server did not start"
                figures.update(await bench_tool(transport, tool, ctx, n))
                over = figures[f"{transport}_p50_ms"] - figures["direct_p50_ms"]
                figures[f"{transport}_overhead_p50_ms"] = round(over, 3)
                print(f"  overhead over a direct call ({transport}): {over:.3f} ms per call (p50)")
        finally:
            await servers.aclose()
            proc.kill()
            await proc.wait()
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    emit(asyncio.run(main(parser.parse_args().calls)))
