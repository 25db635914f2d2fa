"""Soak: a hub killed at random and cut off from its platform still answers every message once.

    python bench/soak.py [--messages 5000] [--chats 100] [--rate 12] [--kills 20]
                         [--outage 150] [--latency 1.0] [--drain 600]

The hub runs as ``autohands run`` in a subprocess, with python-telegram-bot against the fake
Bot API (``tests/fakes/telegram.py``) and the LLM runtime against the fake OpenAI server,
whose every answer takes ``--latency`` seconds. This process injects ``--messages`` messages,
round-robin over ``--chats`` private chats at ``--rate`` a second, SIGKILLs the hub
``--kills`` times at random moments of the injection (and starts it again at once), and takes
the whole Bot API down for ``--outage`` seconds in the middle (every method answers 502: the
hub can neither read nor send) — longer than the outbox's old give-up time of about two
minutes. Then it waits until every message has its answer or nothing has moved for a minute.

Each message carries a unique token, and the fake model echoes it back, so every reply is
attributed to the message it answers. Printed: messages sent, answered, lost (no reply),
duplicated (more than one reply) — and how many of those fall in the send-to-record window
(the first copy reached the platform less than a second before a kill, so the hub could not
have recorded the platform's acknowledgement) — quarantined (set aside as failing), apologies
(answered with an error text), restarts, and the time it took. The last line is one JSON
object of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import signal
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench._common import emit
from hub.sessions import SET_ASIDE_TEXT
from tests.fakes.llm_script import LLMScript
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram import FakeTelegram

ROOT = Path(__file__).resolve().parents[1]
TOKEN = re.compile(r"soak-\d+-\d+")
FIRST_CHAT = 5_000_000
SEND_TO_RECORD_SECONDS = 1.0
SET_ASIDE = SET_ASIDE_TEXT.split(":")[0]
OUTAGE_METHODS = (
    "getUpdates",
    "sendMessage",
    "editMessageText",
    "sendChatAction",
    "getMe",
    "deleteWebhook",
    "setMyCommands",
    "answerCallbackQuery",
)


@dataclass
class Hub:
    """The hub subprocess: started, killed and started again."""

    config: Path
    log: Path
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    kills: list[float] = field(default_factory=list)

    async def start(self) -> None:
        env = {**os.environ, "OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": ""}
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "hub.cli",
                "run",
                "--config",
                str(self.config),
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=log,
                stdin=asyncio.subprocess.DEVNULL,
            )

    async def kill_and_restart(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.kills.append(time.monotonic())
        await self.proc.wait()
        self.restarts += 1
        await self.start()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(30):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


def write_config(data: Path, telegram: FakeTelegram, llm: FakeOpenAI, chats: int) -> Path:
    allow = ", ".join(f'"{FIRST_CHAT + i}"' for i in range(chats))
    config = data / "config.toml"
    config.write_text(f"""
