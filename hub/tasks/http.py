"""The task pool over HTTP (docs/API.md, "Tasks"), mounted on the hub's gateway.

    POST /v1/tasks                         {"input": "…", "mode"?, "priority"?} → 201 {id, state}
    GET  /v1/tasks                         the caller's tasks (an admin's: every task)
    GET  /v1/tasks/{id}                    one task
    POST /v1/tasks/{id}/cancel|pause|resume|retry      (retry: {"from_start": true}?)
    GET  /v1/tasks/{id}/events             server-sent events of its TaskEvents until a final state

Who asks is ``hub.auth.Auth.principal``: the principal owns what it submits, an admin principal
may see and control every task. Errors have the shape of the OpenAI-compatible API
(``{"error": {"message", "type", "code", "param"}}``): 401 without a key, 400 for a bad body,
404 for a task that does not exist or is not the caller's (the same answer, so ids cannot be
probed), 409 for a move the task's state does not allow (``MOVES``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Literal

import orjson
from aiohttp import web

from ..auth import Auth, Principal
from ..gateway import Gateway
from ..messages import Sender
from ._rules import HUB_CONVERSATION
from .base import BACKGROUND, Asker, Task, TaskError, TaskEvent, Tasks, TaskState
from .commands import MODES, is_mode

__all__ = ["FINAL", "mount_task_routes", "task_json"]

FINAL: frozenset[TaskState] = frozenset({"completed", "failed", "cancelled"})
"""States an event stream ends after: nothing moves out of them but a retry."""
KEEPALIVE_SECONDS = 15.0
"""A comment line on a quiet event stream, so proxies and clients keep the connection."""
ErrorType = Literal["invalid_request_error", "authentication_error", "server_error"]
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _ApiError(Exception):
    """An answer in the API's error shape (as ``channels/openai_api.py`` answers)."""

    def __init__(self, status: int, message: str, *, code: str, type: ErrorType = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.type = status, message, code, type

    def response(self) -> web.Response:
        body = {"error": {"message": self.message, "type": self.type, "code": self.code, "param": None}}
        return web.Response(status=self.status, body=orjson.dumps(body), content_type="application/json")


def task_json(task: Task) -> dict[str, object]:
    """A task as the API (and the dashboard) show it."""
    return {
        "id": task.id,
        "object": "task",
        "input": task.text,
        "state": task.state,
        "mode": task.mode,
        "priority": task.priority,
        "attempts": task.attempts,
        "result": task.result,
        "error": task.error,
        "conversation": task.conversation.key,
        "owner": task.owner.id,
        "created_at": task.created_at.isoformat(),
        "updated_at": task.updated_at.isoformat(),
    }


def event_json(event: TaskEvent) -> dict[str, object]:
    return {
        "task_id": event.task_id,
        "kind": event.kind,
        "state": event.state,
        "detail": event.detail,
        "at": event.at.isoformat(),
    }


def mount_task_routes(gateway: Gateway, auth: Auth, tasks: Tasks) -> None:
    """Add the routes to ``gateway`` (before it starts)."""
    routes = _Routes(auth, tasks)
    gateway.add_route("POST", "/v1/tasks", routes.guard(routes.submit))
    gateway.add_route("GET", "/v1/tasks", routes.guard(routes.list))
    gateway.add_route("GET", "/v1/tasks/{task_id}", routes.guard(routes.get))
    gateway.add_route("POST", "/v1/tasks/{task_id}/{action}", routes.guard(routes.control))
    gateway.add_route("GET", "/v1/tasks/{task_id}/events", routes.guard(routes.events))


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


class _Routes:
    def __init__(self, auth: Auth, tasks: Tasks) -> None:
        self.auth = auth
        self.tasks = tasks

    def guard(self, handler: Callable[[web.Request, Sender], Awaitable[web.StreamResponse]]) -> _Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request, self._sender(request))
            except _ApiError as exc:
                return exc.response()

        return guarded

    def _sender(self, request: web.Request) -> Sender:
        who: Principal | None = self.auth.principal(request)
        if who is None:
            raise _ApiError(
                401,
                "Missing or wrong API key: send 'Authorization: Bearer <key>' with a key from [server] api_keys.",
                type="authentication_error",
                code="invalid_api_key",
            )
        return Asker(channel=HUB_CONVERSATION.channel, id=who.id, name=who.id, is_admin=who.admin)

    async def submit(self, request: web.Request, who: Sender) -> web.StreamResponse:
        body = await _body(request)
        text = body.get("input")
        if not isinstance(text, str) or not text.strip():
            raise _ApiError(400, '"input" is required: what to do, as a non-empty string.', code="invalid_value")
        mode = body.get("mode", "auto")
        if not is_mode(mode):
            raise _ApiError(400, f'"mode" must be one of {", ".join(MODES)}.', code="invalid_value")
        priority = body.get("priority", BACKGROUND)
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise _ApiError(400, '"priority" must be a whole number (lower runs first).', code="invalid_value")
        task = await self.tasks.submit(text, owner=who, mode=mode, priority=priority)
        return _json({"id": task.id, "state": task.state}, status=201)

    async def list(self, request: web.Request, who: Sender) -> web.StreamResponse:
        found = await self.tasks.list(by=who)
        return _json({"object": "list", "data": [task_json(t) for t in found]})

    async def get(self, request: web.Request, who: Sender) -> web.StreamResponse:
        return _json(task_json(await self._visible(request.match_info["task_id"], who)))

    async def _visible(self, task_id: str, who: Sender) -> Task:
        """The task if ``who`` may see it; else 404 (whether it exists is not revealed)."""
        try:
            return await self.tasks.get(task_id, by=who)
        except TaskError as exc:
            raise _ApiError(404, str(exc), code="task_not_found") from None

    async def control(self, request: web.Request, who: Sender) -> web.StreamResponse:
        task_id, action = request.match_info["task_id"], request.match_info["action"]
        moves: dict[str, Callable[[bool], Awaitable[Task]]] = {
            "cancel": lambda _: self.tasks.cancel(task_id, by=who),
            "pause": lambda _: self.tasks.pause(task_id, by=who),
            "resume": lambda _: self.tasks.resume(task_id, by=who),
            "retry": lambda fresh: self.tasks.retry(task_id, by=who, from_start=fresh),
        }
        move = moves.get(action)
        if move is None:
            raise _ApiError(404, f"No action {action!r}: cancel, pause, resume or retry.", code="not_found")
        body = await _body(request, optional=True)
        from_start = body.get("from_start", False)
        if not isinstance(from_start, bool):
            raise _ApiError(400, '"from_start" must be true or false.', code="invalid_value")
        await self._visible(task_id, who)  # 404 first: a move refused below is then the state's (409)
        try:
            task = await move(from_start)
        except TaskError as exc:
            raise _ApiError(409, str(exc), code="invalid_state") from None
        return _json(task_json(task))

    async def events(self, request: web.Request, who: Sender) -> web.StreamResponse:
        task_id = request.match_info["task_id"]
        await self._visible(task_id, who)
        async with _Follow(self.tasks.events(task_id)) as follow:
            await asyncio.sleep(0)  # let the stream subscribe before the current state is read
            current = await self._visible(task_id, who)
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
            await response.prepare(request)
            await _send(response, TaskEvent(task_id=task_id, kind="state", state=current.state))
            if current.state not in FINAL:
                await follow.relay(response)
            await response.write_eof()
            return response


