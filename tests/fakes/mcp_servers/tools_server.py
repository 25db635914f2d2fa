"""An MCP server for the MCP client's tests, written with the SDK's high-level API (``MCPServer``).

    python -m tests.fakes.mcp_servers.tools_server stdio
    python -m tests.fakes.mcp_servers.tools_server http [--port 0] [--token T]

Over HTTP it binds 127.0.0.1 (port 0: any free port), prints ``PORT <n>`` once listening and,
with ``--token``, answers 401 to any request without ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys

from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp, Receive, Scope, Send

server = MCPServer("autohands-test-tools")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def env_var(name: str) -> str:
    """The value of one environment variable of this server's process, or <unset>."""
    return os.environ.get(name, "<unset>")


@server.tool()
def env_names() -> str:
    """The names of every environment variable of this server's process, comma-separated."""
    return ",".join(sorted(os.environ))


@server.tool()
def pid() -> int:
    """This server's process id."""
    return os.getpid()


@server.tool()
async def wait(seconds: float) -> str:
    """Sleep, then say so (a call that is still running when the test kills the server)."""
    await asyncio.sleep(seconds)
    return f"waited {seconds}"


@server.tool()
def die() -> str:
    """Kill this server's process in the middle of the call (SIGKILL: no clean-up, no answer)."""
    os.kill(os.getpid(), signal.SIGKILL)
    return "unreachable"


@server.tool()
def shout(text: str) -> str:
    """Upper-case the text (a tool the tests deny)."""
    return text.upper()


class _RequireToken:
    """401 unless the request carries the bearer token: shows the configured headers arrive."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.expected = app, f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != self.expected:
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"unauthorized"})
            return
        await self.app(scope, receive, send)


async def serve_http(port: int, token: str | None) -> None:
    import uvicorn

    app: ASGIApp = server.streamable_http_app()
    if token:
        app = _RequireToken(app, token)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    web = uvicorn.Server(config)
    sock.listen()
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    await web.serve(sockets=[sock])


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("transport", choices=["stdio", "http"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token")
    args = parser.parse_args(argv)
    if args.transport == "stdio":
        server.run("stdio")
    else:
        asyncio.run(serve_http(args.port, args.token))


if __name__ == "__main__":
    main(sys.argv[1:])
