"""``GET /metrics`` (hub/metrics.py): the Prometheus text format from the hub's own registry,
messages in and out, runs, tokens and errors per provider, job fires, WebSocket clients; who
may read it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hub.app import Hub
from hub.config import Settings, load_settings
from tests.fakes.llm_script import LLMScript
from tests.fakes.openai_server import FakeOpenAI
from tests.hub.conftest import RecordingChannel

ADMIN = "admin-key-0123456789"
USER = "user-key-0123456789"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def settings(tmp_path: Path, *, keys: bool = True, llm: FakeOpenAI | None = None) -> Settings:
    server: dict[str, Any] = {"enabled": True, "port": 0}
    if keys:
        server |= {"api_keys": [USER], "admin_keys": [ADMIN]}
    over: dict[str, Any] = {"hub": {"data_dir": str(tmp_path / "data")}, "server": server, "agent": {"runtime": "none"}}
    if llm is not None:
        over["providers"] = {
            "local": {"kind": "openai", "base_url": llm.base_url, "api_key": "sk-local", "model": "m1"}
        }
        over["agent"] = {"provider": "local"}
    return load_settings(environ={}, overrides=over)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def scrape(http: aiohttp.ClientSession, hub: Hub, key: str | None = ADMIN) -> Samples:
    assert hub.gateway is not None
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with http.get(f"http://127.0.0.1:{hub.gateway.bound_port}/metrics", headers=headers) as r:
        assert r.status == 200, await r.text()
        assert r.content_type == "text/plain"
        text = await r.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_a_message_in_and_its_reply_out_are_counted(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    ch = RecordingChannel()
    async with Hub(settings(tmp_path), channels={ch.name: ch}) as hub:
        before = await scrape(http, hub)
        assert value(before, "autohands_messages_in_total", channel="rec", kind="message") == 0
        await ch.say("hello")
        await ch.wait_sent(1)
        after = await scrape(http, hub)  # a run is timed as its reply is published, before it is sent
    assert value(after, "autohands_messages_in_total", channel="rec", kind="message") == 1
    assert value(after, "autohands_messages_out_total", channel="rec") == 1
    assert value(after, "autohands_time_to_first_token_seconds_count", channel="rec") == 1
    assert value(after, "autohands_outbox_rows", status="pending") == 0
    assert value(after, "autohands_queued_messages") == 0
    assert ("autohands_job_fires_total", frozenset()) in after


async def test_tokens_and_errors_per_provider(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    script = LLMScript(api_key="sk-local")
    script.reply("Hello there.").error(400, message="bad request")
    ch = RecordingChannel()
    async with FakeOpenAI(script) as llm, Hub(settings(tmp_path, llm=llm), channels={ch.name: ch}) as hub:
        await ch.say("hi")
        await ch.wait_sent(1)
        await ch.say("again")
        await ch.wait_sent(2)
        samples = await scrape(http, hub)
    assert value(samples, "autohands_run_duration_seconds_count", channel="rec") == 2
    assert value(samples, "autohands_model_tokens_total", provider="local", model="m1", kind="input") > 0
    assert value(samples, "autohands_model_tokens_total", provider="local", model="m1", kind="output") > 0
    errors = {labels: n for (name, labels), n in samples.items() if name == "autohands_model_errors_total"}
    assert list(errors.values()) == [1.0] and ("provider", "local") in next(iter(errors))


async def test_job_fires_are_counted(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    ch = RecordingChannel()
    async with Hub(settings(tmp_path), channels={ch.name: ch}) as hub:
        await ch.say("in 1 second stretch", kind="command", command="remind")
        await ch.wait_sent(2)  # the confirmation, then the reminder
        samples = await scrape(http, hub)
    assert value(samples, "autohands_job_fires_total") == 1
    assert value(samples, "autohands_messages_in_total", channel="rec", kind="job") == 1


class WebLikeChannel(RecordingChannel):
    """A channel with connected clients (``hub.metrics.CountsClients``), as the web chat is."""

    @property
    def clients(self) -> int:
        return 3


async def test_websocket_clients_come_from_the_channels_that_count_them(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    ch = WebLikeChannel("webby")
    async with Hub(settings(tmp_path), channels={ch.name: ch}) as hub:
        samples = await scrape(http, hub)
    assert value(samples, "autohands_websocket_clients", channel="webby") == 3
    assert ("autohands_websocket_clients", frozenset({("channel", "rec")})) not in samples
    # the web chat, on by default, counts its WebSockets (none are open)
    assert ("autohands_websocket_clients", frozenset({("channel", "web")})) in samples


async def test_metrics_need_an_admin_key_unless_the_server_is_open(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    async with Hub(settings(tmp_path)) as hub:
        assert hub.gateway is not None
        url = f"http://127.0.0.1:{hub.gateway.bound_port}/metrics"
        async with http.get(url) as r:
            assert r.status == 401
        async with http.get(url, headers={"Authorization": f"Bearer {USER}"}) as r:
            assert r.status == 403
        await scrape(http, hub, ADMIN)
    async with Hub(settings(tmp_path / "open", keys=False)) as hub:
        await scrape(http, hub, key=None)  # keyless, loopback-only: this machine's operator


async def test_each_hub_has_its_own_registry(tmp_path: Path) -> None:
    one, two = Hub(settings(tmp_path / "a")), Hub(settings(tmp_path / "b"))
    assert one.metrics.registry is not two.metrics.registry
    one.metrics.messages_out["x"] += 1
    assert b"autohands_messages_out_total" in one.metrics.render()
    assert b'channel="x"' not in two.metrics.render()
