"""``GET /metrics``: the hub's numbers in the Prometheus text format (``prometheus-client``).

The registry belongs to the hub (``Hub.metrics.registry``), never the library's global one, so
two hubs in one process (tests) keep their own numbers.

Cheap on the message path: the bus topics ``inbound`` and ``outbound`` are observed through a
subscription whose filter counts the item into a plain dict and returns False, so nothing is
ever queued for it (no task, no back-pressure: ``hub/bus.py`` calls a filter inline). The
session manager reports each agent run once as it ends (``hub.sessions.RunObserver``).
Everything else (queues, outbox, WebSocket clients) is read when Prometheus scrapes.

A channel with clients connected to it (the web chat's WebSockets) reports them with a
``clients: int`` property (``CountsClients``): the hub reads it at each scrape.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .agent import Usage
from .auth import Auth
from .bus import Bus, Subscription
from .channel import Handler
from .errors import StoreError
from .messages import Inbound, Outbound
from .store import StoreAPI, has_sql

log = logging.getLogger(__name__)

__all__ = ["CountsClients", "HubGauges", "Metrics", "metrics_handler"]

RUN_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
"""Seconds: an agent run takes from a tenth of a second (a command) to minutes (tools, approvals)."""
_Labels = TypeVar("_Labels", bound=tuple[str, ...])
FIRST_OUTPUT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


@runtime_checkable
class CountsClients(Protocol):
    """A channel that has clients connected to it (the web chat's WebSockets)."""

    @property
    def clients(self) -> int:
        """Clients connected now."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class HubGauges:
    """What the hub lets a scrape read (each call is cheap and synchronous)."""

    queued_messages: Callable[[], int]
    """Messages waiting in the sessions' queues."""
    active_runs: Callable[[], int]
    pending_questions: Callable[[], int]
    outbox_queued: Callable[[], int]
    """Replies the outbox dispatcher holds in memory, waiting to be sent."""
    outbox_given_up: Callable[[], int]
    """Replies marked failed since the hub started."""
    channels: Callable[[], Mapping[str, object]]


class Metrics:
    """The hub's metrics (see the module docstring)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages_in: Counter[tuple[str, str]] = Counter()
        """Inbounds published per (channel, kind); kind ``job`` counts scheduled job fires."""
        self.messages_out: Counter[str] = Counter()
        """Final replies published per channel (partials and typing are not counted)."""
        self.tokens: Counter[tuple[str, str, str]] = Counter()
        """Model tokens per (provider, model, kind: input, output, cache_read, cache_write)."""
        self.model_errors: Counter[tuple[str, str]] = Counter()
        """Runs a provider failed, per (provider, error class)."""
        self.outbox_rows: dict[str, int] = {}
        self.gauges: HubGauges | None = None
        self.run_seconds: dict[str, _Histogram] = {}
        """Agent runs per channel, from their start (after queueing) to their final reply."""
        self.first_output_seconds: dict[str, _Histogram] = {}
        """Per channel, from a run's start to the first text (or tool line) it showed."""
        self.registry.register(_HubCollector(self))
        self._subs: list[Subscription[object]] = []

    # ------------------------------------------------------------------ observing
    def watch(self, bus: Bus, gauges: HubGauges) -> None:
        """Count what passes on ``bus`` from now on; ``unwatch`` stops."""
        self.gauges = gauges
        self._subs = [
            bus.subscribe("inbound", filter=self._saw_inbound, maxsize=1),
            bus.subscribe("outbound", filter=self._saw_outbound, maxsize=1),
        ]

    def unwatch(self) -> None:
        for sub in self._subs:
            sub.close()
        self._subs = []

    def _saw_inbound(self, item: Inbound) -> bool:
        self.messages_in[(item.conversation.channel, item.kind)] += 1
        return False  # never queued: see the module docstring

    def _saw_outbound(self, item: Outbound) -> bool:
        if item.final and not item.typing:
            self.messages_out[item.conversation.channel] += 1
        return False

    def run_finished(
        self, channel: str, seconds: float, first_output: float | None, usage: Sequence[tuple[str, str, Usage]]
    ) -> None:
        """``hub.sessions.RunObserver``: one agent run ended."""
        runs = self.run_seconds.get(channel) or self.run_seconds.setdefault(channel, _Histogram(RUN_BUCKETS))
        runs.observe(seconds)
        if first_output is not None:
            first = self.first_output_seconds.get(channel)
            if first is None:
                first = self.first_output_seconds[channel] = _Histogram(FIRST_OUTPUT_BUCKETS)
            first.observe(first_output)
        for provider, model, u in usage:
            for kind, n in (
                ("input", u.input_tokens),
                ("output", u.output_tokens),
                ("cache_read", u.cache_read_tokens),
                ("cache_write", u.cache_write_tokens),
            ):
                if n:
                    self.tokens[(provider, model, kind)] += n

    def model_error(self, provider: str, error: str) -> None:
        """A run ended because its provider failed (``error``: the exception's class name)."""
        self.model_errors[(provider, error)] += 1

    async def refresh(self, store: StoreAPI) -> None:
        """Read what only the store knows (outbox rows per status) before a scrape."""
        if not has_sql(store):
            return
        from .store.reports import outbox_counts  # SQLAlchemy queries: only when scraped

        try:
            self.outbox_rows = await store.run_read(outbox_counts)
        except StoreError as exc:
            log.warning("could not count the outbox for /metrics: %s", exc)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Histogram:
    """A histogram without locks (the hub's metrics are written from its one event loop): a
    count per bucket, made cumulative when scraped. ``prometheus_client.Histogram`` takes a
    lock per bucket and per label lookup, several times the cost, on every run."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound (+Inf)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        total, out = 0, []
        for bound, n in zip((*map(floatToGoString, self.bounds), "+Inf"), self.counts, strict=True):
            total += n
            out.append((bound, float(total)))
        return out


def _histogram(name: str, doc: str, values: Mapping[str, _Histogram]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=["channel"])
    for channel, h in sorted(values.items()):
        family.add_metric([channel], h.buckets(), h.sum)
    return family


class _HubCollector(Collector):
    """The counters kept in plain dicts, and the gauges read at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._m
        yield _counter(
            "autohands_messages_in", "Inbounds recorded, per channel and kind.", ["channel", "kind"], m.messages_in
        )
        yield _counter(
            "autohands_messages_out",
            "Final replies, per channel.",
            ["channel"],
            {(k,): v for k, v in m.messages_out.items()},
        )
        yield _histogram(
            "autohands_run_duration_seconds",
            "Agent runs, from their start (after queueing) to their final reply.",
            m.run_seconds,
        )
        yield _histogram(
            "autohands_time_to_first_token_seconds",
            "From a run's start to the first text (or tool line) it showed.",
            m.first_output_seconds,
        )
        jobs = sum(n for (_, kind), n in m.messages_in.items() if kind == "job")
        yield CounterMetricFamily("autohands_job_fires", "Scheduled job fires.", value=jobs)
        yield _counter(
            "autohands_model_tokens",
            "Model tokens, per provider, model and kind.",
            ["provider", "model", "kind"],
            m.tokens,
        )
        yield _counter(
            "autohands_model_errors",
            "Runs a provider failed, per provider and error.",
            ["provider", "error"],
            m.model_errors,
        )
        outbox = GaugeMetricFamily(
            "autohands_outbox_rows", "Outbox rows per status (read at scrape).", labels=["status"]
        )
        for status in ("pending", "failed"):
            outbox.add_metric([status], m.outbox_rows.get(status, 0))
        yield outbox
        if m.gauges is not None:
            yield from _gauges(m.gauges)


def _counter(name: str, doc: str, labels: list[str], values: Mapping[_Labels, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, n in sorted(values.items()):
        family.add_metric(list(key), n)
    return family


def _gauges(g: HubGauges) -> Iterator[Metric]:
    for name, doc, read in (
        ("autohands_queued_messages", "Messages waiting in the sessions' queues.", g.queued_messages),
        ("autohands_active_runs", "Agent runs in progress.", g.active_runs),
        ("autohands_pending_questions", "Questions (approvals) runs wait on.", g.pending_questions),
        ("autohands_outbox_queued", "Replies the outbox holds in memory, waiting to be sent.", g.outbox_queued),
    ):
        yield GaugeMetricFamily(name, doc, value=read())
    yield CounterMetricFamily(
        "autohands_outbox_failed", "Replies marked failed since the start.", value=g.outbox_given_up()
    )
    clients = GaugeMetricFamily("autohands_websocket_clients", "Clients connected, per channel.", labels=["channel"])
    for name, channel in sorted(g.channels().items()):
        if isinstance(channel, CountsClients) and isinstance(n := channel.clients, int):
            clients.add_metric([name], n)
    yield clients


def metrics_handler(metrics: Metrics, auth: Auth, store: StoreAPI) -> Handler:
    """``GET /metrics``: for an admin key (Prometheus' ``authorization`` credentials) or, on an
    open (keyless, loopback-only) server, for anyone on this machine."""

    async def handle(request: web.Request) -> web.StreamResponse:
        who = auth.principal(request)
        if who is None:
            return web.Response(status=401, text="401: an admin key is required\n")
        if not who.admin:
            return web.Response(status=403, text="403: /metrics needs an admin key\n")
        await metrics.refresh(store)
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return handle
