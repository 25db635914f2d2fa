"""A local, protocol-faithful Slack: the Web API the SDK calls, and a driver playing Slack's side.

``FakeSlack`` serves the Web API methods the hub uses under ``/api/`` (what
``AsyncWebClient(base_url=fake.api_url)`` takes): ``auth.test``, ``chat.postMessage``,
``chat.update``, ``chat.postEphemeral``, ``conversations.history`` and ``conversations.replies``.
Each checks the bearer token and answers in Slack's shape (HTTP 200 with ``ok: false`` and an
``error`` code; HTTP 429 with ``Retry-After`` for rate limits). Faults are queued per method.

The same object is the *driver*: it signs requests exactly as Slack does (v0 HMAC-SHA256 of
``v0:{ts}:{raw body}``) and posts slash commands (form-encoded), Events API callbacks (JSON) and
``block_actions`` interactions (form field ``payload``) to the hub's ``/slack/events``, optionally
with a bad signature, a stale or non-numeric timestamp, missing headers, raw (even non-UTF-8)
bytes or ``X-Slack-Retry-Num`` headers. ``response_url``
points back at the fake, which captures what the app posts there::

    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        reply = await slack.send_event(url, slack.mention_event("hello", channel="C1"))
        await slack.wait_until(lambda: slack.posts)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import urlencode

import aiohttp
from aiohttp import web


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """One queued failure of a Web API method."""

    error: str
    status: int = 200
    retry_after: float | None = None


@dataclass(slots=True, kw_only=True)
class Posted:
    """A message the app posted (and its later edits)."""

    channel: str
    ts: str
    text: str
    thread_ts: str | None = None
    blocks: list[dict[str, Any]] | None = None
    unfurl_links: bool | None = None
    unfurl_media: bool | None = None
    user: str = ""
    bot_id: str | None = None
    edits: list[str] = field(default_factory=list)
    """Texts set by ``chat.update``, in order; ``text`` always holds the latest."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiCall:
    """Every Web API request the fake received, faulted or not."""

    method: str
    body: dict[str, Any]
    authorized: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class DriverResponse:
    """What the hub answered to a request the driver sent."""

    status: int
    body: str
    headers: dict[str, str]
    elapsed: float

    def json(self) -> Any:
        return json.loads(self.body)


