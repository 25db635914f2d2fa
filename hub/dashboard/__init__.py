"""The operator's dashboard: a page at ``/dashboard`` and its JSON under ``/api/admin/``.

Channels and their health, conversations (search, transcripts), scheduled jobs (cancel),
background tasks (cancel, pause, resume, retry: ``tasks``), memories (search, forget: ``memory``),
pending approvals of every channel (approve or deny), token usage with an estimated cost. For
admin principals only (``_api``). The page is three static files shipped in this package
(``static/``), served with a strict Content-Security-Policy: no inline script or style, nothing
from another origin, so text from a conversation can never run as script in it.
"""

from __future__ import annotations

from importlib.resources import files

from aiohttp import web

from ..gateway import Gateway
from . import _api as api
from ._deps import DashboardDeps
from .memory import forget_memory, memories
from .tasks import control, list_tasks
from .usage import DEFAULT_PRICES, Price

__all__ = ["CSP", "DEFAULT_PRICES", "DashboardDeps", "Price", "mount_dashboard"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
_SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def mount_dashboard(gateway: Gateway, deps: DashboardDeps) -> None:
    """Add the page and its API to ``gateway`` (before it starts)."""
    for method, path, make in (
        ("GET", "/api/admin/overview", api.overview),
        ("GET", "/api/admin/conversations", api.conversations),
        ("GET", "/api/admin/transcript", api.transcript),
        ("GET", "/api/admin/jobs", api.jobs),
        ("POST", "/api/admin/jobs/{job_id}/cancel", api.cancel_job),
        ("GET", "/api/admin/approvals", api.approvals),
        ("POST", "/api/admin/approvals/{question_id}", api.answer),
        ("GET", "/api/admin/usage", api.usage),
        ("GET", "/api/admin/tasks", list_tasks),
        ("POST", "/api/admin/tasks/{task_id}/{action}", control),
        ("GET", "/api/admin/memories", memories),
        ("DELETE", "/api/admin/memories/{memory_id}", forget_memory),
        ("POST", "/api/admin/memories/{memory_id}/forget", forget_memory),
    ):
        gateway.add_route(method, path, api.admin_only(deps, make(deps)))
    gateway.add_route("GET", "/dashboard", _page(deps))
    gateway.add_route("GET", "/dashboard/{name}", _asset)


def _read(name: str) -> bytes:
    return files(__package__).joinpath("static", name).read_bytes()


def _page(deps: DashboardDeps) -> api.Handler:
    html = _read("dashboard.html")

    async def handle(request: web.Request) -> web.StreamResponse:
        who = deps.auth.principal(request)
        if who is None or not who.admin:
            status = 401 if who is None else 403
            text = (
                "Sign in first: open the one-time login link that 'autohands run' prints."
                if who is None
                else "The dashboard is for admin keys only."
            )
            return web.Response(status=status, text=text, headers=_SECURITY_HEADERS)
        headers = {**_SECURITY_HEADERS, "Cache-Control": "no-store"}
        return web.Response(body=html, content_type="text/html", charset="utf-8", headers=headers)

    return handle


async def _asset(request: web.Request) -> web.StreamResponse:
    """The page's script and style: public (they hold no data), cached briefly."""
    name = request.match_info["name"]
    kind = _STATIC.get(name)
    if kind is None:
        raise web.HTTPNotFound()
    headers = {**_SECURITY_HEADERS, "Cache-Control": "max-age=300"}
    return web.Response(body=_read(name), content_type=kind, charset="utf-8", headers=headers)
