"""Channel throughput and latency end to end: the platform fake's inject → the real SDK → the
adapter → the hub (store, bus, session, instant echo agent, outbox) → the adapter → the SDK →
the fake's record of the bot's send (``sendMessage`` / ``chat.postMessage`` / channel message
create), for Telegram, Slack and Discord, with 1 and 100 chats.

    python bench/channels.py [--platforms telegram,slack,discord] [--chats 1,100]
                             [--modes limited,relaxed,idle] [--synchronous FULL] [--cores 0]

Three kinds of case:

* ``limited``: the adapters' ``rate_limits`` as shipped (``RateLimits.telegram()`` etc.: Telegram
  1 msg/s per chat, 30/s per bot; Slack 1/s per channel; Discord 1/s per channel, 50/s per
  bot). These numbers are the platforms' limits, by design.
* ``relaxed``: the same path with no outbound limiter, i.e. what the hub + adapter + SDK can do.
  The bench turns every level of the channel's ``rate_limits`` off in its config section
  (``NO_LIMITS``); nothing else on the path changes.
* ``idle``: 1 chat, limiter relaxed, one message at a time (the next is injected once the
  previous answer was sent): the path's latency without any queueing.

In ``limited`` and ``relaxed`` every message of a case is injected at once (a burst spread
round-robin over the chats), so the latencies include queueing behind the limiter; msgs/s is
messages / (last send - first inject).
The fakes run in the same process and event loop as the hub, so their cost is included: the
figures are lower bounds for the hub alone. The store is SQLite (WAL, synchronous=FULL).

Prints a table, then one JSON line of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Import from the repo root, not bench/ (as a script, bench/ is sys.path[0]: bench/telegram.py
# would shadow the python-telegram-bot package).
sys.path[0] = str(Path(__file__).resolve().parents[1])

from aiohttp import web
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bench._common import emit, latency_figures, peak_rss_mb
from channels.slack import EVENTS_PATH
from hub.app import Hub
from hub.config import load_settings
from tests.fakes.discord import FakeDiscord, Json
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram, _Params

PLATFORMS = ("telegram", "slack", "discord")
MODES = ("limited", "relaxed", "idle")
PREFIX = "echo: "


# ---------------------------------------------------------------------- timing
@dataclass
class Timing:
    """Inject times by message text; a send of ``echo: <text>`` closes the measurement."""

    expected: int
    started: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    first: float = 0.0
    last: float = 0.0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    """Set by every measured send (the closed loop of ``idle`` waits on it)."""

    def injected(self, key: str) -> None:
        now = time.perf_counter()
        self.started[key] = now
        self.first = self.first or now

    def sent(self, text: str) -> None:
        t0 = self.started.pop(text.removeprefix(PREFIX), None)
        if t0 is None:
            return
        self.last = time.perf_counter()
        self.latencies.append(self.last - t0)
        self.answered.set()
        if len(self.latencies) >= self.expected:
            self.done.set()


# The fakes record sends in lists without timestamps; these subclasses stamp them as they are
# recorded (the moment the platform would have accepted the bot's message).
class TimedTelegram(FakeTelegram):
    def __init__(self, timing: Timing) -> None:
        super().__init__()
        self.timing = timing

    async def _api_sendmessage(self, p: _Params) -> Any:
        result = await super()._api_sendmessage(p)
        self.timing.sent(p.string("text") or "")
        return result


class TimedSlack(FakeSlack):
    def __init__(self, timing: Timing) -> None:
        super().__init__()
        self.timing = timing

    def _post_message(self, body: dict[str, Any]) -> web.Response:
        response = super()._post_message(body)
        if response.status == 200:
            self.timing.sent(str(body.get("text") or ""))
        return response


class TimedDiscord(FakeDiscord):
    def __init__(self, timing: Timing) -> None:
        super().__init__(heartbeat_interval_ms=5000)
        self.timing = timing

    def _new_message(self, cid: str, author: Json, content: str, **kwargs: Any) -> Json:
        msg = super()._new_message(cid, author, content, **kwargs)
        if author["id"] == self.bot["id"]:
            self.timing.sent(content)
        return msg

    def add_channels(self, count: int) -> list[str]:
        """Text channels in the guild besides ``general`` (before the bot connects)."""
        template = self.channels[self.general_id]
        ids = []
        for i in range(count):
            cid = self.snowflake()
            self.channels[cid] = {**template, "id": cid, "name": f"bench-{i}", "position": i + 1}
            self.messages[cid] = []
            ids.append(cid)
        return ids


# ---------------------------------------------------------------------- one case
@dataclass(frozen=True)
class Case:
    platform: str
    chats: int
    mode: str
    messages: int


NO_LIMITS: dict[str, Any] = {"rate_limits": {"per_chat": None, "per_group": None, "per_bot": None}}
"""``[channels.<name>]`` keys that turn every level of the adapter's send buckets off."""