class FakeSlack:
    """Fake Slack Web API + request driver. Use as ``async with FakeSlack() as slack``."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-fake-token",
        signing_secret: str = "fake-signing-secret",
        team_id: str = "T0001",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        app_id: str = "A0001",
        app_token: str = "xapp-fake-token",
    ) -> None:
        self.bot_token = bot_token
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.app_token = app_token
        self.sockets: list[web.WebSocketResponse] = []
        """Open Socket Mode connections (``apps.connections.open`` → ``/socket``)."""
        self.socket_acks: dict[str, dict[str, Any]] = {}
        """Envelope id → the ack the app sent back over the socket."""
        self.posts: list[Posted] = []
        """Messages created by ``chat.postMessage``, in order."""
        self.updates: list[tuple[str, str, str]] = []
        """``(channel, ts, text)`` for each successful ``chat.update``."""
        self.ephemerals: list[dict[str, Any]] = []
        self.responses: list[tuple[str, dict[str, Any]]] = []
        """``(response_url id, JSON body)`` posted by the app to a ``response_url``."""
        self.calls: list[ApiCall] = []
        self.history: dict[str, list[Posted]] = {}
        """Per channel, every message known to the fake (user messages the driver sent, app posts)."""
        self._faults: dict[str, deque[Fault]] = {}
        self._changed = asyncio.Condition()
        self._ids = itertools.count(1)
        self._ts_base = int(time.time())
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/response/{rid}", self._response_url)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        for ws in list(self.sockets):
            await ws.close()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, rid: str) -> str:
        return f"http://127.0.0.1:{self.port}/response/{rid}"

    # ------------------------------------------------------------------ test helpers
    def fail_next(self, method: str, error: str, *, status: int = 200, retry_after: float | None = None) -> None:
        """Make the next call of ``method`` fail (e.g. ``ratelimited`` with 429, ``invalid_blocks``)."""
        self._faults.setdefault(method, deque()).append(Fault(error=error, status=status, retry_after=retry_after))

    def calls_of(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    async def wait_until(self, predicate: Callable[[], object], within: float = 5.0) -> None:
        """Wait until ``predicate()`` is truthy; re-checked after every request the fake handles."""
        async with asyncio.timeout(within):
            async with self._changed:
                await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def next_ts(self) -> str:
        return f"{self._ts_base}.{next(self._ids):06d}"

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08d}"

    # ------------------------------------------------------------------ Web API
    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body = await _read_params(request)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else body.get("token", "")
        # apps.connections.open takes the app-level token; everything else the bot token.
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        authorized = hmac.compare_digest(str(token), expected)
        self.calls.append(ApiCall(method=method, body=body, authorized=authorized))
        try:
            if not token:
                return _error("not_authed")
            if not authorized:
                return _error("invalid_auth")
            queue = self._faults.get(method)
            if queue:
                fault = queue.popleft()
                headers = {"Retry-After": _num(fault.retry_after)} if fault.retry_after is not None else {}
                return _error(fault.error, status=fault.status, headers=headers)
            handler = self._methods().get(method)
            if handler is None:
                return _error("unknown_method")
            return handler(body)
        finally:
            await self._notify()

    def _methods(self) -> dict[str, Callable[[dict[str, Any]], web.Response]]:
        return {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "apps.connections.open": self._connections_open,
        }

    def _auth_test(self, body: dict[str, Any]) -> web.Response:
        return _ok(
            url="https://fake.slack.com/",
            team="Fake Team",
            user="autohands",
            team_id=self.team_id,
            user_id=self.bot_user_id,
            bot_id=self.bot_id,
            is_enterprise_install=False,
        )

    def _post_message(self, body: dict[str, Any]) -> web.Response:
        channel = str(body.get("channel") or "")
        text = body.get("text")
        blocks = _json_field(body.get("blocks"))
        if not channel:
            return _error("channel_not_found")
        if not text and not blocks:
            return _error("no_text")
        if text is not None and len(str(text)) > 40_000:
            return _error("msg_too_long")
        if blocks is not None and not _valid_blocks(blocks):
            return _error("invalid_blocks")
        posted = Posted(
            channel=channel,
            ts=self.next_ts(),
            text=str(text or ""),
            thread_ts=str(body["thread_ts"]) if body.get("thread_ts") else None,
            blocks=blocks,
            unfurl_links=_bool(body.get("unfurl_links")),
            unfurl_media=_bool(body.get("unfurl_media")),
            user=self.bot_user_id,
            bot_id=self.bot_id,
        )
        self.posts.append(posted)
        self.history.setdefault(channel, []).append(posted)
        return _ok(channel=channel, ts=posted.ts, message=_message_json(posted))

    def _update(self, body: dict[str, Any]) -> web.Response:
        channel, ts = str(body.get("channel") or ""), str(body.get("ts") or "")
        target = next((p for p in self.posts if p.channel == channel and p.ts == ts), None)
        if target is None:
            return _error("message_not_found")
        text = str(body.get("text") or "")
        blocks = _json_field(body.get("blocks"))
        if len(text) > 40_000:
            return _error("msg_too_long")
        if blocks is not None and not _valid_blocks(blocks):
            return _error("invalid_blocks")
        target.text = text
        target.edits.append(text)
        if "blocks" in body:
            target.blocks = blocks or None
        self.updates.append((channel, ts, text))
        return _ok(channel=channel, ts=ts, text=text)

    def _post_ephemeral(self, body: dict[str, Any]) -> web.Response:
        if not body.get("channel") or not body.get("user"):
            return _error("invalid_arguments")
        self.ephemerals.append(dict(body))
        return _ok(message_ts=self.next_ts())

    def _conversations_history(self, body: dict[str, Any]) -> web.Response:
        channel = str(body.get("channel") or "")
        if channel not in self.history:
            return _error("channel_not_found")
        oldest = float(body.get("oldest") or 0)
        limit = int(body.get("limit") or 100)
        messages = [m for m in self.history[channel] if m.thread_ts in (None, m.ts) and float(m.ts) > oldest]
        newest_first = list(reversed(messages))[:limit]
        return _ok(messages=[_message_json(m) for m in newest_first], has_more=False)

    def _conversations_replies(self, body: dict[str, Any]) -> web.Response:
        channel, ts = str(body.get("channel") or ""), str(body.get("ts") or "")
        thread = [m for m in self.history.get(channel, []) if m.ts == ts or m.thread_ts == ts]
        if not thread:
            return _error("thread_not_found")
        return _ok(messages=[_message_json(m) for m in thread], has_more=False)

    def _connections_open(self, body: dict[str, Any]) -> web.Response:
        return _ok(url=f"ws://127.0.0.1:{self.port}/socket?ticket={self.next_id('tk')}")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self.sockets),
                "connection_info": {"app_id": self.app_id},
            }
        )
        await self._notify()
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    data = json.loads(msg.data)
                    if data.get("envelope_id"):
                        self.socket_acks[data["envelope_id"]] = data
                        await self._notify()
        finally:
            self.sockets.remove(ws)
            await self._notify()
        return ws

    async def send_socket(
        self, kind: str, payload: dict[str, Any], *, retry_attempt: int = 0, within: float = 5.0
    ) -> dict[str, Any]:
        """Send one Socket Mode envelope (``events_api``, ``slash_commands``, ``interactive``) and
        wait for the app's ack, which is returned."""
        await self.wait_until(lambda: self.sockets, within=within)
        envelope_id = self.next_id("env-")
        await self.sockets[-1].send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": retry_attempt,
                "retry_reason": "timeout" if retry_attempt else "",
            }
        )
        await self.wait_until(lambda: envelope_id in self.socket_acks, within=within)
        return self.socket_acks[envelope_id]

    async def _response_url(self, request: web.Request) -> web.Response:
        rid = request.match_info["rid"]
        try:
            payload = await request.json()
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        self.responses.append((rid, payload))
        await self._notify()
        return web.Response(text="ok")

    # ------------------------------------------------------------------ driver: payload builders
    def mention_event(
        self, text: str, *, channel: str = "C0001", user: str = "U0001", thread_ts: str | None = None
    ) -> dict[str, Any]:
        """An ``app_mention``: ``text`` is prefixed with the bot's mention as Slack renders it."""
        ts = self.next_ts()
        event: dict[str, Any] = {
            "type": "app_mention",
            "user": user,
            "text": f"<@{self.bot_user_id}> {text}",
            "ts": ts,
            "channel": channel,
            "event_ts": ts,
            "team": self.team_id,
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        return event

    def message_event(
        self,
        text: str,
        *,
        channel: str = "D0001",
        user: str | None = "U0001",
        channel_type: str = "im",
        subtype: str | None = None,
        bot_id: str | None = None,
        thread_ts: str | None = None,
    ) -> dict[str, Any]:
        """A ``message`` event (``message.im`` by default; ``channel_type="channel"`` for channels)."""
        ts = self.next_ts()
        event: dict[str, Any] = {
            "type": "message",
            "text": text,
            "ts": ts,
            "channel": channel,
            "event_ts": ts,
            "channel_type": channel_type,
            "team": self.team_id,
        }
        if user is not None:
            event["user"] = user
        if subtype:
            event["subtype"] = subtype
        if bot_id:
            event["bot_id"] = bot_id
        if thread_ts:
            event["thread_ts"] = thread_ts
        return event

    def event_envelope(self, event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
        return {
            "token": "legacy-verification-token",
            "team_id": self.team_id,
            "api_app_id": self.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or self.next_id("Ev"),
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }

    # ------------------------------------------------------------------ driver: senders
    async def send_event(
        self,
        url: str,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
        **sign: Any,
    ) -> DriverResponse:
        """POST an ``event_callback`` (as JSON); ``retry_num`` adds Slack's retry headers."""
        envelope = self.event_envelope(event, event_id=event_id)
        self._remember_user_message(event)
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        return await self.send_raw(url, json.dumps(envelope), "application/json", headers=headers, **sign)

    async def send_envelope(
        self,
        url: str,
        envelope: dict[str, Any],
        *,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
        **sign: Any,
    ) -> DriverResponse:
        """POST a prepared envelope again (a redelivery keeps its ``event_id``)."""
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        return await self.send_raw(url, json.dumps(envelope), "application/json", headers=headers, **sign)

    async def url_verification(self, url: str, challenge: str = "challenge-123", **sign: Any) -> DriverResponse:
        body = {"token": "legacy-verification-token", "challenge": challenge, "type": "url_verification"}
        return await self.send_raw(url, json.dumps(body), "application/json", **sign)

    def slash_form(
        self,
        text: str,
        *,
        command: str = "/ask",
        channel: str = "C0001",
        user: str = "U0001",
        user_name: str = "alice",
        team_id: str | None = None,
        trigger_id: str | None = None,
    ) -> dict[str, str]:
        """A slash command's form; ``team_id`` other than the fake's is a Slack Connect user's."""
        rid = self.next_id("R")
        return {
            "token": "legacy-verification-token",
            "team_id": team_id or self.team_id,
            "team_domain": "fake",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": self.response_url(rid),
            "trigger_id": trigger_id or self.next_id("trig."),
        }

    async def send_slash_command(self, url: str, text: str, **kwargs: Any) -> DriverResponse:
        sign = {k: kwargs.pop(k) for k in ("bad_signature", "timestamp", "retry_num") if k in kwargs}
        form = self.slash_form(text, **kwargs)
        return await self.send_form(url, form, **sign)

    async def send_form(
        self, url: str, form: dict[str, str], *, retry_num: int | None = None, **sign: Any
    ) -> DriverResponse:
        headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"} if retry_num else {}
        return await self.send_raw(url, urlencode(form), "application/x-www-form-urlencoded", headers=headers, **sign)

    def block_actions_payload(
        self,
        action_id: str,
        *,
        value: str = "",
        user: str = "U0001",
        channel: str = "C0001",
        message_ts: str | None = None,
        trigger_id: str | None = None,
        block_id: str = "b1",
    ) -> dict[str, Any]:
        """A click; pass the posted actions block's ``block_id`` as Slack would send it back."""
        message_ts = message_ts or self.next_ts()
        return {
            "type": "block_actions",
            "user": {"id": user, "username": "alice", "name": "alice", "team_id": self.team_id},
            "api_app_id": self.app_id,
            "token": "legacy-verification-token",
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel,
                "is_ephemeral": False,
            },
            "trigger_id": trigger_id or self.next_id("trig."),
            "team": {"id": self.team_id, "domain": "fake"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": "general"},
            "message": {
                "type": "message",
                "ts": message_ts,
                "user": self.bot_user_id,
                "bot_id": self.bot_id,
                "text": "approve?",
            },
            "response_url": self.response_url(self.next_id("R")),
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": block_id,
                    "type": "button",
                    "value": value,
                    "text": {"type": "plain_text", "text": action_id},
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }

    async def click_button(self, url: str, action_id: str, **kwargs: Any) -> DriverResponse:
        sign = {k: kwargs.pop(k) for k in ("bad_signature", "timestamp") if k in kwargs}
        payload = self.block_actions_payload(action_id, **kwargs)
        return await self.send_form(url, {"payload": json.dumps(payload)}, **sign)

    async def send_raw(
        self,
        url: str,
        body: str | bytes,
        content_type: str,
        *,
        headers: dict[str, str] | None = None,
        bad_signature: bool = False,
        timestamp: int | str | None = None,
        without: tuple[str, ...] = (),
        within: float = 10.0,
    ) -> DriverResponse:
        """Sign ``body`` as Slack does and POST it.

        ``timestamp`` lets a test send a stale (or non-numeric) one; ``without`` names headers
        to leave out (``X-Slack-Request-Timestamp``, ``X-Slack-Signature``); a ``bytes`` body is
        sent and signed as is, so it may be anything but UTF-8.
        """
        assert self._session is not None, "FakeSlack is not started"
        ts = str(timestamp if timestamp is not None else int(time.time()))
        data = body if isinstance(body, bytes) else body.encode()
        secret = "not-the-secret" if bad_signature else self.signing_secret
        digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + data, hashlib.sha256).hexdigest()
        all_headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": f"v0={digest}",
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            **(headers or {}),
        }
        for name in without:
            all_headers.pop(name, None)
        start = time.monotonic()
        async with self._session.post(
            url, data=data, headers=all_headers, timeout=aiohttp.ClientTimeout(total=within)
        ) as resp:
            text = await resp.text()
            return DriverResponse(
                status=resp.status, body=text, headers=dict(resp.headers), elapsed=time.monotonic() - start
            )

    def _remember_user_message(self, event: dict[str, Any]) -> None:
        if event.get("type") in ("message", "app_mention") and event.get("channel") and event.get("ts"):
            posted = Posted(
                channel=event["channel"],
                ts=event["ts"],
                text=event.get("text", ""),
                thread_ts=event.get("thread_ts"),
                user=event.get("user", ""),
                bot_id=event.get("bot_id"),
            )
            known = self.history.setdefault(event["channel"], [])
            if all(m.ts != posted.ts for m in known):
                known.append(posted)


