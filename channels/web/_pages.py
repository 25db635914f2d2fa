"""The web chat's HTTP side: the page and its static files, the sign-in page, the login link.

Every response carries a strict Content-Security-Policy (no inline script or style, nothing
from another origin, no framing): the model's answers are shown in this page, and the CSP is
what keeps a script smuggled into one from running even if the page's rendering missed it.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from aiohttp import web

from hub.auth import COOKIE, SESSION_SECONDS, Auth, Principal

__all__ = ["CSP", "STATIC_DIR", "Pages", "is_https"]

STATIC_DIR = Path(__file__).parent / "static"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # A login link carries its token in the URL: never hand it on to another site.
    "Referrer-Policy": "no-referrer",
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,100}(/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,100}){0,3}$")
# The files are not fingerprinted: the browser revalidates each use (ETag / Last-Modified,
# which FileResponse answers with 304), so an upgraded hub never serves a stale page.
_CACHE = "no-cache"

SIGN_IN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Sign in · AutoHands</title><link rel="stylesheet" href="/static/style.css"></head>
<body class="sign-in"><main class="sign-in-box">
<h1>AutoHands</h1>
<p>{message}</p>
<p>Open the one-time sign-in link that <code>autohands run</code> printed when the hub started
(it works once, for 10 minutes; restart the hub for a new one), or sign in with an API key
from <code>[server] api_keys</code>:</p>
<form method="post" action="/login"><input type="password" name="key" autocomplete="current-password"
aria-label="API key" placeholder="API key" required> <button type="submit">Sign in</button></form>
</main></body></html>
"""


def is_https(request: web.Request, auth: Auth) -> bool:
    """Whether the browser reached us over https (directly, or through ``public_url``'s proxy)."""
    return request.scheme == "https" or auth.server.public_url.startswith("https://")


class Pages:
    """``GET /``, ``GET /static/{name}``, ``GET /login?token=``, ``POST /login``."""

    def __init__(self, auth: Auth, static_dir: Path = STATIC_DIR) -> None:
        self._auth = auth
        self._static = static_dir.resolve()

    async def index(self, request: web.Request) -> web.StreamResponse:
        if self._auth.principal(request) is None:
            return self._sign_in("Sign in to use the chat.", status=401)
        return self._file("index.html")

    async def static(self, request: web.Request) -> web.StreamResponse:
        return self._file(request.match_info["name"])

    async def login_link(self, request: web.Request) -> web.StreamResponse:
        cookie = self._auth.redeem(request.query.get("token", ""))
        if cookie is None:
            return self._sign_in("That sign-in link has expired or was used already.", status=403)
        return self._signed_in(request, cookie)

    async def login_key(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        key = form.get("key")
        who: Principal | None = self._auth.principal_for_key(key) if isinstance(key, str) and key else None
        if who is None:
            return self._sign_in("That key is not one of this hub's keys.", status=401)
        return self._signed_in(request, self._auth.session_cookie(who))

    # ----------------------------------------------------------------- responses
    def _signed_in(self, request: web.Request, cookie: str) -> web.StreamResponse:
        response = web.Response(status=303, headers={**SECURITY_HEADERS, "Location": "/", "Cache-Control": "no-store"})
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=SESSION_SECONDS,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=is_https(request, self._auth),
        )
        return response

    def _sign_in(self, message: str, *, status: int) -> web.Response:
        body = SIGN_IN.format(message=html.escape(message))
        headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
        return web.Response(text=body, status=status, content_type="text/html", charset="utf-8", headers=headers)

    def _file(self, name: str) -> web.StreamResponse:
        path = (self._static / name).resolve()
        kind = CONTENT_TYPES.get(path.suffix.lower())
        if not _NAME.match(name) or kind is None or not path.is_relative_to(self._static) or not path.is_file():
            return web.Response(status=404, text="not found", headers=SECURITY_HEADERS)
        headers = {**SECURITY_HEADERS, "Cache-Control": _CACHE, "Content-Type": kind}
        return web.FileResponse(path, headers=headers)