def limits(case: Case) -> dict[str, Any]:
    """The section keys for the case's limiter: the platform's own (``limited``), else none."""
    return {} if case.mode == "limited" else NO_LIMITS


SYNCHRONOUS = {"value": "FULL"}  # set once from --synchronous before any case runs


def settings_for(data_dir: Path, channel: str, section: dict[str, Any]) -> Any:
    return load_settings(
        environ={},
        overrides={
            "hub": {"data_dir": str(data_dir)},
            "store": {"synchronous": SYNCHRONOUS["value"]},
            "server": {"enabled": True, "host": "127.0.0.1", "port": 0},
            "agent": {"runtime": "echo"},
            "sessions": {"max_concurrent_runs": 1000},
            "channels": {channel: section},
        },
    )


async def _burst(case: Case, timing: Timing, send: Callable[[int, str], Awaitable[None]], concurrency: int) -> None:
    if case.mode == "idle":
        # Closed loop: the next message is injected once the previous answer was sent, so the
        # latency is the path's own, without queueing.
        for i in range(case.messages):
            timing.answered.clear()
            timing.injected(f"b{i}")
            await send(0, f"b{i}")
            await asyncio.wait_for(timing.answered.wait(), 30)
        return
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            key = f"b{i}"
            timing.injected(key)
            await send(i % case.chats, key)

    await asyncio.gather(*(one(i) for i in range(case.messages)))


async def run_telegram(case: Case, timing: Timing, data_dir: Path) -> None:
    async with TimedTelegram(timing) as fake:
        section = {
            "enabled": True,
            "token": fake.token,
            "base_url": fake.base_url,
            "base_file_url": fake.base_file_url,
            "poll_timeout": 10,
            "allow_all": True,
            **limits(case),
        }
        async with Hub(settings_for(data_dir, "telegram", section)):

            async def send(chat: int, key: str) -> None:
                fake.inject_message(chat_id=10_000 + chat, text=key)  # private chats

            await _burst(case, timing, send, concurrency=case.messages)
            await _wait(timing, case)


async def run_slack(case: Case, timing: Timing, data_dir: Path) -> None:
    async with TimedSlack(timing) as fake:
        section = {
            "enabled": True,
            "bot_token": fake.bot_token,
            "signing_secret": fake.signing_secret,
            "api_url": fake.api_url,
            "allow_all": True,
            **limits(case),
        }
        async with Hub(settings_for(data_dir, "slack", section)) as hub:
            assert hub.gateway is not None
            url = f"http://127.0.0.1:{hub.gateway.bound_port}{EVENTS_PATH}"

            async def send(chat: int, key: str) -> None:
                # A DM (message.im): answered in the DM; Slack's HTTP request is the "inject".
                resp = await fake.send_event(url, fake.message_event(key, channel=f"D{chat:04d}", user=f"U{chat:04d}"))
                if resp.status != 200:
                    raise RuntimeError(f"slack event answered {resp.status}")

            # Slack posts events concurrently; aiohttp's default pool allows 100 connections.
            await _burst(case, timing, send, concurrency=100)
            await _wait(timing, case)


async def run_discord(case: Case, timing: Timing, data_dir: Path) -> None:
    # point_sdk_at sets discord.py's process-global URLs; put them back so the next case's
    # fake (another port) is not reported as a change of endpoint.
    saved = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    try:
        await _run_discord(case, timing, data_dir)
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


async def _run_discord(case: Case, timing: Timing, data_dir: Path) -> None:
    fake = TimedDiscord(timing)
    async with fake:
        channels = [fake.general_id, *fake.add_channels(case.chats - 1)]
        section = {
            "enabled": True,
            "token": fake.token,
            "api_base": fake.api_base,
            "gateway_url": fake.gateway_url,
            "identify_delay_seconds": 0,
            "guild_ready_timeout_seconds": 0.05,
            "liveness_timeout_seconds": 120,
            "allow_all": True,
            **limits(case),
        }
        async with Hub(settings_for(data_dir, "discord", section)):

            async def send(chat: int, key: str) -> None:
                await fake.user_message(channels[chat], fake.alice, key, mention=True)

            await _burst(case, timing, send, concurrency=1)  # one gateway socket: in order
            await _wait(timing, case)


async def _wait(timing: Timing, case: Case) -> None:
    # Bounded: a case that cannot finish reports what it measured rather than hanging.
    limit = 60.0 + case.messages * (1.2 if case.mode == "limited" and case.chats == 1 else 0.1)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(timing.done.wait(), limit)


RUNNERS = {"telegram": run_telegram, "slack": run_slack, "discord": run_discord}


