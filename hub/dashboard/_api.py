"""The dashboard's JSON endpoints under ``/api/admin/`` (docs/API.md, "Dashboard API").

Every endpoint is for admin principals only (an admin key, the login link's cookie, or anyone
on this machine when the server is open): 401 without one, 403 for a user key. A request that
changes something must also carry ``X-AutoHands: 1`` and, from a browser, an allowed
``Origin`` — a page on another site can send neither, so it cannot act with the operator's
cookie (CSRF).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from ..answers import ANSWER_HINT
from ..auth import Principal, allowed_origin
from ..errors import StoreError
from ..questions import PendingQuestion, operator_sender
from ..scheduler.timeparse import ScheduleError
from ..store import has_sql
from ..store.history import ConversationSummary, TranscriptEntry
from ._deps import DashboardDeps
from .usage import summarize

log = logging.getLogger(__name__)

CSRF_HEADER = "X-AutoHands"
AdminHandler = Callable[[web.Request, Principal], Awaitable[web.Response]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_LIMIT = 500


def error(status: int, message: str) -> web.Response:
    """An API error: ``{"error": {"message", "status"}}`` and headers that keep it private."""
    return json({"error": {"message": message, "status": status}}, status=status)


def json(body: object, *, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})


def admin_only(deps: DashboardDeps, handler: AdminHandler) -> Handler:
    """``handler`` for admins only; for a method that changes something, CSRF-checked too."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        who = deps.auth.principal(request)
        if who is None:
            return error(401, "sign in: an admin key (Authorization: Bearer …) or the login link is required")
        if not who.admin:
            return error(403, "the dashboard is for admin keys only")
        if request.method not in ("GET", "HEAD"):
            if request.headers.get(CSRF_HEADER) != "1":
                return error(403, f"a request that changes something needs the header {CSRF_HEADER}: 1")
            if not allowed_origin(request, deps.server):
                return error(403, "this page's origin may not use the dashboard")
        try:
            return await handler(request, who)
        except StoreError as exc:
            log.warning("dashboard %s %s: %s", request.method, request.path, exc)
            return error(503, f"the store could not answer: {exc}")

    return guarded


def _limit(request: web.Request, default: int) -> int:
    try:
        return max(1, min(MAX_LIMIT, int(request.query.get("limit", default))))
    except ValueError:
        raise web.HTTPBadRequest(text="limit must be a whole number") from None


# ---------------------------------------------------------------------- overview, channels
def overview(deps: DashboardDeps) -> AdminHandler:
    async def handle(request: web.Request, who: Principal) -> web.Response:
        health = deps.health()
        started = health.get("channels", {})
        problems = health.get("errors", {})
        assert isinstance(started, dict) and isinstance(problems, dict)
        channels = [
            {"name": name, "started": bool(started.get(name)), "problem": problems.get(name)}
            for name in sorted(set(started) | set(deps.channels))
        ]
        return json(
            {
                "ok": bool(health.get("ok")),
                "you": who.id,
                "channels": channels,
                "active_runs": deps.sessions.active_runs,
                "pending_approvals": len(deps.sessions.pending_questions()),
                "scheduler": deps.scheduler is not None,
            }
        )

    return handle


# ---------------------------------------------------------------------- conversations
def _summary_json(s: ConversationSummary) -> dict[str, object]:
    return {
        "key": s.key,
        "channel": s.channel,
        "messages": s.messages,
        "input_tokens": s.input_tokens,
        "output_tokens": s.output_tokens,
        "started_at": s.started_at.isoformat(),
        "last_activity": s.last_activity.isoformat(),
    }


def _entry_json(e: TranscriptEntry) -> dict[str, object]:
    return {"from_user": e.from_user, "who": e.who, "text": e.text, "at": e.at.isoformat(), "status": e.status}


def conversations(deps: DashboardDeps) -> AdminHandler:
    async def handle(request: web.Request, who: Principal) -> web.Response:
        store = deps.store
        if not has_sql(store):
            return json({"conversations": [], "total": 0})
        from ..store import history, reports

        text = request.query.get("q", "").strip()
        channel = request.query.get("channel") or None
        limit = _limit(request, 50)
        if text:
            rows = await store.run_read(lambda c: reports.search_conversations(c, text, channel=channel, limit=limit))
            total = len(rows)
        else:
            rows, total = await store.run_read(lambda c: history.list_conversations(c, channel=channel, limit=limit))
        return json({"conversations": [_summary_json(r) for r in rows], "total": total})

    return handle


