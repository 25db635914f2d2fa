"""Which network addresses the ``web`` tool may connect to, and a resolver pinned to them.

An IPv6 address can carry an IPv4 address that a translator or tunnel on the way will reach:
NAT64 (``64:ff9b::/96``, ``64:ff9b:1::/48``), 6to4 (``2002::/16``), Teredo (``2001::/32``) and
the deprecated IPv4-compatible form (``::/96``). A name resolving to ``64:ff9b::a9fe:a9fe``
reaches 169.254.169.254 through a NAT64 gateway, so such an address is refused when it, or any
IPv4 address inside it, is refused. An IPv4-mapped address (``::ffff:0:0/96``) is the IPv4 host
itself and is judged as that address alone.

Names are resolved once, checked, and pinned: the connector only ever gets addresses that were
checked, so a second DNS answer cannot swap in a private address between check and connect.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable

from aiohttp.abc import AbstractResolver, ResolveResult

from hub.errors import ToolDenied, ToolFailed

from .config import WebToolsConfig

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

Lookup = Callable[[str, int], Awaitable[list[str]]]
"""Resolves ``(host, port)`` to address strings; raises ``ToolFailed`` when it cannot."""

_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_LAST_32_BITS = 0xFFFFFFFF


def embedded_ipv4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (none for an IPv4 address)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return []
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    last32 = ipaddress.IPv4Address(int(ip) & _LAST_32_BITS)
    found: list[ipaddress.IPv4Address] = []
    if any(ip in net for net in _NAT64):
        found.append(last32)
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:  # :: and ::1 are not IPv4-compatible addresses
        found.append(last32)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)  # (server, client); the client is already de-obfuscated
    return found


def _plain_refused(ip: IPAddress, cfg: WebToolsConfig) -> bool:
    if cfg.allow_private or any(ip in net for net in cfg.allow_networks):
        return False
    # not is_global covers private, loopback, link-local, reserved, CGNAT and documentation ranges.
    return not ip.is_global or ip.is_multicast or ip.is_unspecified


def refused_part(ip: IPAddress, cfg: WebToolsConfig) -> IPAddress | None:
    """The address that makes ``ip`` refused (``ip`` itself or an IPv4 inside it), or None."""
    inner = embedded_ipv4(ip)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        inner, ip = [], ip.ipv4_mapped
    for candidate in (ip, *inner):
        if _plain_refused(candidate, cfg):
            return candidate
    return None


def _what(ip: IPAddress, culprit: IPAddress) -> str:
    if culprit == ip:
        return f"{ip}, a private, loopback or reserved address"
    return f"{ip}, which embeds {culprit}, a private, loopback or reserved address"


def check_literal(host: str, cfg: WebToolsConfig) -> bool:
    """Whether ``host`` is an IP address; ``ToolDenied`` if it is one that is refused."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    culprit = refused_part(ip, cfg)
    if culprit is not None:
        what = "is" if culprit == ip else f"embeds {culprit}, which is"
        raise ToolDenied(f"address {ip} {what} private, loopback or reserved; refused")
    return True


async def system_lookup(host: str, port: int) -> list[str]:
    """The operating system's answer for ``host`` (``getaddrinfo``), as address strings."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ToolFailed(f"cannot resolve host {host!r}: {exc.strerror}") from None
    return [str(sockaddr[0]) for _family, _type, _proto, _canon, sockaddr in infos]


class PinnedResolver(AbstractResolver):
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


class AddressGuard:
    """Checks every address of each host before connecting, and pins the ones it checked.

    Args:
        cfg: the ``[tools.web]`` settings (``allow_private``, ``allow_networks``).
        lookup: how names are resolved; tests pass their own answers here.
    """

    def __init__(self, cfg: WebToolsConfig, lookup: Lookup = system_lookup) -> None:
        self._cfg = cfg
        self._lookup = lookup
        self.resolver = PinnedResolver()

    async def pin(self, host: str, port: int) -> None:
        """Refuse ``host`` unless it and every address it resolves to are allowed; then pin."""
        if check_literal(host, self._cfg):
            return
        addresses = dict.fromkeys(await self._lookup(host, port))
        if not addresses:
            raise ToolFailed(f"host {host!r} resolves to no address")
        results: list[ResolveResult] = []
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            culprit = refused_part(ip, self._cfg)
            # One bad address refuses the host: the connector might otherwise pick it.
            if culprit is not None:
                raise ToolDenied(f"host {host!r} resolves to {_what(ip, culprit)}; refused")
            family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
            results.append(
                ResolveResult(
                    hostname=host, host=address, port=port,
                    family=family, proto=socket.IPPROTO_TCP, flags=socket.AI_NUMERICHOST,
                )
            )  # fmt: skip
        self.resolver.pinned[host] = results
