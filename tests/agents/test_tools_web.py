"""The ``web`` tool against a local aiohttp server: SSRF refusals, caps, redirects, HTML to text."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from agents.tools.base import Risk, ToolContext
from agents.tools.config import ToolsConfig, WebToolsConfig
from agents.tools.web import fetch_url, html_to_text, web_tools
from hub.errors import ToolDenied, ToolFailed

from .conftest_tools import call, make_ctx

PAGE = """<!doctype html><html><head><title>Test  Page</title><style>body{color:red}</style>
<script>var secret = "do not show";</script></head>
<body><h1>Hello</h1><p>First &amp; <b>bold</b> paragraph.</p>
<ul><li>one</li><li>two</li></ul><noscript>enable js</noscript></body></html>"""


class Server:
    def __init__(self) -> None:
        self.hits: list[str] = []
        self.never = asyncio.Event()
        self.port = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(request.path)
        match request.path:
            case "/page":
                return web.Response(text=PAGE, content_type="text/html")
            case "/json":
                return web.json_response({"ok": True})
            case "/binary":
                return web.Response(body=b"\x89PNG" + bytes(100), content_type="image/png")
            case "/big":
                resp = web.StreamResponse()
                resp.content_type = "text/plain"
                await resp.prepare(request)
                for _ in range(100):
                    await resp.write(b"y" * 10_000)
                return resp
            case "/slow":
                await self.never.wait()
                return web.Response(text="late")
            case "/loop":
                raise web.HTTPFound("/loop")
            case "/to-page":
                raise web.HTTPFound("/page")
            case "/redirect":
                raise web.HTTPFound(request.query["to"])
        raise web.HTTPNotFound()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", srv.handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    srv.port = runner.addresses[0][1]
    try:
        yield srv
    finally:
        srv.never.set()
        await runner.cleanup()


def ctx_with(tmp_path: Path, **web_cfg: object) -> ToolContext:
    return make_ctx(tmp_path, ToolsConfig(web=WebToolsConfig(**web_cfg)))  # type: ignore[arg-type]


def test_risk_and_configured_timeout() -> None:
    assert fetch_url.risk is Risk.MEDIUM and fetch_url.permissions == ("net.http",)
    [configured] = web_tools(ToolsConfig(web=WebToolsConfig(timeout_seconds=3)))
    assert configured.timeout_seconds == 8


async def test_loopback_refused_by_default(server: Server, tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    with pytest.raises(ToolDenied, match=r"127\.0\.0\.1 is private, loopback or reserved"):
        await call(fetch_url, ctx, url=f"{server.base}/page")
    with pytest.raises(ToolDenied, match="'localhost' resolves to"):
        await call(fetch_url, ctx, url=f"http://localhost:{server.port}/page")
    assert server.hits == []


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1]/",
        "http://224.0.0.1/",
        "http://100.64.0.1/",
    ],
)
async def test_private_addresses_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ToolDenied):
        await call(fetch_url, make_ctx(tmp_path), url=url)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "javascript:alert(1)"])
async def test_only_http_and_https(tmp_path: Path, url: str) -> None:
    with pytest.raises(ToolDenied, match="only http and https"):
        await call(fetch_url, make_ctx(tmp_path), url=url)


async def test_allowed_fetch_returns_readable_text(server: Server, tmp_path: Path) -> None:
    ctx = ctx_with(tmp_path, allow_private=True)
    out = await call(fetch_url, ctx, url=f"{server.base}/page")
    head, _, body = out.partition("\n\n")
    assert head == f"status: 200\ncontent-type: text/html\nurl: {server.base}/page"
    assert body == "# Test Page\n\nHello\n\nFirst & bold paragraph.\n\n- one\n- two"
    assert "secret" not in out and "color" not in out and "enable js" not in out


async def test_hostname_is_resolved_checked_and_pinned(server: Server, tmp_path: Path) -> None:
    ctx = ctx_with(tmp_path, allow_private=True)
    out = await call(fetch_url, ctx, url=f"http://localhost:{server.port}/json")
    assert out.endswith('\n\n{"ok": true}')


async def test_other_content(server: Server, tmp_path: Path) -> None:
    ctx = ctx_with(tmp_path, allow_private=True)
    assert (await call(fetch_url, ctx, url=f"{server.base}/binary")).endswith(
        "[104 bytes of image/png not shown]"
    )
    missing = await call(fetch_url, ctx, url=f"{server.base}/nope")
    assert missing.startswith("status: 404\n")


async def test_host_lists(server: Server, tmp_path: Path) -> None:
    allow_only = ctx_with(tmp_path, allow_private=True, allow_hosts=("example.com",))
    with pytest.raises(ToolDenied, match="not on the allow list"):
        await call(fetch_url, allow_only, url=f"{server.base}/page")
    deny = ctx_with(tmp_path, allow_private=True, deny_hosts=("localhost",))
    with pytest.raises(ToolDenied, match="deny list"):
        await call(fetch_url, deny, url=f"http://LOCALHOST:{server.port}/page")
    subdomain = ctx_with(tmp_path, deny_hosts=("*.example.com",))
    with pytest.raises(ToolDenied, match="deny list"):
        await call(fetch_url, subdomain, url="https://api.example.com/")
    both = ctx_with(tmp_path, allow_private=True, allow_hosts=("127.0.0.1",))
    assert (await call(fetch_url, both, url=f"{server.base}/json")).startswith("status: 200")


async def test_size_cap(server: Server, tmp_path: Path) -> None:
    ctx = ctx_with(tmp_path, allow_private=True, max_bytes=25_000, max_chars=1_000_000)
    out = await call(fetch_url, ctx, url=f"{server.base}/big")
    assert "[download stopped at 25000 bytes]" in out
    assert out.endswith("\n\n" + "y" * 25_000)


async def test_text_cap(server: Server, tmp_path: Path) -> None:
    ctx = ctx_with(tmp_path, allow_private=True, max_chars=10)
    out = await call(fetch_url, ctx, url=f"{server.base}/big")
    assert out.endswith("y" * 10 + "\n[text truncated: 10 of 1000000 characters shown]")


async def test_time_cap(server: Server, tmp_path: Path) -> None:
    ctx = ctx_with(tmp_path, allow_private=True, timeout_seconds=0.3)
    with pytest.raises(ToolFailed, match=r"timed out after 0\.3s"):
        await call(fetch_url, ctx, url=f"{server.base}/slow")


async def test_redirects_are_followed_and_rechecked(server: Server, tmp_path: Path) -> None:
    # Only the test server's address is allowed; every other private address stays refused.
    ctx = ctx_with(tmp_path, allow_networks=(ipaddress.ip_network("127.0.0.1/32"),))
    out = await call(fetch_url, ctx, url=f"{server.base}/to-page")
    assert f"url: {server.base}/page" in out and "# Test Page" in out
    for target in (
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[::1]/",
        "file:///etc",
    ):
        with pytest.raises(ToolDenied):
            await call(fetch_url, ctx, url=f"{server.base}/redirect?to={target}")
    assert "/latest/meta-data/" not in server.hits


async def test_redirect_to_denied_host_refused(server: Server, tmp_path: Path) -> None:
    ctx = ctx_with(
        tmp_path, allow_networks=(ipaddress.ip_network("127.0.0.1/32"),), deny_hosts=("evil.test",)
    )
    with pytest.raises(ToolDenied, match="deny list"):
        await call(fetch_url, ctx, url=f"{server.base}/redirect?to=http://evil.test/")


async def test_too_many_redirects(server: Server, tmp_path: Path) -> None:
    ctx = ctx_with(tmp_path, allow_private=True, max_redirects=3)
    with pytest.raises(ToolFailed, match=r"too many redirects \(more than 3\)"):
        await call(fetch_url, ctx, url=f"{server.base}/loop")
    assert server.hits == ["/loop"] * 4


async def test_connection_refused_is_a_tool_error(tmp_path: Path, closed_port: int) -> None:
    ctx = ctx_with(tmp_path, allow_private=True)
    with pytest.raises(ToolFailed, match="failed: ClientConnectorError"):
        await call(fetch_url, ctx, url=f"http://127.0.0.1:{closed_port}/")


def test_html_to_text() -> None:
    assert html_to_text("<p>a<br>b</p><script>x</script><pre>c</pre>") == "a\nb\n\nc"
    assert html_to_text("no tags &lt;here&gt;") == "no tags <here>"
