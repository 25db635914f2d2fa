"""The ``web`` category: fetch one URL and return it as readable text.

Server-side request forgery is the risk here: the hub usually runs next to things the model
must not reach (a cloud metadata endpoint, the router, the hub's own API). So every hop —
the first URL and each redirect, followed by hand — is checked: scheme, host allow/deny
lists, and every address the name resolves to. The connector then connects only to the
addresses that were checked (a pinned resolver), so a second DNS answer cannot swap in a
private address between the check and the connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
from html.parser import HTMLParser

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from hub.errors import ToolDenied, ToolFailed

from .base import Risk, Tool, ToolContext
from .config import ToolsConfig, WebToolsConfig
from .decorator import configure, tool

logger = logging.getLogger(__name__)

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_TEXTUAL = re.compile(r"^(text/|application/(json|xml|xhtml\+xml|javascript|ld\+json|rss\+xml|atom\+xml))")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _settings(ctx: ToolContext) -> WebToolsConfig:
    cfg = ctx.config
    return cfg.web if isinstance(cfg, ToolsConfig) else WebToolsConfig()


def _host_matches(host: str, patterns: tuple[str, ...]) -> bool:
    for pattern in patterns:
        p = pattern.lower().rstrip(".").removeprefix("*.")
        if host == p or host.endswith("." + p):
            return True
    return False


def _address_refused(ip: IPAddress, cfg: WebToolsConfig) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if cfg.allow_private or any(ip in net for net in cfg.allow_networks):
        return False
    # not is_global covers private, loopback, link-local, reserved, CGNAT and documentation ranges.
    return not ip.is_global or ip.is_multicast or ip.is_unspecified


class _PinnedResolver(AbstractResolver):
    """Answers aiohttp's lookups only with addresses this fetch has already checked."""

    def __init__(self) -> None:
        self.pinned: dict[str, list[ResolveResult]] = {}

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = self.pinned.get(host.lower().rstrip("."))
        if not results:
            raise OSError(f"host {host!r} was not checked before connecting")
        return [{**r, "port": port} for r in results]

    async def close(self) -> None:
        return None


