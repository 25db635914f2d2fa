"""The web tool's guards without a server: IPv4 inside IPv6, host names, and URLs that carry
text the model read."""

from __future__ import annotations

import base64
from ipaddress import IPv4Address, IPv6Address, ip_network
from pathlib import Path

import pytest
from yarl import URL

from agents.tools._egress import MAX_PIECES, carried_reason, host_matches, normalise_host, sent_text
from agents.tools._netguard import AddressGuard, Lookup, embedded_ipv4
from agents.tools.base import Exposure
from agents.tools.config import WebToolsConfig
from agents.tools.web import assess_fetch, fetch
from hub.errors import ToolDenied, ToolFailed

from .conftest_tools import make_ctx

PRIVATE_V4 = ("127.0.0.1", "10.1.2.3", "192.168.1.1", "169.254.169.254")
PUBLIC_V4 = "93.184.216.34"
PUBLIC_SERVER = "65.54.227.120"


def nat64(v4: str) -> IPv6Address:
    return IPv6Address("64:ff9b::") + int(IPv4Address(v4))


def nat64_local(v4: str) -> IPv6Address:
    return IPv6Address("64:ff9b:1::") + int(IPv4Address(v4))


def compatible(v4: str) -> IPv6Address:
    return IPv6Address(int(IPv4Address(v4)))


def sixtofour(v4: str) -> IPv6Address:
    return IPv6Address((0x2002 << 112) | (int(IPv4Address(v4)) << 80) | 1)


def teredo_client(v4: str) -> IPv6Address:
    """Teredo with a public server and ``v4`` as the (obfuscated) client address."""
    port = ~40000 & 0xFFFF
    client = ~int(IPv4Address(v4)) & 0xFFFFFFFF
    return IPv6Address((0x20010000 << 96) | (int(IPv4Address(PUBLIC_SERVER)) << 64) | (port << 32) | client)


def teredo_server(v4: str) -> IPv6Address:
    """Teredo with ``v4`` as the server and a public client."""
    client = ~int(IPv4Address(PUBLIC_V4)) & 0xFFFFFFFF
    return IPv6Address((0x20010000 << 96) | (int(IPv4Address(v4)) << 64) | client)


WRAPS = {
    "nat64": nat64,
    "nat64-local": nat64_local,
    "ipv4-compatible": compatible,
    "6to4": sixtofour,
    "teredo-client": teredo_client,
    "teredo-server": teredo_server,
}
# The operator lets the prefixes themselves through, so only the IPv4 inside can refuse.
TRANSITION_PREFIXES = tuple(
    ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96", "2002::/16", "2001::/32")
)


@pytest.mark.parametrize("kind", list(WRAPS))
def test_embedded_ipv4_is_found(kind: str) -> None:
    found = embedded_ipv4(WRAPS[kind]("10.1.2.3"))
    assert IPv4Address("10.1.2.3") in found
    if kind.startswith("teredo"):
        assert len(found) == 2


def test_addresses_without_embedded_ipv4() -> None:
    for plain in ("::", "::1", "2606:4700::1111", "fe80::1"):
        assert embedded_ipv4(IPv6Address(plain)) == []
    assert embedded_ipv4(IPv4Address("10.0.0.1")) == []
    assert embedded_ipv4(IPv6Address("::ffff:10.0.0.1")) == [IPv4Address("10.0.0.1")]


@pytest.mark.parametrize("v4", PRIVATE_V4)
@pytest.mark.parametrize("kind", list(WRAPS))
async def test_private_ipv4_inside_ipv6_is_refused(tmp_path: Path, kind: str, v4: str) -> None:
    address = WRAPS[kind](v4)
    for cfg in (WebToolsConfig(), WebToolsConfig(allow_networks=TRANSITION_PREFIXES)):
        url = f"http://[{address}]/latest/meta-data/"
        with pytest.raises(ToolDenied, match="private, loopback or reserved"):
            await fetch(url, cfg)
        with pytest.raises(ToolDenied):
            assess_fetch({"url": url}, make_ctx(tmp_path))
        dns = {"metadata.test": [str(address)]}
        with pytest.raises(ToolDenied, match=r"'metadata\.test' resolves to .*private"):
            await fetch("http://metadata.test/", cfg, lookup=_answers(dns))
        with pytest.raises(ToolDenied):
            await AddressGuard(cfg, _answers(dns)).pin("metadata.test", 80)