# ---------------------------------------------------------------------- helpers
async def _read_params(request: web.Request) -> dict[str, Any]:
    """Slack accepts query, form and JSON bodies alike; merge them in that order."""
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        raw = await request.text()
        if raw:
            data = json.loads(raw)
            if isinstance(data, dict):
                params.update(data)
    elif request.can_read_body:
        params.update(dict(await request.post()))
    return params


def _json_field(value: Any) -> Any:
    """``blocks`` arrive as a list (JSON body) or a JSON string (form body)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return [{"invalid": value}]
    return value


def _valid_blocks(blocks: Any) -> bool:
    if not isinstance(blocks, list) or len(blocks) > 50:
        return False
    for block in blocks:
        if not isinstance(block, dict) or block.get("type") not in (
            "section",
            "actions",
            "context",
            "divider",
            "header",
            "markdown",
            "rich_text",
        ):
            return False
        if block["type"] == "section" and len(str(block.get("text", {}).get("text", ""))) > 3000:
            return False
        if block["type"] == "actions":
            elements = block.get("elements") or []
            if not elements or len(elements) > 25 or any(not e.get("action_id") for e in elements):
                return False
    return True


def _message_json(m: Posted) -> dict[str, Any]:
    data: dict[str, Any] = {"type": "message", "ts": m.ts, "text": m.text, "user": m.user}
    if m.bot_id:
        data["bot_id"] = m.bot_id
    if m.thread_ts:
        data["thread_ts"] = m.thread_ts
    if m.blocks:
        data["blocks"] = m.blocks
    return data


def _bool(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.lower() in ("1", "true")
    return bool(value)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _ok(**data: Any) -> web.Response:
    return web.json_response({"ok": True, **data})


def _error(code: str, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"ok": False, "error": code}, status=status, headers=headers)
