"""``Hub``: builds the parts from settings, starts them in order and stops them in reverse.

    async with Hub(settings) as hub:
        await hub.wait_stopped()

The only place that wires parts together.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from contextlib import AsyncExitStack
from typing import Any

from ._extension_host import ExtensionHost
from ._lifecycle import Lifecycle
from .agent import Agent, AgentServices, Closable
from .api_runs import HubRuns
from .auth import Auth
from .backoff import TENTH_LONGER, Backoff
from .bus import Bus
from .channel import Channel, ChannelContext, ConsoleChannel
from .commands import CommandRegistry
from .config import Settings, validate_section
from .errors import AutoHandsError, ChannelError, ConfigError, PluginError
from .extensions import ExtensionsConfig, load_entry_point
from .gateway import Gateway
from .memory.access import MemoryAccess
from .memory.commands import register_memory_commands
from .memory.open import open_memory
from .messages import Inbound
from .metrics import HubGauges, Metrics, metrics_handler
from .outbox import OutboxDispatcher
from .pairing import PairingService, pair_command, pairing_for
from .scheduler import Scheduler, SchedulerConfig, build_scheduler
from .sessions import SessionManager, register_session_commands
from .store import ScopedState, Store, StoreAPI, has_sql
from .tasks.commands import register_task_commands
from .tasks.http import mount_task_routes
from .tasks.pool import RunPool
from .tasks.service import TaskService

log = logging.getLogger(__name__)


CHANNEL_START = Backoff(first=1.0, cap=60.0, jitter=TENTH_LONGER)
"""Retries of a channel that could not reach its platform at start-up (network down, DNS not
ready at boot, a 5xx): 1 s doubling to 60 s, never before the platform's ``retry_after``."""


