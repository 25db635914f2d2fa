"""The OpenAI-compatible HTTP API: ``GET /v1/models`` and ``POST /v1/chat/completions``.

A request is an inbound like any platform's: recorded through the ``Inbox`` before anything
else, run by the hub's agent with its tools, answered through the outbox. What is particular
to HTTP is in ``hub.api_runs`` (the hub's side): the request's own history is set before its
inbound is recorded, and the response waits for that run's replies and end.

- Stateless by default: each request is its own conversation ``api:<principal>:r-<id>``,
  whose history is the request's ``messages`` before the last (a user's). With
  ``X-AutoHands-Conversation: <id>`` the request belongs to the principal's conversation
  ``api:<principal>:c-<id>``, whose history the hub keeps: only the last message is read.
  A principal (``hub.auth``) never reaches another's conversations: its id is in the key.
- ``stream: true`` answers with server-sent events as the model writes (the run's partial
  outbounds), ``[DONE]`` last. Client-side ``tools`` are refused (400): the agent runs the hub's.
- A tool that needs approval asks in the conversation, where nobody answers over HTTP: the
  question waits for an operator on the dashboard until ``[agent] approval_timeout_seconds``,
  then the tool is refused (fails closed). The response waits at most ``request_timeout_seconds``.
- ``Idempotency-Key`` (``channels._openai_api_idem``): when a keyed request times out or its
  client leaves, the channel follows the run alone (``finish_within_seconds`` at most, in a task
  it owns and cancels at stop) and keeps its answer, so a retry waits for it or replays it.
- Errors have OpenAI's shape (``channels._openai_api_wire.ApiError``); no traceback is shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from dataclasses import dataclass, field
from typing import ClassVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from channels._openai_api_idem import Claim, IdempotencyKeys, body_hash
from channels._openai_api_wire import (
    DONE,
    ApiError,
    Assembler,
    ChatRequest,
    chunk,
    completion,
    error_event,
    parse_request,
    replayed_error,
    split_messages,
    stored_error,
    usage_body,
    usage_chunk,
)
from hub.agent import HistoryItem
from hub.api_runs import DEFAULT_MODEL, RunEnded, Runs, RunWatch
from hub.auth import Auth, Principal
from hub.channel import Capabilities, ChannelContext, Inbox, Manifest
from hub.config import StrictBool
from hub.messages import ConversationRef, Delivery, Inbound, Outbound, Sender, new_id

log = logging.getLogger(__name__)

MODELS_PATH = "/v1/models"
COMPLETIONS_PATH = "/v1/chat/completions"
CONVERSATION_HEADER = "X-AutoHands-Conversation"
_CONVERSATION_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
PROVIDER_FAILED = "Sorry, I could not finish"
"""How the agent's reply to a failed model call begins (``APOLOGY`` in agents/streaming.py;
tests/channels/test_openai_api.py keeps the two equal): such a run is answered 502."""
HUB_FAILED = "Sorry — something went wrong on my side"
"""How the session manager's reply to a crashed run begins (hub/sessions.py): answered 500."""


class ApiConfig(BaseModel):
    """``[channels.api]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: StrictBool = True
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    """A request body larger than this is refused with 413."""
    request_timeout_seconds: float = Field(default=600.0, gt=0)
    """How long a request waits for its run; then 504 (the run goes on; a retry with the same
    ``Idempotency-Key`` gets its answer)."""
    finish_within_seconds: float = Field(default=3600.0, gt=0)
    """How long the run of a request with an ``Idempotency-Key`` is still followed after the
    request timed out or its client left, to keep its answer for a retry; a run still going then
    is given up on (the key answers 504). Generous: the agent's ``timeout_seconds`` plus
    ``approval_timeout_seconds`` fit many times."""


@dataclass(slots=True)
class _Progress:
    """One recorded run being answered: what has been read of it so far. The response reads it;
    after a keyed request gave up, the channel's follow-up task reads on from the same point."""

    watch: RunWatch
    model: str
    cid: str = field(default_factory=lambda: "chatcmpl-" + new_id())
    created: int = field(default_factory=lambda: int(time.time()))
    text: Assembler = field(default_factory=Assembler)
    recorded: bool = False
    answer: dict[str, object] | None = None
    """Set when the run ended: its completion, or the error it is answered with (stored form)."""

    def end(self, event: RunEnded) -> dict[str, object]:
        """The run ended: its completion (kept in ``answer``), or raise the error it is."""
        try:
            _check_failed(self.text.text)
        except ApiError as exc:
            self.answer = stored_error(exc)
            raise
        self.answer = completion(self.cid, self.model, self.text.text, usage_body(event.usage))
        return self.answer