def run_case(case: Case) -> dict[str, Any]:
    timing = Timing(expected=case.messages)
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(RUNNERS[case.platform](case, timing, Path(tmp)))
    answered = len(timing.latencies)
    elapsed = max(1e-9, timing.last - timing.first)
    return {
        "messages": case.messages,
        "answered": answered,
        "msgs_per_s": round(answered / elapsed, 1) if answered else 0.0,
        **latency_figures("", timing.latencies),
    }


# ---------------------------------------------------------------------- main
def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _names(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    names = [x.strip() for x in text.split(",") if x.strip()]
    bad = [n for n in names if n not in allowed]
    if bad:
        raise SystemExit(f"bench/channels.py: unknown {what} {', '.join(bad)} (choose from {', '.join(allowed)})")
    return names


DEFAULT_MESSAGES = {"limited": {1: 10, 100: 400}, "relaxed": {1: 300, 100: 1500}}
"""Messages per case by chat count when ``--limited-messages`` / ``--relaxed-messages`` is not given."""


def _counts(mode: str, given: str | None, chats: list[int]) -> list[int]:
    """Messages per ``--chats`` entry for ``mode``: as given, else ``DEFAULT_MESSAGES``."""
    if given is not None:
        counts = _ints(given)
        if len(counts) != len(chats):
            raise SystemExit(f"bench/channels.py: --{mode}-messages needs one count per --chats entry")
        return counts
    defaults = DEFAULT_MESSAGES[mode]
    if missing := [c for c in chats if c not in defaults]:
        raise SystemExit(
            f"bench/channels.py: no default --{mode}-messages for {missing} chat(s); give one count per --chats entry"
        )
    return [defaults[c] for c in chats]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--platforms", default=",".join(PLATFORMS))
    p.add_argument("--chats", default="1,100", help="chat counts, comma-separated")
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument(
        "--limited-messages",
        help="messages per case with the platform limits, one per --chats entry (default: DEFAULT_MESSAGES)",
    )
    p.add_argument(
        "--relaxed-messages",
        help="messages per case with the limiter relaxed, one per --chats entry (default: DEFAULT_MESSAGES)",
    )
    p.add_argument(
        "--idle-messages",
        type=int,
        default=30,
        help="messages of the idle case (1 chat, one at a time, limiter relaxed)",
    )
    p.add_argument(
        "--synchronous",
        default="FULL",
        choices=["OFF", "NORMAL", "FULL"],
        help="SQLite synchronous mode of the hub's store (FULL is the shipped default)",
    )
    p.add_argument("--cores", type=int, default=0, help="pin the process to this many cores (0: no pinning)")
    args = p.parse_args()
    SYNCHRONOUS["value"] = args.synchronous
    platforms = _names(args.platforms, PLATFORMS, "platform")
    modes = _names(args.modes, MODES, "mode")
    chats = _ints(args.chats)
    given = {"limited": args.limited_messages, "relaxed": args.relaxed_messages}
    counts = {mode: _counts(mode, given[mode], chats) for mode in modes if mode != "idle"}
    if args.cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: args.cores]))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("discord.client").setLevel(logging.ERROR)  # "PyNaCl is not installed" (voice)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    with contextlib.suppress(ImportError):
        from telegram.warnings import PTBDeprecationWarning

        warnings.filterwarnings("ignore", category=PTBDeprecationWarning)

    figures: dict[str, Any] = {
        "cores": args.cores or os.cpu_count() or 0,
        "agent": "echo",
        "store": f"sqlite synchronous={args.synchronous}",
    }
    header = (
        f"{'platform':<9} {'chats':>5} {'limits':<8} {'msgs':>5} {'answered':>8} {'msg/s':>8} "
        f"{'p50 ms':>9} {'p99 ms':>9}"
    )
    print(header)
    print("-" * len(header))
    started = time.perf_counter()
    for platform in platforms:
        for mode in modes:
            sizes = [(1, args.idle_messages)] if mode == "idle" else zip(chats, counts[mode], strict=True)
            for n_chats, messages in sizes:
                case = Case(platform, n_chats, mode, messages)
                r = run_case(case)
                print(
                    f"{platform:<9} {n_chats:>5} {mode:<8} {messages:>5} {r['answered']:>8} "
                    f"{r['msgs_per_s']:>8.1f} {r['p50_ms']:>9.1f} {r['p99_ms']:>9.1f}",
                    flush=True,
                )
                prefix = f"{platform}_{n_chats}chat_{mode}_"
                figures.update({prefix + k: v for k, v in r.items()})
    figures["wall_s"] = round(time.perf_counter() - started, 1)
    figures["peak_rss_mb"] = peak_rss_mb()
    emit(figures)


if __name__ == "__main__":
    main()