@pytest.mark.parametrize("kind", list(WRAPS))
async def test_public_ipv4_inside_allowed_prefix_passes(kind: str) -> None:
    address = str(WRAPS[kind](PUBLIC_V4))
    cfg = WebToolsConfig(allow_networks=TRANSITION_PREFIXES)
    guard = AddressGuard(cfg, _answers({"site.test": [address]}))
    await guard.pin(address, 80)  # a literal: nothing to pin
    await guard.pin("site.test", 80)
    [pinned] = await guard.resolver.resolve("site.test", 443)
    assert pinned["host"] == address and pinned["port"] == 443


async def test_nat64_of_a_public_address_passes_by_default() -> None:
    address = str(nat64(PUBLIC_V4))
    guard = AddressGuard(WebToolsConfig(), _answers({"site.test": [address]}))
    await guard.pin("site.test", 80)
    assert [r["host"] for r in guard.resolver.pinned["site.test"]] == [address]


async def test_mapped_address_is_judged_as_its_ipv4() -> None:
    cfg = WebToolsConfig(allow_networks=(ip_network("127.0.0.1/32"),))
    await AddressGuard(cfg).pin("::ffff:127.0.0.1", 80)
    with pytest.raises(ToolDenied, match=r"embeds 127\.0\.0\.2"):
        await AddressGuard(cfg).pin("::ffff:127.0.0.2", 80)


async def test_one_bad_address_refuses_the_name() -> None:
    dns = _answers({"mixed.test": [PUBLIC_V4, str(sixtofour("10.0.0.1"))]})
    guard = AddressGuard(WebToolsConfig(), dns)
    with pytest.raises(ToolDenied, match=r"embeds 10\.0\.0\.1"):
        await guard.pin("mixed.test", 80)
    assert guard.resolver.pinned == {}
    with pytest.raises(ToolFailed, match="no address"):
        await AddressGuard(WebToolsConfig(), _answers({"empty.test": []})).pin("empty.test", 80)


def _answers(table: dict[str, list[str]]) -> Lookup:
    async def lookup(host: str, port: int) -> list[str]:
        return table[host]

    return lookup


# --- hosts ------------------------------------------------------------------------------------


def test_normalise_host() -> None:
    assert normalise_host("WWW.Example.COM.") == "www.example.com"
    assert normalise_host("Bücher.de") == "xn--bcher-kva.de"
    assert normalise_host("xn--bcher-kva.de") == "xn--bcher-kva.de"


def test_host_matches() -> None:
    assert host_matches("api.example.com", ("Example.COM.",))
    assert host_matches("example.com", ("*.example.com",))
    assert not host_matches("notexample.com", ("example.com",))
    assert host_matches("xn--bcher-kva.de", ("bücher.de",))
    assert host_matches("127.0.0.1", ("127.0.0.1",)) and not host_matches("127.0.0.1", ("0.0.1",))
    assert host_matches("::1", ("[::1]",))


# --- carried text -----------------------------------------------------------------------------

SECRET = "correct horse battery staple"


def carried(url: str, *read: str) -> str | None:
    return carried_reason(URL(url), Exposure(read or (f"password = {SECRET}\ntoken=ab12CD34ef56\n",)))


def test_whole_value_and_tokens() -> None:
    assert carried("https://x.test/?p=correct%20horse%20battery%20staple") is not None
    assert carried("https://x.test/?p=correct+horse+battery+staple") is not None
    assert carried("https://x.test/t/ab12CD34ef56") is not None
    assert carried("https://x.test/?q=battery") is None  # shorter than a token that counts


def test_encoding_is_named() -> None:
    b64 = base64.b64encode(SECRET.encode()).decode()
    reason = carried(f"https://x.test/?d={b64}")
    assert reason is not None and reason.endswith(", base64-encoded)")
    assert "(…'correct horse b…'…" in reason


def test_binary_looking_values_are_not_decoded_to_matches() -> None:
    # A random id decodes to unprintable bytes; nothing to look for.
    assert carried("https://x.test/item/9f8e7d6c5b4a39281706f5e4d3c2b1a0?v=QmFzZTY0IGlzIG5vdCBhIHNlY3JldA") is None


def test_work_is_bounded() -> None:
    many = "&".join(f"k{i}=value{i:04d}" for i in range(MAX_PIECES + 1))
    reason = carried(f"https://x.test/?{many}")
    assert reason is not None and reason.startswith("the URL has too many parts to check")


def test_already_sent_text_is_not_new() -> None:
    first = URL("https://x.test/docs/interesting-article")
    exposure = Exposure(["read https://x.test/docs/interesting-article please"])
    again = URL("https://x.test/docs/interesting-article/?utm=1")
    assert carried_reason(again, exposure) is not None
    assert carried_reason(again, exposure, already_sent=sent_text(first)) is None