class _Guard:
    def __init__(self, cfg: WebToolsConfig, resolver: _PinnedResolver) -> None:
        self.cfg = cfg
        self.resolver = resolver

    async def check(self, url: URL) -> None:
        """Refuse ``url`` unless its scheme, host and every resolved address are allowed."""
        if url.scheme not in ("http", "https"):
            raise ToolDenied(f"only http and https URLs can be fetched, not {url.scheme or 'no scheme'!r}")
        host = (url.raw_host or "").lower().rstrip(".")
        if not host:
            raise ToolFailed(f"URL {str(url)!r} has no host")
        if _host_matches(host, self.cfg.deny_hosts):
            raise ToolDenied(f"host {host!r} is on the deny list")
        if self.cfg.allow_hosts and not _host_matches(host, self.cfg.allow_hosts):
            raise ToolDenied(f"host {host!r} is not on the allow list ({', '.join(self.cfg.allow_hosts)})")
        try:
            literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            literal = None
        if literal is not None:
            if _address_refused(literal, self.cfg):
                raise ToolDenied(f"address {literal} is private, loopback or reserved; refused")
            return
        await self._resolve_and_pin(host, url.port or 0)

    async def _resolve_and_pin(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ToolFailed(f"cannot resolve host {host!r}: {exc.strerror}") from None
        results: list[ResolveResult] = []
        for family, _type, proto, _canon, sockaddr in infos:
            address = str(sockaddr[0]).split("%", 1)[0]
            ip = ipaddress.ip_address(address)
            # One bad address refuses the host: the connector might otherwise pick it.
            if _address_refused(ip, self.cfg):
                raise ToolDenied(f"host {host!r} resolves to {ip}, a private, loopback or reserved address")
            results.append(
                ResolveResult(
                    hostname=host, host=str(sockaddr[0]), port=port,
                    family=family, proto=proto, flags=socket.AI_NUMERICHOST,
                )
            )  # fmt: skip
        self.resolver.pinned[host] = results


class _TextExtractor(HTMLParser):
    _SKIP = frozenset({"script", "style", "noscript", "template", "svg", "iframe", "object", "head"})
    _BLOCK = frozenset(
        {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article",
         "header", "footer", "pre", "blockquote", "table", "ul", "ol", "hr", "main", "nav", "dt", "dd"}
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self._skip_depth = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self._SKIP:
            self._skip_depth += 1
        elif tag in self._BLOCK:
            self.parts.append("\n- " if tag == "li" else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self._SKIP:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in self._BLOCK and tag != "li":  # the next item starts its own line
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        elif not self._skip_depth:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Readable text of an HTML page: scripts, styles and tags removed, whitespace tidied."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    title = " ".join("".join(parser.title).split())
    return f"# {title}\n\n{text}" if title else text


async def _read_capped(resp: aiohttp.ClientResponse, cap: int) -> tuple[bytes, bool]:
    body = bytearray()
    async for chunk in resp.content.iter_chunked(65536):
        body += chunk
        if len(body) >= cap:
            return bytes(body[:cap]), True
    return bytes(body), False


def _render(resp: aiohttp.ClientResponse, body: bytes, truncated: bool, cfg: WebToolsConfig) -> str:
    ctype = resp.content_type or "application/octet-stream"
    head = f"status: {resp.status}\ncontent-type: {ctype}\nurl: {resp.url}\n"
    if truncated:
        head += f"[download stopped at {cfg.max_bytes} bytes]\n"
    if not _TEXTUAL.match(ctype):
        return head + f"\n[{len(body)} bytes of {ctype} not shown]"
    text = body.decode(resp.charset or "utf-8", errors="replace")
    if ctype in ("text/html", "application/xhtml+xml"):
        text = html_to_text(text)
    if len(text) > cfg.max_chars:
        text = text[: cfg.max_chars] + f"\n[text truncated: {cfg.max_chars} of {len(text)} characters shown]"
    return head + "\n" + text


async def fetch(url: str, cfg: WebToolsConfig) -> str:
    """Fetch ``url`` under ``cfg``'s rules; the text the ``fetch_url`` tool returns."""
    try:
        current = URL(url.strip())
    except (ValueError, TypeError) as exc:
        raise ToolFailed(f"invalid URL {url!r}: {exc}") from None
    resolver = _PinnedResolver()
    guard = _Guard(cfg, resolver)
    connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=cfg.timeout_seconds)
    headers = {"User-Agent": cfg.user_agent, "Accept": "text/html,text/plain,*/*;q=0.5"}
    try:
        async with (
            aiohttp.ClientSession(
                connector=connector, timeout=timeout, headers=headers, trust_env=False
            ) as session,
            asyncio.timeout(cfg.timeout_seconds),
        ):
            for _hop in range(cfg.max_redirects + 1):
                await guard.check(current)
                async with session.get(current, allow_redirects=False) as resp:
                    location = resp.headers.get("Location")
                    if resp.status in _REDIRECTS and location:
                        current = resp.url.join(URL(location))
                        continue
                    body, truncated = await _read_capped(resp, cfg.max_bytes)
                    return _render(resp, body, truncated, cfg)
            raise ToolFailed(f"too many redirects (more than {cfg.max_redirects})")
    except TimeoutError:
        raise ToolFailed(f"fetching {url!r} timed out after {cfg.timeout_seconds:g}s") from None
    except aiohttp.ClientError as exc:
        raise ToolFailed(f"fetching {url!r} failed: {type(exc).__name__}: {exc}") from None


@tool(category="web", risk=Risk.MEDIUM, permissions=("net.http",), timeout_seconds=600)
async def fetch_url(ctx: ToolContext, url: str) -> str:
    """Fetch a web page or file over http(s) and return its status, content type and text.

    Args:
        url: the absolute http or https URL.
    """
    return await fetch(url, _settings(ctx))


def web_tools(config: ToolsConfig) -> list[Tool]:
    # The outer guard is a little longer than the fetch's own timeout, which reports more clearly.
    return [configure(fetch_url, timeout_seconds=config.web.timeout_seconds + 5)]