def transcript(deps: DashboardDeps) -> AdminHandler:
    async def handle(request: web.Request, who: Principal) -> web.Response:
        store = deps.store
        key = request.query.get("key", "")
        if not key:
            return error(400, "key is required: a conversation's key from /api/admin/conversations")
        if not has_sql(store):
            return error(404, f"no conversation {key!r}")
        from ..store import history

        limit = _limit(request, 200)
        found = await store.run_read(lambda c: history.conversation(c, key))
        if found is None:
            return error(404, f"no conversation {key!r}")
        entries = await store.run_read(lambda c: history.transcript(c, key, limit))
        return json({"conversation": _summary_json(found), "entries": [_entry_json(e) for e in entries]})

    return handle


# ---------------------------------------------------------------------- jobs
def jobs(deps: DashboardDeps) -> AdminHandler:
    async def handle(request: web.Request, who: Principal) -> web.Response:
        if deps.scheduler is None:
            return json({"jobs": [], "scheduler": False})
        found = await deps.scheduler.list_jobs()
        return json(
            {
                "scheduler": True,
                "jobs": [
                    {
                        "id": j.id,
                        "conversation": j.conversation.key,
                        "creator": j.creator.name or j.creator.id,
                        "description": j.description,
                        "action": j.action,
                        "text": j.text,
                        "trigger": j.trigger_kind,
                        "timezone": j.timezone,
                        "next_run_at": j.next_run_at.isoformat() if j.next_run_at else None,
                        "fire_count": j.fire_count,
                    }
                    for j in found
                ],
            }
        )

    return handle


def cancel_job(deps: DashboardDeps) -> AdminHandler:
    async def handle(request: web.Request, who: Principal) -> web.Response:
        if deps.scheduler is None:
            return error(404, "the scheduler is off: there are no jobs")
        job_id = request.match_info["job_id"]
        try:
            job = await deps.scheduler.cancel(
                job_id, operator_sender(who.id), where_to_look="GET /api/admin/jobs lists them"
            )
        except ScheduleError as exc:
            return error(404, str(exc))
        log.info("job %s cancelled from the dashboard by %s", job.id, who.id)
        return json({"cancelled": job.id})

    return handle


# ---------------------------------------------------------------------- approvals
def _question_json(q: PendingQuestion, now: datetime) -> dict[str, object]:
    expires = q.asked_at + timedelta(seconds=q.timeout)
    return {
        "id": q.id,
        "conversation": q.conversation.key,
        "channel": q.conversation.channel,
        "user": q.user_id,
        "text": q.text.removesuffix(ANSWER_HINT).rstrip(),  # the buttons are right below it
        "buttons": [{"id": b.id, "label": b.label, "style": b.style} for b in q.buttons],
        "asked_at": q.asked_at.isoformat(),
        "expires_at": expires.isoformat() if q.timeout else None,
        "seconds_left": max(0.0, round((expires - now).total_seconds(), 1)) if q.timeout else None,
    }


def approvals(deps: DashboardDeps) -> AdminHandler:
    async def handle(request: web.Request, who: Principal) -> web.Response:
        now = datetime.now(UTC)
        return json({"approvals": [_question_json(q, now) for q in deps.sessions.pending_questions()]})

    return handle


def answer(deps: DashboardDeps) -> AdminHandler:
    async def handle(request: web.Request, who: Principal) -> web.Response:
        question_id = request.match_info["question_id"]
        body = await _json_body(request)
        button = body.get("button") if isinstance(body, dict) else None
        if not isinstance(button, str) or not button:
            return error(400, 'button is required: one of the question\'s button ids, e.g. {"button": "approve:…"}')
        inbound = deps.sessions.operator_answer(question_id, button, who.id)
        if inbound is None:
            return error(404, f"no pending question {question_id!r} with a button {button!r} (answered or timed out?)")
        if not await deps.inbox(inbound):
            return error(409, f"question {question_id!r} was answered already")
        log.info("question %s answered from the dashboard by %s", question_id, who.id)
        return json({"answered": question_id, "button": button})

    return handle


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="the body must be JSON") from None


# ---------------------------------------------------------------------- usage
def usage(deps: DashboardDeps) -> AdminHandler:
    async def handle(request: web.Request, who: Principal) -> web.Response:
        try:
            days = max(1, min(3660, int(request.query.get("days", 30))))
        except ValueError:
            return error(400, "days must be a whole number")
        since = datetime.now(UTC) - timedelta(days=days)
        store = deps.store
        runs = []
        if has_sql(store):
            from ..store import reports

            runs = await store.run_read(lambda c: reports.usage_runs(c, since=since))
        return json(
            {
                "since": since.isoformat(),
                "days": days,
                "currency": "USD",
                "estimate": True,
                "note": "Estimated cost: tokens times a list price per model; models without a price show none.",
                **summarize(runs, deps.prices),
            }
        )

    return handle
