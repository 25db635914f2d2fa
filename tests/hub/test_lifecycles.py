"""One lifecycle rule for every part the hub owns (``hub/_lifecycle.py``; docs/ARCHITECTURE.md,
"Lifecycle"), checked the way PTB checks its ``Application`` (tests/ext/test_application.py):
start twice, stop before start, stop twice, start after stop, and a start that fails inside
``__aenter__``, which must undo what it did before re-raising."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Protocol

import pytest

from hub.agent import Closable
from hub.app import Hub
from hub.bus import Bus, Subscription
from hub.channel import Inbox
from hub.commands import CommandRegistry
from hub.config import Settings, load_settings
from hub.default_agent import EchoAgent
from hub.errors import ChannelError, ConfigError, HubLockedError
from hub.gateway import Gateway
from hub.messages import ConversationRef, Inbound, Sender
from hub.outbox import OutboxDispatcher
from hub.scheduler import Scheduler, service as scheduler_service
from hub.sessions import SessionManager
from hub.store import MemoryStore, Store
from tests.hub.conftest import RecordingChannel

CONV = ConversationRef(channel="rec", chat="c1")


class Part(Protocol):
    async def start(self) -> object: ...
    async def stop(self) -> None: ...
    async def __aenter__(self) -> Any: ...
    async def __aexit__(self, *exc: object) -> None: ...


def hub_settings(tmp_path: Path, **server: Any) -> Settings:
    return load_settings(
        environ={},
        overrides={
            "hub": {"data_dir": str(tmp_path / "data")},
            "server": {"enabled": False, **server},
            "agent": {"runtime": "none"},
        },
    )


def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db.sqlite'}"


async def build(kind: str, tmp_path: Path, deps: AsyncExitStack, bus: Bus | None = None) -> Part:
    """A new part of ``kind``; what it needs runs in ``deps``."""
    bus = bus or Bus()
    if kind == "hub":
        return Hub(hub_settings(tmp_path), channels={"rec": RecordingChannel()})
    if kind == "store":
        return Store(db_url(tmp_path))
    if kind == "memory-store":
        return MemoryStore()
    if kind == "sessions":
        return SessionManager(MemoryStore(), bus, EchoAgent(), CommandRegistry())
    if kind == "outbox":
        return OutboxDispatcher(MemoryStore(), bus, {})
    if kind == "gateway":
        return Gateway("127.0.0.1", 0, health=lambda: {"ok": True})
    if kind == "scheduler":
        return Scheduler(await deps.enter_async_context(Store(db_url(tmp_path))), bus)
    if kind == "extension-host":
        from hub._extension_host import ExtensionHost
        from hub.extensions import ExtensionsConfig

        host: Any = ExtensionHost(ExtensionsConfig(), tmp_path)
        return host
    raise AssertionError(kind)


PARTS = ["hub", "store", "memory-store", "sessions", "outbox", "gateway", "scheduler", "extension-host"]


@pytest.fixture(params=PARTS)
async def part(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Part]:
    async with AsyncExitStack() as deps:
        made = await build(request.param, tmp_path, deps)
        deps.push_async_callback(made.stop)  # a test that fails half-way leaves nothing running
        yield made


def our_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


# ---------------------------------------------------------------------- the shared shape
async def test_start_twice_raises(part: Part) -> None:
    await part.start()
    with pytest.raises(RuntimeError, match="already started"):
        await part.start()
    await part.stop()


async def test_stop_before_start_does_nothing_and_the_part_still_starts(part: Part) -> None:
    await part.stop()
    async with part:
        pass


async def test_stop_twice_does_nothing(part: Part) -> None:
    await part.start()
    await part.stop()
    await part.stop()


async def test_a_stopped_part_does_not_start_again(part: Part) -> None:
    async with part as entered:
        assert entered is part
    with pytest.raises(RuntimeError, match="cannot start again; build a new one"):
        await part.start()


async def test_stop_leaves_no_task_behind(part: Part) -> None:
    before = our_tasks()
    async with part:
        await asyncio.sleep(0)
    assert our_tasks() <= before


async def test_a_store_not_running_is_a_clear_error(tmp_path: Path) -> None:
    store = Store(db_url(tmp_path))
    for when in ("before start", "after stop"):
        with pytest.raises(RuntimeError, match="Store is not running"):
            await store.record_inbound(Inbound(kind="message", conversation=CONV, sender=Sender(id="u")))
        with pytest.raises(RuntimeError, match="Store is not running"):
            await store.run_read(lambda c: None)
        if when == "before start":
            async with store:
                assert await store.run_read(lambda c: 1) == 1


# ---------------------------------------------------------------------- failures inside start
class ChannelThatCannotStart(RecordingChannel):
    async def start(self, inbox: Inbox) -> None:
        raise ChannelError("rejected token", retryable=False)


async def test_hub_a_channel_whose_start_raises_stops_what_had_started(tmp_path: Path, closed_port: int) -> None:
    settings = hub_settings(tmp_path, enabled=True, port=closed_port)
    first, broken = RecordingChannel("first"), ChannelThatCannotStart("broken")
    hub = Hub(settings, channels={"first": first, "broken": broken})
    before = our_tasks()
    with pytest.raises(ChannelError, match="rejected token"):
        async with hub:
            raise AssertionError("the hub started")
    assert first.started is False  # started before the broken one, stopped again
    assert our_tasks() <= before
    assert not [t for t in threading.enumerate() if t.name.startswith("store-")]
    with socket.socket() as sock:  # the HTTP server let go of its port
        sock.bind(("127.0.0.1", closed_port))
    await hub.stop()  # nothing to stop
    async with Hub(settings, channels={"first": RecordingChannel("first")}) as again:  # the database lock was released
        assert again.health()["ok"] is True


async def test_store_a_failed_start_closes_what_it_opened(tmp_path: Path) -> None:
    async with Store(db_url(tmp_path)):
        second = Store(db_url(tmp_path))
        with pytest.raises(HubLockedError):
            async with second:
                raise AssertionError("two stores on one database")
        assert [t.name for t in threading.enumerate() if t.name.startswith("store-")] == ["store-writer_0"]
        await second.stop()  # nothing to stop
    async with second:  # as new: it starts once the first has stopped
        assert await second.state_get("k") is None


async def test_gateway_a_port_in_use_is_a_config_error_and_nothing_listens(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        gateway = Gateway("127.0.0.1", port, health=lambda: {"ok": True})
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            async with gateway:
                raise AssertionError("two servers on one port")
    assert gateway.bound_port is None
    await gateway.stop()  # nothing to stop


async def test_scheduler_a_failed_start_stops_the_timer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    timers: list[Any] = []

    class TimerThatFailsAfterStarting(scheduler_service.AsyncIOScheduler):  # type: ignore[misc]
        def start(self, *args: Any, **kwargs: Any) -> None:
            timers.append(self)
            super().start(*args, **kwargs)
            raise RuntimeError("boom")

    async with Store(db_url(tmp_path)) as store:
        scheduler = Scheduler(store, Bus())
        with monkeypatch.context() as patch:
            patch.setattr(scheduler_service, "AsyncIOScheduler", TimerThatFailsAfterStarting)
            with pytest.raises(RuntimeError, match="boom"):
                async with scheduler:
                    raise AssertionError("the scheduler started")
        await asyncio.sleep(0)  # APScheduler's asyncio shutdown runs on the loop's next round
        assert len(timers) == 1 and not timers[0].running
        await scheduler.stop()  # nothing to stop
        async with scheduler:  # as new: it starts
            pass


class BusThatFailsOnce(Bus):
    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    def subscribe(self, topic: str, **kw: Any) -> Subscription[Any]:
        if not self.failed:
            self.failed = True
            raise RuntimeError("bus unavailable")
        return super().subscribe(topic, **kw)


@pytest.mark.parametrize("kind", ["sessions", "outbox"])
async def test_a_failed_start_leaves_the_consumer_new(kind: str, tmp_path: Path) -> None:
    bus = BusThatFailsOnce()
    async with AsyncExitStack() as deps:
        made = await build(kind, tmp_path, deps, bus)
        before = our_tasks()
        with pytest.raises(RuntimeError, match="bus unavailable"):
            async with made:
                raise AssertionError("started")
        assert our_tasks() <= before
        await made.stop()  # nothing to stop
        async with made:  # as new: it starts
            topic = "inbound" if kind == "sessions" else "outbound"
            assert bus.subscribers(topic) == 1
        assert bus.subscribers(topic) == 0


class ClosingEchoAgent(EchoAgent):
    """An agent with something to release (as the LLM agent's SDK clients): it is ``Closable``."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


async def test_the_hub_closes_an_agent_that_declares_it_is_closable(tmp_path: Path) -> None:
    agent = ClosingEchoAgent()
    assert isinstance(agent, Closable) and not isinstance(EchoAgent(), Closable)
    async with Hub(hub_settings(tmp_path), store=MemoryStore(), agent=agent, channels={}):
        assert not agent.closed
    assert agent.closed