class Hub:
    def __init__(
        self,
        settings: Settings,
        *,
        store: StoreAPI | None = None,
        agent: Agent | None = None,
        channels: dict[str, Channel] | None = None,
        start_retry: Backoff = CHANNEL_START,
    ) -> None:
        """``store``, ``agent`` and ``channels`` inject prebuilt parts (tests, benchmarks,
        embedding); config builds the rest. The store defaults to the SQL store ``[store]``
        configures; a ``MemoryStore`` keeps nothing past the process, and a store without SQL
        (``has_sql``) means no scheduler. ``start_retry`` paces the retries of a channel that
        cannot reach its platform yet."""
        self.settings = settings
        self._agent_override = agent
        self._extra_channels = dict(channels or {})
        self.bus = Bus()
        self.commands = CommandRegistry()
        self.store: StoreAPI = store if store is not None else Store.from_settings(settings)
        self.agent: Agent | None = None
        self.channels: dict[str, Channel] = {}
        self.sessions: SessionManager | None = None
        self.outbox: OutboxDispatcher | None = None
        self.gateway: Gateway | None = None
        self.auth: Auth | None = None
        self.runs: HubRuns | None = None
        self.scheduler: Scheduler | None = None
        self.pairing: PairingService | None = None
        self.memory: MemoryAccess | None = None
        """What the agent remembers (``[memory]``); None when it is off."""
        self._tasks: TaskService | None = None
        self.metrics = Metrics()
        """The hub's Prometheus registry and counters (``GET /metrics``)."""
        self.start_retry = start_retry
        self._started_channels: set[str] = set()
        self._start_errors: dict[str, str] = {}
        self._start_retries: dict[str, asyncio.Task[None]] = {}
        self._stack: AsyncExitStack | None = None
        self._stopped = asyncio.Event()
        self._life = Lifecycle("Hub")

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Start the parts in dependency order; if one fails, stop those started, then re-raise.

        Raises:
            RuntimeError: started before (one life: docs/ARCHITECTURE.md, "Lifecycle").
        """
        with self._life.starting():
            stack = self._stack = AsyncExitStack()
            try:
                await self._start(stack)
            except BaseException:
                self._stack = None
                await stack.aclose()
                raise

    async def stop(self) -> None:
        """Stop the parts in reverse order. Does nothing unless running."""
        if not self._life.stopping():
            return
        stack, self._stack = self._stack, None
        try:
            if stack is not None:
                await stack.aclose()
        finally:
            self._stopped.set()

    async def __aenter__(self) -> Hub:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def request_stop(self) -> None:
        """Let ``wait_stopped`` return (signal handlers call it); ``stop`` does the stopping."""
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    async def _start(self, stack: AsyncExitStack) -> None:
        s = self.settings
        data_dir = s.data_dir
        # 1. the store: the database is the source of truth, everything else starts after it
        await self.store.start()
        stack.push_async_callback(self.store.stop)
        self.metrics.watch(self.bus, self._gauges())
        stack.callback(self.metrics.unwatch)

        # 2. commands: the session's own, then the scheduler's and the agent's (the agent's tools
        #    use the scheduler); channels are told the complete list
        register_session_commands(self.commands)
        register_task_commands(self.commands, lambda: self.tasks)
        self.pairing = pairing_for(self.store)
        self.commands.add(pair_command(self.pairing))
        # extensions from [extensions] paths, before the channels and tools that may come from them
        self.extensions = ExtensionHost(validate_section(ExtensionsConfig, s.extensions, "extensions"), data_dir)
        await self.extensions.start()
        stack.push_async_callback(self.extensions.stop)
        self.commands.add(self.extensions.command())
        self.memory = open_memory(s)  # opens its file or pool on first use
        if self.memory is not None:
            stack.push_async_callback(self.memory.close)
            register_memory_commands(self.commands, self.memory)
        self.scheduler = self._build_scheduler()
        self.agent = self._agent_override or self._build_agent()
        if isinstance(self.agent, Closable):
            stack.push_async_callback(self.agent.aclose)  # closes the model SDK clients

        # 3. channels are built (routes registered) before anything is published to them
        self.gateway = Gateway(s.server.host, s.server.port, health=self.health) if s.server.enabled else None
        self.auth = Auth(s.server, data_dir / "gateway.secret") if s.server.enabled else None
        self.runs = HubRuns(self.store, self.bus, s.providers)
        for name, section in s.enabled_channels().items():
            self.channels[name] = self._build_channel(name, section, data_dir)
        self.channels.update(self._extra_channels)

        # 4. delivery and sessions, then what a crash left behind
        self.outbox = OutboxDispatcher(self.store, self.bus, self.channels, s.outbox)
        await self.outbox.start()
        stack.push_async_callback(self.outbox.stop)
        pool = RunPool(s.sessions.max_concurrent_runs, s.tasks.max_background_runs)
        self.sessions = SessionManager(
            self.store, self.bus, self.agent, self.commands, s.sessions, observer=self.metrics, pool=pool
        )
        self.runs.attach(self.sessions)  # before resume: a resumed API request's run is seen
        stack.callback(self.runs.close)
        await self.sessions.start()
        stack.push_async_callback(self.sessions.stop)
        await self.outbox.resume()
        await self.sessions.resume()
        self._tasks = TaskService(self.store, self.agent, pool, self.sessions, s.tasks)
        await self._tasks.start()  # after the sessions' resume: a chat message's run goes first
        stack.push_async_callback(self._tasks.stop)

        # 5. the HTTP server (webhook routes must answer once platforms are told about them)
        if self.gateway is not None:
            self._mount_operator_routes(self.gateway)
            await self.gateway.start()
            stack.push_async_callback(self.gateway.stop)

        # 6. channels: inbound starts flowing. A platform that cannot be reached yet (a transient
        #    error) does not stop the hub: that channel is retried in the background while the
        #    others serve, and its replies wait in the outbox. A refusal (bad token) still ends
        #    the start with its one clear line.
        for name, channel in self.channels.items():
            stack.push_async_callback(self._stop_channel, name, channel)
            try:
                await self._start_channel(name, channel)
            except ChannelError as exc:
                if not exc.retryable:
                    raise
                self._retry_start_later(name, channel, exc)
        if self.scheduler is not None:
            await self.scheduler.start()
            stack.push_async_callback(self.scheduler.stop)

    async def _start_channel(self, name: str, channel: Channel) -> None:
        await channel.start(self.inbox)
        self._started_channels.add(name)
        self._start_errors.pop(name, None)
        assert self.outbox is not None
        self.outbox.open(name)
        log.info("channel %s started", name)

    def _retry_start_later(self, name: str, channel: Channel, error: ChannelError) -> None:
        self._start_errors[name] = str(error)
        delay = self.start_retry.delay(1, at_least=error.retry_after or 0.0)
        log.warning("channel %s could not start: %s; retrying in %.3gs (the rest of the hub runs)", name, error, delay)
        self._start_retries[name] = asyncio.create_task(self._keep_starting(name, channel, delay), name=f"start-{name}")

    async def _keep_starting(self, name: str, channel: Channel, delay: float) -> None:
        attempt = 1
        try:
            while True:
                await asyncio.sleep(delay)
                attempt += 1
                try:
                    await self._start_channel(name, channel)
                    return
                except Exception as exc:
                    known = isinstance(exc, AutoHandsError)
                    self._start_errors[name] = str(exc) if known else f"{type(exc).__name__}: {exc}"
                    if isinstance(exc, ChannelError) and exc.retryable:
                        delay = self.start_retry.delay(attempt, at_least=exc.retry_after or 0.0)
                        log.warning(
                            "channel %s could not start (attempt %d): %s; retrying in %.3gs", name, attempt, exc, delay
                        )
                        continue
                    # A refusal (bad token: a permanent ChannelError or a ConfigError) or an
                    # adapter bug (with its traceback): retrying would not change it.
                    log.error(
                        "channel %s cannot start: %s; it stays off until the hub is restarted",
                        name,
                        self._start_errors[name],
                        exc_info=None if known else exc,
                    )
                    return
        finally:
            self._start_retries.pop(name, None)

    async def _stop_channel(self, name: str, channel: Channel) -> None:
        retry = self._start_retries.pop(name, None)
        if retry is not None:
            retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retry
        if name not in self._started_channels:
            return
        self._started_channels.discard(name)
        try:
            await channel.stop()
        except Exception:
            log.exception("channel %s failed to stop cleanly", name)

    # ----------------------------------------------------------------- parts
    async def inbox(self, inbound: Inbound) -> bool:
        """Record durably, then publish. Returns False for a platform redelivery."""
        recorded = await self.store.record_inbound(inbound)
        if recorded is None:
            return False
        await self.bus.publish("inbound", recorded)
        return True

    def _mount_operator_routes(self, gateway: Gateway) -> None:
        """``/metrics`` and the dashboard (``hub.dashboard``), for admin principals."""
        from .dashboard import DashboardDeps, mount_dashboard

        assert self.auth is not None and self.sessions is not None
        gateway.add_route("GET", "/metrics", metrics_handler(self.metrics, self.auth, self.store))
        deps = DashboardDeps(
            auth=self.auth,
            server=self.settings.server,
            store=self.store,
            sessions=self.sessions,
            scheduler=self.scheduler,
            inbox=self.inbox,
            health=self.health,
            channels=self.channels,
            tasks=self.tasks,
            memory=self.memory,
        )
        mount_dashboard(gateway, deps)
        mount_task_routes(gateway, self.auth, self.tasks)

    def _gauges(self) -> HubGauges:
        """What a scrape reads of the running hub (parts built later are read when scraped)."""
        return HubGauges(
            queued_messages=lambda: sum(len(x.queue) for x in self.sessions.sessions.values()) if self.sessions else 0,
            active_runs=lambda: self.sessions.active_runs if self.sessions else 0,
            pending_questions=lambda: len(self.sessions.pending_questions()) if self.sessions else 0,
            outbox_queued=lambda: self.outbox.queued() if self.outbox else 0,
            outbox_given_up=lambda: self.outbox.failed if self.outbox else 0,
            channels=lambda: self.channels,
        )

    def _build_channel(self, name: str, section: dict[str, Any], data_dir: Any) -> Channel:
        kind = section.get("kind", name)
        cls = load_entry_point("autohands.channels", kind)
        body = {k: v for k, v in section.items() if k != "kind"}
        config = validate_section(cls.config_model, body, f"channels.{name}")
        context = ChannelContext(
            state=ScopedState(self.store, f"channel:{name}"),
            commands=self.commands.infos(),
            data_dir=data_dir,
            pairing=self.pairing,
            auth=self.auth,
            runs=self.runs,
        )
        channel: Channel = cls(name, config, context)
        for method, path, handler in context.routes:
            if self.gateway is None:
                raise ConfigError(f"channels.{name} needs the HTTP server for {path}; set [server] enabled = true")
            self.gateway.add_route(method, path, handler)
        return channel

    def _build_agent(self) -> Agent:
        s = self.settings
        runtime = str(s.agent.get("runtime", "llm"))
        factory = load_entry_point("autohands.agents", runtime)
        services = AgentServices(
            agent_config={k: v for k, v in s.agent.items() if k != "runtime"},
            providers_config=s.providers,
            tools_config=s.tools,
            commands=self.commands,
            data_dir=s.data_dir,
            scheduler=self.scheduler,
            protected_paths=s.protected_paths(),
            skills_config=s.skills,
            mcp_config=s.mcp,
            extensions=self.extensions,
            memory=self.memory,
        )
        agent: Agent = factory(services)
        return agent

    def _build_scheduler(self) -> Scheduler | None:
        """The scheduler, unless ``[scheduler] enabled = false`` or the store has no SQL tables
        for its jobs (``MemoryStore``)."""
        if not has_sql(self.store):
            return None
        config = validate_section(SchedulerConfig, self.settings.scheduler, "scheduler")
        return build_scheduler(config, self.store, self.bus, self.commands)

    @property
    def tasks(self) -> TaskService:
        """The task pool's service (``hub.tasks.Tasks``): submit, wait, control tasks.

        Raises:
            RuntimeError: the hub has not been started.
        """
        if self._tasks is None:
            raise RuntimeError("the hub has not been started: use `async with Hub(settings) as hub:`")
        return self._tasks

    @property
    def started_channels(self) -> frozenset[str]:
        return frozenset(self._started_channels)

    def health(self) -> dict[str, object]:
        expected = set(self.channels)
        started = self._started_channels & expected
        # why a channel is not started yet, or has stopped working (messages carry no secrets)
        errors = dict(self._start_errors)
        for name in started:
            if problem := self.channels[name].problem:
                errors[name] = str(problem)
        if self.outbox is not None:  # started, but its sends fail (platform or network outage)
            for name, problem in self.outbox.problems().items():
                errors.setdefault(name, problem)
        report: dict[str, object] = {
            "ok": started == expected and not errors and self._stack is not None,
            "channels": {n: n in started for n in sorted(expected)},
        }
        if errors:
            report["errors"] = dict(sorted(errors.items()))
        return report


GC_YOUNG_THRESHOLD = 10_000
"""Container allocations between young-generation collections (CPython's default is 700)."""


def tune_gc_for_serving() -> None:
    """Once the hub has started (``autohands run``; benchmarks call it the same way).

    Everything built so far lives as long as the hub: ``gc.freeze`` keeps it out of the cyclic
    GC's full collections, which otherwise scan every module object (long pauses under load:
    docs/ARCHITECTURE.md, "Store: measured").
    The young threshold goes up because with many runs in flight most young objects are alive
    (open requests, streams, sessions): at 700 they were scanned, promoted and scanned again in
    older generations, about a fifth of the CPU of 1,000 concurrent conversations (bench/agent.py).
    The hub's garbage is freed by reference counting; cycles wait a little longer, which costs
    a few MB at most. Process-wide, so the CLI calls it, not ``Hub``."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def print_web_address(hub: Hub) -> None:
    """``autohands run``: where the page a channel serves at ``/`` (the web chat) is, and, when
    keys are configured, a one-time sign-in link (``Auth.login_link_token``). Printed, never
    logged: the link signs a browser in."""
    gateway, auth = hub.gateway, hub.auth
    if gateway is None or auth is None or not any(r.canonical == "/" for r in gateway.app.router.resources()):
        return
    host = gateway.host if gateway.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    base = hub.settings.server.public_url.rstrip("/") or f"http://{host}:{gateway.bound_port}"
    print(f"Web chat: {base}/", flush=True)
    if not auth.open:
        link = f"{base}/login?token={auth.login_link_token()}"
        print(f"Sign in from your browser once with {link} (it works once, for 10 minutes)", flush=True)


async def run_until_signalled(hub_settings: Settings) -> None:
    """``autohands run``: start, wait for SIGINT/SIGTERM, stop cleanly."""
    import signal

    loop = asyncio.get_running_loop()
    hub = Hub(hub_settings)
    # Handlers first: a signal during start-up stops the hub as soon as it has started.
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, hub.request_stop)
    async with hub:
        tune_gc_for_serving()
        for channel in hub.channels.values():
            if isinstance(channel, ConsoleChannel):
                channel.begin()  # a terminal in `run` prompts at once: there is no banner to wait for
        print_web_address(hub)
        if not hub.channels:
            log.warning(
                "no channel is enabled: the hub serves HTTP only. Enable one in your config "
                "(e.g. [channels.telegram] enabled = true) or use 'autohands chat'."
            )
        waiting = sorted(set(hub.channels) - hub.started_channels)
        log.info(
            "AutoHands is running (%d of %d channel(s) started%s); press Ctrl+C to stop",
            len(hub.channels) - len(waiting),
            len(hub.channels),
            f", still trying: {', '.join(waiting)}" if waiting else "",
        )
        await hub.wait_stopped()
        log.info("stopping")


__all__ = ["CHANNEL_START", "Hub", "PluginError", "run_until_signalled", "tune_gc_for_serving"]