class _Follow:
    """A task's event stream, read one step ahead: the next event is awaited from the moment it
    is entered (so nothing is missed while the current state is read), and the read in flight
    is cancelled and the stream closed on the way out (the client left, or the hub stops)."""

    def __init__(self, stream: AsyncIterator[TaskEvent]) -> None:
        self.stream = stream
        self.pending: asyncio.Future[TaskEvent] | None = None

    async def __aenter__(self) -> _Follow:
        self.pending = asyncio.ensure_future(anext(self.stream))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.pending is not None:
            self.pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await self.pending
        if isinstance(self.stream, AsyncGenerator):
            await self.stream.aclose()

    async def relay(self, response: web.StreamResponse) -> None:
        """Write events until a final state (or the stream's end); a comment when it is quiet."""
        while self.pending is not None:
            done, _ = await asyncio.wait({self.pending}, timeout=KEEPALIVE_SECONDS)
            if not done:
                await response.write(b": keepalive\n\n")
                continue
            try:
                event = self.pending.result()
            except StopAsyncIteration:
                self.pending = None
                return
            await _send(response, event)
            if event.kind == "state" and event.state in FINAL:
                return
            self.pending = asyncio.ensure_future(anext(self.stream))


async def _send(response: web.StreamResponse, event: TaskEvent) -> None:
    await response.write(b"data: " + orjson.dumps(event_json(event)) + b"\n\n")


async def _body(request: web.Request, *, optional: bool = False) -> dict[str, object]:
    raw = await request.read()
    if not raw.strip() and optional:
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _ApiError(400, "The body must be a JSON object.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise _ApiError(400, "The body must be a JSON object.", code="invalid_json")
    return body