[hub]
data_dir = "{data}"
[server]
enabled = false
[log]
level = "WARNING"
[agent]
provider = "fake"
stream = false
[providers.fake]
kind = "openai"
base_url = "{llm.base_url}"
api_key = "sk-soak"
model = "soak-model"
[tools]
enabled = ["math", "time"]
[channels.telegram]
enabled = true
token = "{telegram.token}"
base_url = "{telegram.base_url}"
base_file_url = "{telegram.base_file_url}"
poll_timeout = 2
allow_users = [{allow}]
""")
    return config


@dataclass
class Watch:
    """When each bot message reached the fake platform (polled; accurate to the poll period)."""

    telegram: FakeTelegram
    seen: int = 0
    at: list[float] = field(default_factory=list)

    async def run(self) -> None:
        while True:
            now = time.monotonic()
            while self.seen < len(self.telegram.sent):
                self.at.append(now)
                self.seen += 1
            await asyncio.sleep(0.05)


def tally(telegram: FakeTelegram, watch: Watch, sent: list[str], kills: list[float]) -> dict[str, int]:
    replies: dict[str, list[float]] = defaultdict(list)
    quarantined = apologies = 0
    for i, message in enumerate(telegram.sent):
        tokens = TOKEN.findall(message.text)
        if SET_ASIDE in message.text:
            quarantined += 1
        elif "Sorry" in message.text:
            apologies += 1
        if tokens:
            replies[tokens[-1]].append(watch.at[i] if i < len(watch.at) else time.monotonic())
    duplicated = [t for t in sent if len(replies[t]) > 1]
    in_window = sum(
        1
        for t in duplicated
        if any(0 <= k - replies[t][0] <= SEND_TO_RECORD_SECONDS + 0.1 and k <= replies[t][1] for k in kills)
    )
    return {
        "messages_sent": len(sent),
        "answered": sum(1 for t in sent if replies[t]),
        "lost": sum(1 for t in sent if not replies[t]),
        "duplicated": len(duplicated),
        "duplicated_in_send_to_record_window": in_window,
        "quarantined": quarantined,
        "apologies": apologies,
    }


async def inject(telegram: FakeTelegram, args: argparse.Namespace, sent: list[str]) -> None:
    per_chat = [0] * args.chats
    start = time.monotonic()
    for n in range(args.messages):
        chat = n % args.chats
        per_chat[chat] += 1
        token = f"soak-{chat}-{per_chat[chat]}"
        telegram.inject_message(chat_id=FIRST_CHAT + chat, text=f"please repeat {token}")
        sent.append(token)
        delay = start + (n + 1) / args.rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


async def kill_at_random(hub: Hub, moments: list[float]) -> None:
    start = time.monotonic()
    for moment in sorted(moments):
        await asyncio.sleep(max(0.0, start + moment - time.monotonic()))
        await hub.kill_and_restart()


async def outage(telegram: FakeTelegram, begin: float, seconds: float) -> None:
    await asyncio.sleep(begin)
    print(f"outage: the Bot API is down for {seconds:g} s", flush=True)
    telegram.outage(*OUTAGE_METHODS, kind="server_error")
    await asyncio.sleep(seconds)
    telegram.end_outage()
    print("outage over", flush=True)


async def drain(telegram: FakeTelegram, sent: list[str], limit: float, quiet: float = 60.0) -> None:
    """Until every token has a reply, nothing has moved for ``quiet`` seconds, or ``limit``."""
    deadline = time.monotonic() + limit
    last_count, last_move = -1, time.monotonic()
    while time.monotonic() < deadline:
        answered = {tokens[-1] for m in telegram.sent if (tokens := TOKEN.findall(m.text))}
        if len(answered) >= len(sent):
            return
        if len(telegram.sent) != last_count:
            last_count, last_move = len(telegram.sent), time.monotonic()
        elif time.monotonic() - last_move > quiet:
            return
        await asyncio.sleep(0.5)


async def soak(args: argparse.Namespace) -> dict[str, int | float]:
    rng = random.Random(args.seed)
    injection = args.messages / args.rate
    moments = [rng.uniform(0.05, 0.95) * injection for _ in range(args.kills)]
    script = LLMScript(default="echo", latency=args.latency)
    sent: list[str] = []
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="autohands-soak-") as tmp:
        async with FakeTelegram() as telegram, FakeOpenAI(script) as llm:
            hub = Hub(write_config(Path(tmp), telegram, llm, args.chats), Path(tmp) / "hub.log")
            watch = Watch(telegram)
            watcher = asyncio.create_task(watch.run())
            await hub.start()
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(inject(telegram, args, sent))
                    tg.create_task(kill_at_random(hub, moments))
                    if args.outage > 0:
                        tg.create_task(outage(telegram, injection * 0.4, args.outage))
                print(f"injected {len(sent)} messages, {hub.restarts} kills; draining", flush=True)
                await drain(telegram, sent, args.drain)
            finally:
                await hub.stop()
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            figures: dict[str, int | float] = dict(tally(telegram, watch, sent, hub.kills))
            if figures["lost"] and args.show_log:
                print((Path(tmp) / "hub.log").read_text()[-4000:])
    figures.update(
        restarts=hub.restarts,
        outage_s=args.outage,
        model_latency_s=args.latency,
        wall_s=round(time.monotonic() - began, 1),
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--chats", type=int, default=100)
    parser.add_argument("--rate", type=float, default=12.0, help="messages injected per second")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--outage", type=float, default=150.0, help="seconds the Bot API is down (0: none)")
    parser.add_argument("--latency", type=float, default=1.0, help="seconds the fake model takes per answer")
    parser.add_argument("--drain", type=float, default=600.0, help="most seconds to wait for the last answers")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--show-log", action="store_true", help="print the hub's log tail when messages were lost")
    args = parser.parse_args()
    figures = asyncio.run(soak(args))
    for key, value in figures.items():
        print(f"{key:>36}: {value}")
    emit(figures)


if __name__ == "__main__":
    main()
