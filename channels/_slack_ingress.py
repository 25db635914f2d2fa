"""Slack's HTTP ingress before Bolt: authenticate the raw bytes, then check the body's shape.

Every request to ``POST /slack/events`` gets an answer, never a traceback:

* **401** — not shown to come from Slack: a missing, non-numeric or stale (more than five
  minutes off) ``X-Slack-Request-Timestamp``, or a missing or wrong v0 ``X-Slack-Signature``.
  Checked on the raw bytes before anything else reads the body, so an unsigned body that is
  not UTF-8 ends here too.
* **400** — signed, but not a body Slack sends: not UTF-8, bad JSON, a ``payload=`` that is
  not a JSON object, nesting deeper than ``MAX_DEPTH``, no ``type`` / ``command``, or a field
  Bolt routes on with the wrong type (Bolt would raise on it). Sent with
  ``X-Slack-No-Retry: 1``: the same bytes would fail again. A body cut short (the client hung
  up) is answered 400 too, and logged with the unauthenticated kind.
* **503** — the channel is not started: nothing was committed, so Slack delivers it again.

Each of the two refusal kinds logs at most one WARNING per ``WARN_INTERVAL`` with a count of
the ones held back, so whoever can reach the route cannot fill the log. Bodies are never logged.

slack_sdk's ``SignatureVerifier`` is not used: it calls ``int()`` on the timestamp header and
decodes the body as UTF-8 before hashing, so a request with no timestamp or a non-UTF-8 body
raised. Bolt does not verify again: it gets the body parsed here, re-encoded as JSON, because
its own parser takes any form body containing the text ``payload`` for an interaction and
drops the rest (``/ask what is a payload`` reached no listener); re-encoded bytes carry no
signature to check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

log = logging.getLogger(__name__)

MAX_SKEW = 60 * 5
"""Seconds a request's timestamp may be off from our clock (Slack's replay window)."""
MAX_DEPTH = 32
"""Deepest JSON nesting accepted; Slack's deepest payloads (rich text inside a changed
message's blocks) stay well below it."""
MAX_FORM_FIELDS = 100
WARN_INTERVAL = 60.0
"""At most one WARNING per refusal kind in this many seconds."""

_OPTIONAL_OBJECT = (str, dict, type(None))
# Fields Bolt reads to route a request and to build its context, and the types it assumes.
_ROUTING_FIELDS: dict[str, tuple[type, ...]] = {
    "type": (str,),
    "subtype": (str, type(None)),
    "command": (str,),
    "event": (dict,),
    "authorizations": (list,),
    "response_urls": (list,),
    "actions": (list,),
    **dict.fromkeys(
        (
            "enterprise",
            "team",
            "user",
            "channel",
            "view",
            "message",
            "previous_message",
            "item",
            "assistant_thread",
            "function_data",
            "container",
        ),
        _OPTIONAL_OBJECT,
    ),
}
_LISTS_OF_OBJECTS = ("authorizations", "response_urls", "actions")