class OpenAIApiChannel:
    """The API channel. ``OpenAIApiChannel(name, config, context)``; see the module docstring."""

    config_model: ClassVar[type[ApiConfig]] = ApiConfig
    manifest: ClassVar[Manifest] = Manifest(
        id="api",
        name="OpenAI-compatible API",
        provides=("channel:api",),
        config=ApiConfig,
        description="OpenAI-compatible HTTP API: /v1/models, /v1/chat/completions (JSON and SSE)",
        permissions=("http_route",),
    )
    capabilities: Capabilities = Capabilities(max_length=1_000_000, dialect="markdown", edits=True)

    def __init__(self, name: str, config: ApiConfig, context: ChannelContext) -> None:
        self.name = name
        self.config = config
        self.problem: str | None = None
        self._inbox: Inbox | None = None
        self._followers: set[asyncio.Task[None]] = set()
        """Runs of keyed requests that gave up, followed until they end (``_follow``)."""
        if context.auth is None or context.runs is None:
            # [server] enabled = false: nothing to serve (the API is on by default, and a
            # server turned off on purpose must not stop the hub).
            log.info("channels.%s serves nothing: the HTTP server is off ([server] enabled = false)", name)
            return
        self._auth: Auth = context.auth
        self._runs: Runs = context.runs
        self._keys = IdempotencyKeys(context.state)
        self._locks: dict[str, asyncio.Lock] = {}
        """One request at a time per named conversation (its runs are in order anyway)."""
        self._waiting: dict[str, int] = {}
        context.add_route("GET", MODELS_PATH, self._models)
        context.add_route("POST", COMPLETIONS_PATH, self._completions)

    async def start(self, inbox: Inbox) -> None:
        self._inbox = inbox

    async def stop(self) -> None:
        self._inbox = None
        for task in self._followers:
            task.cancel()
        await asyncio.gather(*self._followers, return_exceptions=True)

    async def send(self, msg: Outbound) -> Delivery:
        """Replies reach the waiting HTTP response as they are published (``hub.api_runs``);
        here they are only acknowledged, so the outbox marks them sent."""
        return Delivery(platform_ids=(msg.id,))

    # ------------------------------------------------------------------ routes
    def _principal(self, request: web.Request) -> Principal:
        who = self._auth.principal(request)
        if who is None:
            raise ApiError(
                401,
                "Missing or wrong API key: send 'Authorization: Bearer <key>' with a key from [server] api_keys.",
                type="authentication_error",
                code="invalid_api_key",
            )
        return who

    async def _models(self, request: web.Request) -> web.StreamResponse:
        try:
            self._principal(request)
        except ApiError as exc:
            return exc.response()
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "autohands"} for m in self._runs.models()]
        return web.json_response({"object": "list", "data": data}, dumps=lambda o: orjson.dumps(o).decode())

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._complete(request)
        except ApiError as exc:
            return exc.response({"Retry-After": "1"} if exc.status == 429 else None)

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        who = self._principal(request)
        raw = await self._read_body(request)
        req = parse_request(raw)
        model = self._model_setting(req.model)
        conversation, persistent = self._conversation(request, who)
        history, _ = split_messages(req.messages)
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return await self._run(request, req, who, conversation, history, model, "req:" + new_id(), persistent)
        if not key or len(key) > 255:
            raise ApiError(400, "Idempotency-Key: 1 to 255 characters.", code="invalid_value")
        digest = body_hash(orjson.loads(raw))
        claim = await self._keys.claim(who.id, key, digest)
        while claim.running is not None:  # None: the first request ended without an answer
            if (answer := await self._wait(claim.running)) is not None:
                return await self._replay(request, req, answer)
            claim = await self._keys.claim(who.id, key, digest)
        return await self._keyed(request, req, who, key, claim, (conversation, history, model, persistent))

    async def _keyed(
        self,
        request: web.Request,
        req: ChatRequest,
        who: Principal,
        key: str,
        claim: Claim,
        target: tuple[ConversationRef, list[HistoryItem], str | None, bool],
    ) -> web.StreamResponse:
        """A keyed request no run here is answering: replay, refuse, or run it."""
        if claim.conflict:
            raise ApiError(409, "This Idempotency-Key was used with a different body.", code="idempotency_conflict")
        if claim.answer is not None:
            return await self._replay(request, req, claim.answer)
        if claim.lost:
            raise ApiError(
                409,
                "The request with this Idempotency-Key was cut off by a hub restart before it was answered, "
                "so its answer cannot be replayed; send it again with a new Idempotency-Key.",
                code="idempotency_lost",
            )
        conversation, history, model, persistent = target
        taken: list[_Progress] = []
        try:
            return await self._run(
                request, req, who, conversation, history, model, claim.platform_id, persistent, taken
            )
        finally:
            await self._conclude(who.id, key, taken[0] if taken else None)

    async def _wait(self, running: asyncio.Future[dict[str, object] | None]) -> dict[str, object] | None:
        try:
            return await asyncio.wait_for(asyncio.shield(running), self.config.request_timeout_seconds)
        except TimeoutError:
            raise _timeout(self.config.request_timeout_seconds) from None

    async def _conclude(self, who: str, key: str, progress: _Progress | None) -> None:
        """After a keyed request's response: keep its answer, forget a key whose run never
        started, or follow a run still going (the request timed out, or its client left)."""
        if progress is None or not progress.recorded:
            await self._keys.forget(who, key)
        elif progress.answer is not None:
            await self._keys.settle(who, key, progress.answer)
        else:
            task = asyncio.create_task(self._follow(who, key, progress), name=f"api-follow-{progress.cid}")
            self._followers.add(task)
            task.add_done_callback(self._followers.discard)

    async def _follow(self, who: str, key: str, progress: _Progress) -> None:
        """Read the run on to its end and keep its answer for the key."""
        try:
            answer = await self._read_to_end(progress)
        except BaseException:  # cancelled at stop: the record stays answerless (lost)
            self._keys.abandon(who, key)
            raise
        finally:
            self._runs.unwatch(progress.watch)
        await self._keys.settle(who, key, answer)

    async def _read_to_end(self, progress: _Progress) -> dict[str, object]:
        limit = self.config.finish_within_seconds
        try:
            async with asyncio.timeout(limit):
                while not isinstance(event := await progress.watch.events.get(), RunEnded):
                    progress.text.feed(event)
        except TimeoutError:
            log.warning("channels.%s: a run was given up on after %g s (finish_within_seconds)", self.name, limit)
            message = f"The run did not end within {limit:g} s after its request gave up (finish_within_seconds)."
            return stored_error(ApiError(504, message, type="server_error", code="timeout"))
        with contextlib.suppress(ApiError):  # a failed run: its error is the answer
            progress.end(event)
        assert progress.answer is not None
        return progress.answer

    async def _read_body(self, request: web.Request) -> bytes:
        limit = self.config.max_body_bytes
        too_big = ApiError(413, f"The body is larger than {limit} bytes (max_body_bytes).", code="request_too_large")
        if request.content_length is not None and request.content_length > limit:
            raise too_big
        body = bytearray()
        async for piece in request.content.iter_chunked(65536):
            body += piece
            if len(body) > limit:
                raise too_big
        return bytes(body)

    def _model_setting(self, model: str) -> str | None:
        """The conversation's ``model`` setting for a requested model id (None: the default)."""
        if model == DEFAULT_MODEL:
            return None
        known = self._runs.models()
        providers = {m.split("/", 1)[0] for m in known[1:]}
        if model in known or model.split("/", 1)[0] in providers:
            return model
        raise ApiError(
            404,
            f"The model '{model}' does not exist here; GET /v1/models lists them ({', '.join(known)}).",
            code="model_not_found",
            param="model",
        )

    def _conversation(self, request: web.Request, who: Principal) -> tuple[ConversationRef, bool]:
        named = request.headers.get(CONVERSATION_HEADER)
        if named is None:
            return ConversationRef(channel=self.name, chat=who.id, thread="r-" + new_id()), False
        if not _CONVERSATION_ID.fullmatch(named):
            raise ApiError(
                400, f"{CONVERSATION_HEADER}: 1 to 64 letters, digits, '_', '.' or '-'.", code="invalid_value"
            )
        return ConversationRef(channel=self.name, chat=who.id, thread="c-" + named), True

    # ------------------------------------------------------------------ one run
    async def _run(
        self,
        request: web.Request,
        req: ChatRequest,
        who: Principal,
        conversation: ConversationRef,
        history: list[HistoryItem],
        model: str | None,
        platform_id: str,
        persistent: bool,
        taken: list[_Progress] | None = None,
    ) -> web.StreamResponse:
        """Record the request's inbound and answer it from its run. A keyed request hands its
        ``_Progress`` out in ``taken``; then a run still going when the response ends is left
        watched, for ``_conclude`` to follow."""
        lock = self._locks.setdefault(conversation.key, asyncio.Lock()) if persistent else None
        if lock is not None:
            self._waiting[conversation.key] = self._waiting.get(conversation.key, 0) + 1
            await lock.acquire()
        try:
            if self._runs.saturated():
                raise ApiError(
                    429,
                    "Every agent run slot is busy ([sessions] max_concurrent_runs); retry shortly.",
                    type="rate_limit_error",
                    code="rate_limit_exceeded",
                )
            _, text = split_messages(req.messages)
            if persistent or history or model is not None or req.mode is not None:
                await self._runs.prepare(
                    conversation, history=[] if persistent else history, model=model, mode=req.mode
                )
            progress = _Progress(self._runs.watch(platform_id), req.model)
            if taken is not None:
                taken.append(progress)
            try:
                await self._record(conversation, who, text, platform_id)
                progress.recorded = True
                if req.stream:
                    return await self._stream(request, req, progress)
                return await self._answer(progress)
            finally:
                if taken is None or not progress.recorded or progress.answer is not None:
                    self._runs.unwatch(progress.watch)
        finally:
            if lock is not None:
                lock.release()
                self._waiting[conversation.key] -= 1
                if not self._waiting[conversation.key]:  # nobody else waits: drop the idle lock
                    del self._waiting[conversation.key], self._locks[conversation.key]

    async def _record(self, conversation: ConversationRef, who: Principal, text: str, platform_id: str) -> None:
        if self._inbox is None:
            raise ApiError(
                503, "The hub is starting or stopping; retry shortly.", type="server_error", code="unavailable"
            )
        inbound = Inbound(
            kind="message",
            conversation=conversation,
            sender=Sender(id=who.id, name=who.id, is_admin=who.admin),
            text=text,
            platform_id=platform_id,
            direct=True,
            mentioned=True,
        )
        if not await self._inbox(inbound):
            raise ApiError(409, "This request was already received and is being answered.", code="duplicate")

    async def _next(self, watch: RunWatch, deadline: float) -> Outbound | RunEnded:
        try:
            async with asyncio.timeout_at(deadline):
                return await watch.events.get()
        except TimeoutError:
            raise _timeout(self.config.request_timeout_seconds) from None

    async def _answer(self, progress: _Progress) -> web.StreamResponse:
        deadline = asyncio.get_running_loop().time() + self.config.request_timeout_seconds
        while not isinstance(event := await self._next(progress.watch, deadline), RunEnded):
            progress.text.feed(event)
        return web.Response(body=orjson.dumps(progress.end(event)), content_type="application/json")

    async def _stream(self, request: web.Request, req: ChatRequest, progress: _Progress) -> web.StreamResponse:
        deadline = asyncio.get_running_loop().time() + self.config.request_timeout_seconds
        cid, model, created = progress.cid, req.model, progress.created
        resp = await _open_sse(request)
        await resp.write(chunk(cid, model, created, {"role": "assistant", "content": ""}))
        try:
            while not isinstance(event := await self._next(progress.watch, deadline), RunEnded):
                if delta := progress.text.feed(event):
                    await resp.write(chunk(cid, model, created, {"content": delta}))
            answer = progress.end(event)
        except ApiError as exc:
            await resp.write(error_event(exc))
            await resp.write_eof()
            return resp
        except ConnectionResetError:  # the client left; a keyed request's run is followed on
            log.debug("channels.%s: a streaming client left before its answer ended", self.name)
            return resp
        await resp.write(chunk(cid, model, created, {}, "stop"))
        if req.stream_options is not None and req.stream_options.include_usage:
            await resp.write(usage_chunk(cid, model, created, _usage(answer)))
        await resp.write(DONE)
        await resp.write_eof()
        return resp

    async def _replay(self, request: web.Request, req: ChatRequest, answer: dict[str, object]) -> web.StreamResponse:
        """The stored answer of an earlier run with the same key, in the form this request asks."""
        if (error := replayed_error(answer)) is not None:
            raise error
        if not req.stream:
            return web.Response(body=orjson.dumps(answer), content_type="application/json")
        cid, model, created = str(answer["id"]), str(answer["model"]), int(str(answer["created"]))
        choices = answer["choices"]
        assert isinstance(choices, list)
        content = str(choices[0]["message"]["content"])
        resp = await _open_sse(request)
        await resp.write(chunk(cid, model, created, {"role": "assistant", "content": content}))
        await resp.write(chunk(cid, model, created, {}, "stop"))
        if req.stream_options is not None and req.stream_options.include_usage:
            await resp.write(usage_chunk(cid, model, created, _usage(answer)))
        await resp.write(DONE)
        await resp.write_eof()
        return resp


async def _open_sse(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await resp.prepare(request)
    return resp


def _usage(answer: dict[str, object]) -> dict[str, int]:
    usage = answer.get("usage")
    return {str(k): int(v) for k, v in usage.items()} if isinstance(usage, dict) else {}


def _timeout(seconds: float) -> ApiError:
    return ApiError(
        504,
        f"No answer within {seconds:g} s (request_timeout_seconds); "
        "the run goes on, and a retry with the same Idempotency-Key gets its answer.",
        type="server_error",
        code="timeout",
    )


def _check_failed(text: str) -> None:
    """A run whose whole answer is the agent's apology for a failed model call is a 502."""
    if text.startswith(PROVIDER_FAILED):
        raise ApiError(502, f"The model provider failed: {text}", type="api_error", code="provider_error")
    if text.startswith(HUB_FAILED):
        raise ApiError(500, text, type="server_error", code="internal_error")
