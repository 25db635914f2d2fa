"""``POST /slack/events`` before Bolt: 401 / 400 / 503 without tracebacks, quiet logs, redelivery.

The first part drives a started ``SlackChannel`` on a local aiohttp server with requests Slack
would never send (no timestamp, a body that is not UTF-8, a signed body that is not JSON, …).
The last part runs a real ``Hub`` (echo agent, or the real openai SDK against the fake OpenAI
server) to show that an event Slack redelivers after the hub was down is answered exactly once,
and that two people's ``/ask`` in one channel are two conversations.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from channels._slack_ingress import MAX_DEPTH, Refusal, WarningThrottle, parse_body, verify_signature
from channels.slack import EVENTS_PATH, SlackChannel
from hub.app import Hub
from hub.backoff import Backoff
from hub.channel import ChannelContext
from hub.config import Settings, load_settings
from tests.channels.support import MemoryState
from tests.channels.test_slack import COMMANDS, RecordingInbox, make_config
from tests.fakes.llm_script import LLMScript
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack import DriverResponse, FakeSlack

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
TIMESTAMP = "X-Slack-Request-Timestamp"
SIGNATURE = "X-Slack-Signature"


@dataclass
class Served:
    slack: FakeSlack
    channel: SlackChannel
    inbox: RecordingInbox
    url: str


@asynccontextmanager
async def serve(slack: FakeSlack, *, start: bool = True) -> AsyncIterator[Served]:
    """The channel's route on a local aiohttp server, as the hub's gateway mounts it."""
    context = ChannelContext(state=MemoryState(), commands=COMMANDS)
    channel = SlackChannel("slack", make_config(slack), context)
    app = web.Application()
    for method, path, handler in context.routes:
        app.router.add_route(method, path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    inbox = RecordingInbox()
    if start:
        await channel.start(inbox)
    try:
        yield Served(slack, channel, inbox, f"http://127.0.0.1:{runner.addresses[0][1]}{EVENTS_PATH}")
    finally:
        await channel.stop()
        await runner.cleanup()


@pytest.fixture
async def served(slack: FakeSlack) -> AsyncIterator[Served]:
    async with serve(slack) as s:
        yield s


@pytest.fixture
async def stopped(slack: FakeSlack) -> AsyncIterator[Served]:
    async with serve(slack, start=False) as s:
        yield s


def assert_quiet(caplog: pytest.LogCaptureFixture, *, warnings: int = 1) -> None:
    """At most ``warnings`` WARNING lines, nothing above, and no traceback anywhere."""
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r for r in loud if r.levelno > logging.WARNING] == [], caplog.text
    assert len(loud) <= warnings, caplog.text
    assert all(r.exc_info is None for r in caplog.records), caplog.text
    assert "Traceback" not in caplog.text


def mention_body(slack: FakeSlack, text: str = "hi") -> str:
    return json.dumps(slack.event_envelope(slack.mention_event(text)))


# ---------------------------------------------------------------------- 401: not from Slack
UNAUTHENTICATED: dict[str, dict[str, Any]] = {
    "no timestamp": {"without": (TIMESTAMP,)},
    "empty timestamp": {"timestamp": ""},
    "non-numeric timestamp": {"timestamp": "yesterday"},
    "signed number with sign": {"timestamp": "+{now}"},
    "stale timestamp": {"timestamp": -6 * 60},
    "future timestamp": {"timestamp": 6 * 60},
    "no signature": {"without": (SIGNATURE,)},
    "wrong signature": {"bad_signature": True},
    "nothing": {"without": (TIMESTAMP, SIGNATURE)},
}


@pytest.mark.parametrize("sign", UNAUTHENTICATED.values(), ids=UNAUTHENTICATED.keys())
async def test_unauthenticated_request_is_401_with_one_warning(
    served: Served, caplog: pytest.LogCaptureFixture, sign: dict[str, Any]
) -> None:
    caplog.set_level(logging.DEBUG)
    now = int(time.time())
    ts = sign.get("timestamp")
    if isinstance(ts, int):  # an offset from now, taken when the test runs
        sign = {**sign, "timestamp": now + ts}
    elif isinstance(ts, str):
        sign = {**sign, "timestamp": ts.format(now=now)}
    resp = await served.slack.send_raw(served.url, mention_body(served.slack), JSON, **sign)
    assert resp.status == 401
    assert resp.json() == {"error": "invalid request"}
    assert served.inbox.calls == 0
    assert_quiet(caplog)
    assert "answered 401" in caplog.text


@pytest.mark.parametrize("sign", [{"bad_signature": True}, {"without": (SIGNATURE,)}, {"without": (TIMESTAMP,)}])
async def test_body_that_is_not_utf8_is_401_before_verification(
    served: Served, caplog: pytest.LogCaptureFixture, sign: dict[str, Any]
) -> None:
    caplog.set_level(logging.DEBUG)
    resp = await served.slack.send_raw(served.url, b"\xff\xfe{\x80}", JSON, **sign)
    assert resp.status == 401 and resp.json() == {"error": "invalid request"}
    assert_quiet(caplog)


async def test_refused_request_never_reaches_bolt_or_the_logs(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = mention_body(served.slack, "secret words")
    resp = await served.slack.send_raw(served.url, body, JSON, bad_signature=True)
    assert resp.status == 401
    assert "secret words" not in caplog.text
    assert not [r for r in caplog.records if r.name.startswith("channels.slack.bolt")]


# ---------------------------------------------------------------------- 400: signed, but malformed
def _deep(levels: int) -> str:
    return '{"type": "event_callback", "event": ' + "[" * levels + "]" * levels + "}"


MALFORMED: dict[str, tuple[bytes | str, str]] = {
    "not utf-8": (b'{"type": "event_callback", "x": "\xff"}', JSON),
    "bad json": ('{"type": "event_callback", ', JSON),
    "json array": ("[1, 2, 3]", JSON),
    "json string": ('"event_callback"', JSON),
    "payload not json": ("payload=%7Bnot+json", FORM),
    "payload json array": ("payload=%5B%5D", FORM),
    "deeper than the interpreter": (_deep(100_000), JSON),
    "deeper than the limit": (_deep(MAX_DEPTH + 5), JSON),
    "event is a string": ('{"type": "event_callback", "event": "app_mention"}', JSON),
    "type is a number": ('{"type": 7}', JSON),
    "authorizations not objects": ('{"type": "event_callback", "authorizations": [1], "event": {}}', JSON),
    "enterprise a number": ('{"type": "event_callback", "enterprise": 5, "event": {"type": "x"}}', JSON),
    "block_actions without actions": (
        "payload=" + json.dumps({"type": "block_actions", "actions": []}).replace(" ", "+"),
        FORM,
    ),
    "action id not a string": (
        "payload=" + json.dumps({"type": "block_actions", "actions": [{"action_id": 1}]}).replace(" ", "+"),
        FORM,
    ),
    "too many form fields": ("&".join(f"f{i}=1" for i in range(500)), FORM),
    "empty form": ("", FORM),
    "json without a type": ('{"event": {"type": "app_mention"}}', JSON),
}


@pytest.mark.parametrize(("body", "content_type"), MALFORMED.values(), ids=MALFORMED.keys())
async def test_signed_but_malformed_request_is_400_with_one_warning(
    served: Served, caplog: pytest.LogCaptureFixture, body: bytes | str, content_type: str
) -> None:
    caplog.set_level(logging.DEBUG)
    resp = await served.slack.send_raw(served.url, body, content_type)
    assert resp.status == 400
    assert resp.json() == {"error": "malformed request"}
    assert resp.headers.get("X-Slack-No-Retry") == "1"  # the same bytes would fail again
    assert served.inbox.calls == 0
    assert_quiet(caplog)
    assert "answered 400" in caplog.text


@pytest.mark.parametrize("kind", ["unauthenticated", "malformed"])
async def test_a_flood_of_bad_requests_logs_one_line(
    served: Served, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(100):
        if kind == "unauthenticated":
            resp = await served.slack.send_raw(served.url, b"\xff" * 64, JSON, without=(TIMESTAMP,))
        else:
            resp = await served.slack.send_raw(served.url, "payload=nope", FORM)
        assert resp.status == (401 if kind == "unauthenticated" else 400)
    assert_quiet(caplog, warnings=1)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    # The channel still works after the flood.
    assert (await served.slack.send_event(served.url, served.slack.mention_event("still here"))).status == 200
    assert [i.text for i in served.inbox.inbounds] == ["still here"]


async def test_client_hanging_up_mid_body_logs_one_line(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    host, port = served.url.split("/")[2].split(":")
    head = f"POST {EVENTS_PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {JSON}\r\nContent-Length: 100\r\n\r\n"
    for _ in range(5):
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(head.encode() + b'{"type":')
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def logged() -> None:  # the server sees each hang-up on its own schedule: no event to await
        while "cut short" not in caplog.text:  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    await asyncio.wait_for(logged(), 5)
    assert (await served.slack.send_event(served.url, served.slack.mention_event("fine"))).status == 200
    assert_quiet(caplog)


def test_throttle_counts_what_it_held_back() -> None:
    now = [0.0]
    throttle = WarningThrottle(interval=60.0, clock=lambda: now[0])
    assert throttle.admit("unauthenticated") == 0
    assert [throttle.admit("unauthenticated") for _ in range(99)] == [None] * 99
    assert throttle.admit("malformed") == 0  # kinds are counted apart
    now[0] = 59.9
    assert throttle.admit("unauthenticated") is None
    now[0] = 60.0
    assert throttle.admit("unauthenticated") == 100
    assert throttle.admit("unauthenticated") is None


# ---------------------------------------------------------------------- the pure checks
SECRET = b"s3cret"


def _signature(ts: str, body: bytes) -> str:
    return "v0=" + hmac.new(SECRET, b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()


def test_verify_accepts_slacks_signature_on_raw_bytes() -> None:
    body = b"\xff not utf-8 but signed"
    verify_signature(body, "1700000000", _signature("1700000000", body), secret=SECRET, now=1700000100)


@pytest.mark.parametrize(
    ("timestamp", "signature", "reason"),
    [
        ("1700000000", "v0=é" + "0" * 63, "invalid signature"),  # compare_digest(str) would raise TypeError
        ("١٧٠٠٠٠٠٠٠٠", None, "invalid timestamp"),  # Arabic-Indic digits: int() would take them
        ("1700000000 ", None, "invalid timestamp"),
        ("9" * 40, None, "invalid timestamp"),
        ("1700000000", "", "no signature"),
    ],
)
def test_verify_refuses_odd_headers_without_raising_anything_else(
    timestamp: str, signature: str | None, reason: str
) -> None:
    with pytest.raises(Refusal) as info:
        verify_signature(b"{}", timestamp, signature, secret=SECRET, now=1700000000)
    assert (info.value.status, info.value.reason) == (401, reason)


def test_parse_keeps_a_slash_command_that_mentions_payload() -> None:
    body = parse_body(b"command=%2Fask&text=what+is+a+payload&user_id=U1", FORM)
    assert body == {"command": "/ask", "text": "what is a payload", "user_id": "U1"}


# ---------------------------------------------------------------------- what Bolt now receives
async def test_slash_command_mentioning_payload_reaches_the_listener(served: Served) -> None:
    # Bolt's own form parser took any body containing "payload" for an interaction (→ 404).
    resp = await served.slack.send_slash_command(served.url, "what is a payload?")
    assert resp.status == 200
    [inbound] = served.inbox.inbounds
    assert inbound.text == "what is a payload?"


async def test_ssl_check_is_answered(served: Served) -> None:
    resp = await served.slack.send_form(served.url, {"ssl_check": "1", "token": "legacy-verification-token"})
    assert resp.status == 200 and served.inbox.calls == 0


async def test_not_started_is_503_but_only_after_the_signature(
    stopped: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert (await stopped.slack.send_raw(stopped.url, mention_body(stopped.slack), JSON)).status == 503
    forged = await stopped.slack.send_raw(stopped.url, mention_body(stopped.slack), JSON, bad_signature=True)
    assert forged.status == 401
    assert_quiet(caplog)


# ---------------------------------------------------------------------- end to end through a Hub
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hub_settings(data_dir: Path, slack: FakeSlack, *, port: int = 0, **extra: Any) -> Settings:
    section = {
        "enabled": True,
        "bot_token": slack.bot_token,
        "signing_secret": slack.signing_secret,
        "api_url": slack.api_url,
        "allow_all": True,
    }
    overrides: dict[str, Any] = {
        "hub": {"data_dir": str(data_dir)},
        "server": {"enabled": True, "host": "127.0.0.1", "port": port},
        "agent": {"runtime": "echo"},
        "channels": {"slack": section},
    }
    overrides.update(extra)
    return load_settings(environ={}, overrides=overrides)


def answers(slack: FakeSlack, text: str) -> int:
    """How many posts answer ``text`` (the echo agent says ``echo: text``; the echoing fake
    model repeats the ``[sent …]`` line the hub puts before the user's words)."""
    return sum(p.text == text or (p.text.startswith("echo: [sent") and p.text.endswith(text)) for p in slack.posts)


async def test_event_sent_while_the_hub_was_down_is_answered_once_when_redelivered(
    slack: FakeSlack, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}{EVENTS_PATH}"
    envelope = slack.event_envelope(slack.mention_event("sent while down", channel="C1"), event_id="EvDown")
    with pytest.raises(aiohttp.ClientConnectionError):  # Slack's first try: connection refused
        await slack.send_envelope(url, envelope)
    settings = hub_settings(tmp_path, slack, port=port)
    async with Hub(settings):
        first = await slack.send_envelope(url, envelope, retry_num=1, retry_reason="connection_failed")
        assert first.status == 200  # a retry header is no reason to drop it
        await slack.wait_until(lambda: answers(slack, "echo: sent while down") == 1, within=10)
        again = await slack.send_envelope(url, envelope, retry_num=2, retry_reason="http_timeout")
        assert again.status == 200
    # The hub restarts; Slack's last retry comes in late. The store still knows the event.
    async with Hub(settings):
        late = await slack.send_envelope(url, envelope, retry_num=3, retry_reason="http_timeout")
        assert late.status == 200
        await slack.send_event(url, slack.mention_event("sentinel", channel="C1"))
        await slack.wait_until(lambda: answers(slack, "echo: sentinel") == 1, within=10)
    assert answers(slack, "echo: sent while down") == 1


async def test_event_refused_with_503_while_starting_is_answered_once_when_redelivered(
    slack: FakeSlack, tmp_path: Path
) -> None:
    slack.fail_next("auth.test", "service_unavailable", status=503)
    retry = Backoff(first=0.2, cap=0.2)
    async with Hub(hub_settings(tmp_path, slack), start_retry=retry) as hub:
        assert hub.gateway is not None
        url = f"http://127.0.0.1:{hub.gateway.bound_port}{EVENTS_PATH}"
        envelope = slack.event_envelope(slack.mention_event("too early", channel="C1"), event_id="Ev503")
        assert (await slack.send_envelope(url, envelope)).status == 503
        await slack.wait_until(lambda: len(slack.calls_of("auth.test")) == 2)
        for attempt, reason in ((1, "http_error"), (2, "http_error")):
            resp: DriverResponse = await slack.send_envelope(url, envelope, retry_num=attempt, retry_reason=reason)
            if resp.status == 503:  # the start retry has not finished yet: Slack tries again
                continue
            assert resp.status == 200
        await slack.wait_until(lambda: answers(slack, "echo: too early") == 1, within=10)
        assert (await slack.send_envelope(url, envelope, retry_num=3, retry_reason="http_timeout")).status == 200
        await slack.send_event(url, slack.mention_event("sentinel", channel="C1"))
        await slack.wait_until(lambda: answers(slack, "echo: sentinel") == 1, within=10)
    assert answers(slack, "echo: too early") == 1


async def test_two_users_asking_in_one_channel_have_separate_histories(slack: FakeSlack, tmp_path: Path) -> None:
    script = LLMScript(default="echo", api_key="sk-local")
    async with FakeOpenAI(script) as llm:
        settings = hub_settings(
            tmp_path,
            slack,
            providers={"local": {"kind": "openai", "base_url": llm.base_url, "api_key": "sk-local", "model": "m"}},
            agent={"provider": "local"},
        )
        async with Hub(settings) as hub:
            assert hub.gateway is not None
            url = f"http://127.0.0.1:{hub.gateway.bound_port}{EVENTS_PATH}"
            await slack.send_slash_command(url, "my salary is 123456", channel="C42", user="UALICE")
            await slack.wait_until(lambda: answers(slack, "my salary is 123456") == 1, within=20)
            await slack.send_slash_command(url, "what did they ask?", channel="C42", user="UBOB")
            await slack.wait_until(lambda: answers(slack, "what did they ask?") == 1, within=20)
            await slack.send_slash_command(url, "and my number?", channel="C42", user="UALICE")
            await slack.wait_until(lambda: answers(slack, "and my number?") == 1, within=20)
    chats = [r for r in script.requests if r.path.endswith("/chat/completions")]
    bobs = [r for r in chats if "what did they ask?" in json.dumps(r.body)]
    alices_second = [r for r in chats if "and my number?" in json.dumps(r.body)]
    assert bobs and alices_second
    assert all("123456" not in json.dumps(r.body) for r in bobs)
    assert any("123456" in json.dumps(r.body) for r in alices_second)  # Alice keeps her own history
    assert all(p.channel == "C42" and p.thread_ts is None for p in slack.posts)
