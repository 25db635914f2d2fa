"""Credentials out of what people and logs see: URLs with passwords or keys in them.

A URL may carry a credential in two places: its userinfo (``postgresql://user:pw@db/x``,
``https://key@proxy/v1``) and key-like query parameters (``?api_key=…``, ``&token=…``,
``&sig=…``). ``masked_url`` replaces both with ``***`` and keeps the rest (scheme, host, port,
path and the other parameters) so the message still says where it points. ``mask_urls``
does it to every URL inside a longer text, such as a formatted log line.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode

MASK = "***"

_KEY_LIKE = re.compile(
    r"(?i)(?:^|[_.-])(?:key|apikey|token|secret|pass|passwd|password|pwd|auth|authorization|sig|signature"
    r"|session|sessionid|credential|credentials|code)(?:$|[_.-])"
)
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")


def _key_like(name: str) -> bool:
    return bool(_KEY_LIKE.search(name)) or name.lower().endswith(("key", "token", "secret", "password"))


def secret_key(name: str) -> bool:
    """Whether a config key or parameter named ``name`` holds a credential when its value is text:
    it contains token, secret, key or password (``bot_token``, ``api_key``), or is key-like
    (``auth``, ``sig``)."""
    return any(word in name.lower() for word in ("token", "secret", "key", "password")) or _key_like(name)


def _masked_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(_key_like(name) for name, _ in pairs):
        return query
    return urlencode([(n, MASK if _key_like(n) else v) for n, v in pairs], safe="*/:")


def masked_url(url: str) -> str:
    """``url`` without the credentials it may embed: userinfo and key-like query values."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, tail = _split_authority(rest)
    if "@" in authority:
        authority = f"{MASK}@{authority.rsplit('@', 1)[1]}"
    path, qmark, query = tail.partition("?")
    query, hash_, fragment = query.partition("#")
    if qmark:
        query = _masked_query(query)
    return f"{scheme}://{authority}{path}{qmark}{query}{hash_}{fragment}"


def _split_authority(rest: str) -> tuple[str, str]:
    """The authority (``user:pw@host:port``) and what follows it (path, query, fragment)."""
    end = next((i for i, ch in enumerate(rest) if ch in "/?#"), len(rest))
    return rest[:end], rest[end:]


def mask_urls(text: str) -> str:
    """Every URL in ``text`` passed through ``masked_url``."""
    if "://" not in text:
        return text
    return _URL.sub(lambda m: masked_url(m.group(0)), text)