class Refusal(Exception):
    """A request answered here, without Bolt. ``reason`` is fixed text: it never quotes the body.

    ``kind`` groups refusals for the log throttle: ``unauthenticated`` (nothing verified yet)
    or ``malformed`` (signed, but unusable).
    """

    def __init__(self, status: int, reason: str, *, kind: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.kind = kind or ("unauthenticated" if status == 401 else "malformed")


def verify_signature(raw: bytes, timestamp: str | None, signature: str | None, *, secret: bytes, now: float) -> None:
    """Check Slack's v0 signature of ``raw`` (HMAC-SHA256 of ``v0:{timestamp}:{raw}``).

    Args:
        raw: the request body, undecoded.
        timestamp: the ``X-Slack-Request-Timestamp`` header, if any.
        signature: the ``X-Slack-Signature`` header, if any.
        secret: the app's signing secret.
        now: the current Unix time.

    Raises:
        Refusal: 401, when any of it is missing, malformed, stale or wrong.
    """
    if not timestamp:
        raise Refusal(401, "no timestamp")
    # int() alone would accept " 1", "+1", "1_0" and non-ASCII digits.
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise Refusal(401, "invalid timestamp")
    if abs(now - int(timestamp)) > MAX_SKEW:
        raise Refusal(401, "stale timestamp")
    if not secret or not signature:
        raise Refusal(401, "no signature")
    digest = hmac.new(secret, b"v0:" + timestamp.encode() + b":" + raw, hashlib.sha256).hexdigest()
    # Compared as bytes: compare_digest raises TypeError on a str with non-ASCII characters.
    if not hmac.compare_digest(("v0=" + digest).encode(), signature.encode("utf-8", "surrogateescape")):
        raise Refusal(401, "invalid signature")


def parse_body(raw: bytes, content_type: str) -> dict[str, Any]:
    """Parse a verified body as Slack sends it: JSON (events), a form, or a form's ``payload``.

    Raises:
        Refusal: 400, when it is not UTF-8, not a JSON object where one is due, too deep, or a
            field Bolt routes on has the wrong type.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refusal(400, "body is not UTF-8") from None
    if content_type == "application/json" or text.startswith("{"):
        body = _json_object(text, "body")
    else:
        body = _form(text)
    problem = _shape_problem(body)
    if problem:
        raise Refusal(400, problem)
    return body


def _form(text: str) -> dict[str, Any]:
    try:
        fields = dict(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS))
    except ValueError:
        raise Refusal(400, "too many form fields") from None
    payload = fields.get("payload")
    return fields if payload is None else _json_object(payload, "payload")


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise Refusal(400, f"{what} is not JSON") from None
    except RecursionError:  # json's C decoder, past the interpreter's recursion limit
        raise Refusal(400, f"{what} is nested too deeply") from None
    if not isinstance(value, dict):
        raise Refusal(400, f"{what} is not a JSON object")
    if _depth(value) > MAX_DEPTH:
        raise Refusal(400, f"{what} is nested too deeply")
    return value


def _depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth <= MAX_DEPTH:
                children = item.values() if isinstance(item, dict) else item
                stack.extend((child, depth + 1) for child in children)
    return deepest


def _shape_problem(body: dict[str, Any]) -> str | None:
    if not (body.get("type") or body.get("command") or "ssl_check" in body):
        return "neither an event, a command nor an interaction"
    event = body.get("event")
    for scope in (body, event if isinstance(event, dict) else {}):
        for key, value in scope.items():
            expected = _ROUTING_FIELDS.get(key)
            if expected is not None and not isinstance(value, expected):
                return f"field {key!r} has the wrong type"
        for key in _LISTS_OF_OBJECTS:
            if not all(isinstance(item, dict) for item in scope.get(key) or ()):
                return f"field {key!r} is not a list of objects"
    if body.get("type") == "block_actions":
        actions = body.get("actions") or []
        if not actions or not all(isinstance(a.get("action_id"), str) for a in actions):
            return "block_actions without action ids"
    return None


class WarningThrottle:
    """Lets one log line per ``kind`` through per ``interval`` seconds and counts the rest.

    Args:
        interval: seconds between two lines of one kind.
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(self, *, interval: float = WARN_INTERVAL, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def admit(self, kind: str) -> int | None:
        """``None`` to stay silent (the line is counted), else how many were held back before it."""
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self._interval:
            self._held[kind] = self._held.get(kind, 0) + 1
            return None
        self._last[kind] = now
        return self._held.pop(kind, 0)


async def _read(request: web.Request) -> bytes:
    try:
        return await request.read()
    except (ConnectionError, HttpProcessingError):
        # The client hung up or sent a broken body: aiohttp would log a traceback per request.
        raise Refusal(400, "body cut short or badly framed", kind="unauthenticated") from None


class SlackIngress:
    """The aiohttp handler of ``POST /slack/events``: verify, parse, then hand over to Bolt.

    Args:
        name: the channel's name, for log lines.
        signing_secret: the app's signing secret; empty refuses everything.
        app: the Bolt app, built with its own request verification off.
        ready: whether the channel is started (else 503).
        clock: Unix time, for the timestamp window (injectable for tests).
    """

    def __init__(
        self,
        name: str,
        *,
        signing_secret: str,
        app: AsyncApp,
        ready: Callable[[], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._name = name
        self._secret = signing_secret.encode()
        self._app = app
        self._ready = ready
        self._clock = clock
        self.throttle = WarningThrottle()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            raw = await _read(request)
            verify_signature(
                raw,
                request.headers.get("X-Slack-Request-Timestamp"),
                request.headers.get("X-Slack-Signature"),
                secret=self._secret,
                now=self._clock(),
            )
            body = parse_body(raw, request.content_type)
            bolt_request = self._bolt_request(request, body)
        except Refusal as refusal:
            return self._refuse(request, refusal)
        if not self._ready():
            # Not committed, so not acked: Slack retries later.
            return web.json_response({"error": "not ready"}, status=503)
        return await to_aiohttp_response(await self._app.async_dispatch(bolt_request))

    def _bolt_request(self, request: web.Request, body: dict[str, Any]) -> AsyncBoltRequest:
        """Bolt's request for ``body``, as JSON (see the module docstring)."""
        headers: dict[str, str | Sequence[str]] = {
            k: v for k, v in request.headers.items() if k.lower() != "content-type"
        }
        headers["Content-Type"] = "application/json"
        try:
            return AsyncBoltRequest(body=json.dumps(body), query=request.query_string, headers=headers)
        except Exception:  # building Bolt's context only reads the body: a failure is a bad body
            raise Refusal(400, "body Bolt cannot read") from None

    def _refuse(self, request: web.Request, refusal: Refusal) -> web.Response:
        kind = refusal.kind
        held = self.throttle.admit(kind)
        if held is not None:
            log.warning(
                "slack %s: answered %d to a request from %s (%s: %s); %d more like it held back since the last line",
                self._name,
                refusal.status,
                request.remote or "?",
                kind,
                refusal.reason,
                held,
            )
        if refusal.status == 401:
            return web.json_response({"error": "invalid request"}, status=401)
        return web.json_response({"error": "malformed request"}, status=400, headers={"X-Slack-No-Retry": "1"})


__all__ = ["MAX_DEPTH", "MAX_SKEW", "Refusal", "SlackIngress", "WarningThrottle", "parse_body", "verify_signature"]
