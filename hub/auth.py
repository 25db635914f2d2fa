"""Who is asking the gateway: API keys, the browser's login cookie, and the loopback rule.

- A request carries ``Authorization: Bearer <key>``; keys are compared in constant time
  (``hmac.compare_digest``) and never logged. A key is named in logs and in the store by its
  fingerprint (``key-1a2b3c4d``), never by itself.
- A browser signs in once with a one-time login link (``autohands run`` prints it); the link
  sets a cookie holding a signed, expiring session (HMAC-SHA256 with a secret kept 0600 in the
  data directory, so sessions survive a restart).
- With no key configured the server listens only on a loopback address (``ServerSection``
  refuses anything else), and every request is the machine's own operator. Such a request must
  still name a loopback ``Host``: a web page cannot reach the server through DNS rebinding.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from .config import ServerSection, is_loopback_host

__all__ = ["COOKIE", "Auth", "Principal"]

COOKIE = "autohands_session"
SESSION_SECONDS = 30 * 86400
"""How long a browser stays signed in after using a login link."""
LOGIN_LINK_SECONDS = 600
"""How long a login link may be used (once)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request comes from. ``id`` is stable and safe to store and log (never a key)."""

    id: str
    admin: bool


LOCAL_OPERATOR = Principal(id="local", admin=True)
"""Every request when no key is configured (loopback only)."""


def fingerprint(key: str) -> str:
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:8]


class Auth:
    """Decides the ``Principal`` of each request; owned by the hub's gateway."""

    def __init__(self, server: ServerSection, secret_file: Path) -> None:
        self._user_keys = tuple(k.encode() for k in server.api_keys if k)
        self._admin_keys = tuple(k.encode() for k in server.admin_keys if k)
        self.open = not (self._user_keys or self._admin_keys)
        """No key configured: the server is loopback-only and every request is the operator."""
        self._secret = _load_secret(secret_file)
        self._links: dict[str, float] = {}
        self.server = server
        """The ``[server]`` section (``public_url``, ``allowed_origins``) for channels that check
        a browser's ``Origin`` (``allows_origin``) or write their own address."""

    def allows_origin(self, request: web.Request) -> bool:
        """``allowed_origin`` with this server's section (the web chat's WebSocket checks it)."""
        return allowed_origin(request, self.server)

    # ------------------------------------------------------------------ requests
    def principal(self, request: web.Request) -> Principal | None:
        """The caller, or None: no valid key or session (answer 401), or, on an open server,
        a ``Host`` that is not loopback (a rebound DNS name: answer 403 or 401)."""
        if self.open:
            return LOCAL_OPERATOR if _loopback_host(request.host) else None
        header = request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            return self.principal_for_key(header[7:].strip())
        cookie = request.cookies.get(COOKIE)
        return self._session(cookie) if cookie else None

    def principal_for_key(self, key: str) -> Principal | None:
        """The principal of one key (every configured key is compared: constant time)."""
        given = key.encode()
        admin = any([hmac.compare_digest(given, k) for k in self._admin_keys])  # a list: every key is compared
        user = any([hmac.compare_digest(given, k) for k in self._user_keys])
        if not (admin or user):
            return None
        return Principal(id=fingerprint(key), admin=admin)

    # ------------------------------------------------------------------ browser sessions
    def login_link_token(self, *, now: float | None = None) -> str:
        """A token for one sign-in as admin within ``LOGIN_LINK_SECONDS``."""
        now = time.time() if now is None else now
        self._links = {t: until for t, until in self._links.items() if until > now}
        token = secrets.token_urlsafe(24)
        self._links[token] = now + LOGIN_LINK_SECONDS
        return token

    def redeem(self, token: str, *, now: float | None = None) -> str | None:
        """The session cookie value for a login-link token, once; None if unknown or used."""
        now = time.time() if now is None else now
        until = self._links.pop(token, None)
        if until is None or until < now:
            return None
        return self.session_cookie(Principal(id="operator", admin=True), now=now)

    def session_cookie(self, who: Principal, *, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + SESSION_SECONDS)
        body = f"{who.id}|{int(who.admin)}|{expires}".encode()
        return _b64(body) + "." + _b64(self._sign(body))

    def _session(self, cookie: str, *, now: float | None = None) -> Principal | None:
        try:
            raw_body, raw_sig = cookie.split(".", 1)
            body, sig = _unb64(raw_body), _unb64(raw_sig)
        except ValueError:
            return None
        if not hmac.compare_digest(sig, self._sign(body)):
            return None
        try:
            who, admin, expires = body.decode().rsplit("|", 2)
            if int(expires) < (time.time() if now is None else now):
                return None
        except ValueError:
            return None
        return Principal(id=who, admin=admin == "1")

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()


def allowed_origin(request: web.Request, server: ServerSection) -> bool:
    """Whether a browser ``Origin`` may use this server: its own origin, or one of
    ``[server] allowed_origins``. ``Origin: null`` (sandboxed frames, files) never may; a request
    without ``Origin`` is not from a browser page."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    own = {f"{request.scheme}://{request.host}"}
    if server.public_url:
        own.add(server.public_url.rstrip("/"))
    return origin != "null" and (origin in own or origin in server.allowed_origins)


def _loopback_host(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    return is_loopback_host(name.strip("[]"))


def _load_secret(path: Path) -> bytes:
    """The signing secret in ``path`` (created 0600 on first use)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secret)
    return secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("bad base64") from exc
