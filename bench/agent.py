"""Agent runtime benchmark: the loop's own overhead, 1,000 concurrent conversations through the
hub, and the input tokens the tool definitions cost.

    python bench/agent.py [--overhead-convs 200] [--concurrent 1000] [--latency 1.0] [--memory]

Prints human-readable lines, then one JSON line of figures. Every fake model runs in its own
process (``python -m tests.fakes.openai_server``): with fake and client in one process on a
small machine, the fake's CPU would be billed to the hub.

Method
------
1. Overhead per model turn and per tool call. ``LLMAgent`` (built by ``build_agent`` from
   ``AgentServices``, full built-in tool set, streaming) is driven directly through a minimal
   in-bench ``RunContext`` against a fake with zero latency, one conversation at a time, in
   three scenarios:

   A. a plain answer: 1 model request;
   B. ``calculate`` called, ``max_turns = 1``: 1 model request + 1 tool call (then the loop
      stops with its max-turns note);
   C. ``calculate`` called, then the final answer: 2 model requests + 1 tool call.

   The exact request bodies of each scenario are captured once from an in-process fake, and
   the same bodies are replayed with no runtime around them, on exactly the provider's request
   path (``sse_request``: the ``openai`` client's ``post`` with the encoded body, every event
   decoded) against the same out-of-process fake: one fake serves all three scenarios (it calls
   the tool only for user messages containing ``[calc]``), so only the bodies differ. Agent and
   bare runs alternate in
   blocks, and medians per conversation are compared, so drifting load on a shared machine
   hits both alike. Per conversation both this process's CPU time (the primary figures: wall
   time on a shared machine also counts moments another process held the core) and wall time
   (``wall_*``) are taken. With ``o(X) = median_agent(X) - median_bare(X)`` and
   o(A) = S + t, o(B) = S + t + c, o(C) = S + 2t + c (S: per-run setup, t: per turn, c: per
   tool call): ``overhead_per_tool_call = o(B) - o(A)``, ``overhead_per_turn = o(C) - o(B)``,
   ``overhead_per_run_setup = o(A) - t``. The tool call's figure includes authorising,
   validating and running ``calculate`` (microseconds of arithmetic) and encoding the result.

2. Concurrency. ``--concurrent`` conversations (different chats) enter a real ``Hub``
   (``[agent] runtime = "llm"``, ``[providers.fake]`` pointing at a fake that waits
   ``--latency`` s before every response, ``sessions.max_concurrent_runs`` raised to match,
   SQLite persistence on unless ``--memory``) through an in-bench channel, all at once; wall
   time runs from the first inbound to the last final answer. Beside it, with no hub, the same
   number of requests with the hub's own request body (system prompt, tools) is sent at once
   in three ways:

   - ``bare``: the SDK's typed stream, configured as a careful user would (the SDK's
     ``DefaultAioHttpClient`` transport, the wire body in ``extra_body`` so the SDK does not
     walk every tool schema). ``hub_share_ratio = hub_rate / bare_rate`` (the issue's ratio).
     It exceeds 1: the provider skips the SDK's per-chunk pydantic models.
   - ``same_path``: exactly the provider's request path (``sse_request``), so
     ``hub_share_of_same_path`` is the share left after everything the hub itself does.
   - ``bare_sdk_defaults`` (unless ``--no-aiohttp-variant``): the SDK as it comes (the
     ``httpx2`` pool, whose bookkeeping scans every connection per request, and named
     arguments, which the SDK walks recursively through every tool schema).

   CPU per conversation is reported for our process and for the fake (the fake is never the
   bottleneck: ~1 ms per request, on the other core). On a 2-core machine the client's CPU per
   request x 1,000 bounds the wall time from below. All phases run under the GC settings of
   ``autohands run`` (``hub.app.tune_gc_for_serving``).

3. Tokens. One request of scenario A is sent to an in-process fake with the full built-in
   tool set (``file, shell, web, search, math, time, schedule``) and with ``[tools] enabled =
   []``; the fake reports ``prompt_tokens`` as request bytes / 4, read back from the usage the
   runtime records.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

# Import from the repo root, not bench/ (as a script, bench/ is sys.path[0]: bench/telegram.py
# would shadow the python-telegram-bot package).
sys.path[0] = str(Path(__file__).resolve().parents[1])

import httpx2
import orjson
from openai import AsyncOpenAI, DefaultAioHttpClient

from agents.build import build_agent
from agents.providers._sse import SSEDecoder
from agents.runtime import LLMAgent
from bench._common import emit, latency_figures, peak_rss_mb
from hub.agent import AgentServices, HistoryItem, Usage
from hub.app import Hub, tune_gc_for_serving
from hub.channel import Capabilities, Inbox
from hub.commands import CommandRegistry
from hub.config import load_settings
from hub.messages import ConversationRef, Delivery, Inbound, Outbound, Sender
from hub.store import MemoryStore, Store
from tests.fakes.llm_script import LLMScript, ScriptedCall
from tests.fakes.openai_server import FakeOpenAI

ROOT = Path(__file__).resolve().parents[1]
TOOL = "calculate"
TOOL_ARGS = {"expression": "6*7"}
TOOL_MARK = "[calc]"
"""The fake calls the tool only for user messages containing this, so one fake serves A, B, C."""
API_KEY = "sk-bench"
SCENARIOS = ("A", "B", "C")


# --------------------------------------------------------------------------- fakes
@dataclass(frozen=True)
class FakeProc:
    url: str
    pid: int

    def cpu_s(self) -> float:
        """CPU time (user + system) the fake has used so far: the fake has a cost per request too."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@asynccontextmanager
async def fake_process(*, latency: float, tool: bool) -> AsyncIterator[FakeProc]:
    """An echo-mode fake OpenAI server in its own process."""
    cmd = [sys.executable, "-m", "tests.fakes.openai_server", "--port", "0", "--latency", str(latency)]
    if tool:
        cmd += ["--tool", TOOL, "--tool-args", json.dumps(TOOL_ARGS), "--tool-when", TOOL_MARK]
    # stderr is dropped: aiohttp logs every connection a client resets as a traceback.
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        url = next((w for w in line.split() if w.startswith("http://")), None)
        if url is None:
            raise RuntimeError(f"the fake server did not start: {line!r}")
        yield FakeProc(url, proc.pid)
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


class _PlaceholderScheduler:
    """A ``JobScheduler`` that only makes ``build_agent`` list the ``schedule`` tools; no bench
    run calls them."""

    async def create_from_phrases(self, **_: object) -> NoReturn:
        raise NotImplementedError("the bench never schedules")

    async def list_jobs(self, conversation: ConversationRef) -> NoReturn:
        raise NotImplementedError("the bench never schedules")

    async def cancel(self, job_id: str, by: Sender, *, channel: str | None = None) -> NoReturn:
        raise NotImplementedError("the bench never schedules")


def make_agent(base_url: str, data_dir: Path, *, tools: bool = True, max_turns: int = 12) -> LLMAgent:
    services = AgentServices(
        agent_config={"provider": "fake", "max_turns": max_turns, "stream": True},
        providers_config={
            "fake": {
                "kind": "openai",
                "model": "fake-model",
                "base_url": base_url,
                "api_key": API_KEY,
                "max_retries": 0,
            }
        },
        tools_config={"workspace": str(data_dir / "workspace")} if tools else {"enabled": []},
        commands=CommandRegistry(),
        data_dir=data_dir,
        scheduler=_PlaceholderScheduler(),
    )
    agent = build_agent(services, environ={})
    assert isinstance(agent, LLMAgent)
    return agent


# --------------------------------------------------------------------------- a bare RunContext
@dataclass
class BenchRun:
    """The smallest ``RunContext``: no store, no queue; records usage."""

    inbound: Inbound
    history: Sequence[HistoryItem] = ()
    settings: dict[str, str] = field(default_factory=dict)
    new_items: list[HistoryItem] = field(default_factory=list)
    usage: list[Usage] = field(default_factory=list)

    @property
    def conversation(self) -> ConversationRef:
        return self.inbound.conversation

    @property
    def sender(self) -> Sender:
        return self.inbound.sender

    def remember(self, *items: HistoryItem) -> None:
        self.new_items.extend(items)

    def replace_history(self, items: Sequence[HistoryItem]) -> None:
        self.history = tuple(items)

    def record_usage(self, provider: str, model: str, usage: Usage) -> None:
        self.usage.append(usage)

    async def send(self, outbound: Outbound) -> None:
        return None

    async def set_setting(self, name: str, value: str | None) -> None:
        if value is None:
            self.settings.pop(name, None)
        else:
            self.settings[name] = value

    async def ask(self, outbound: Outbound, *, user_id: str, timeout: float) -> Inbound | None:
        return None


def inbound(i: int, channel: str = "bench", *, tool: bool = False) -> Inbound:
    text = f"{TOOL_MARK if tool else ''}what is six times seven? ({i})"
    return Inbound(
        kind="message",
        sender=Sender(id=f"u{i}"),
        text=text,
        platform_id=f"m{i}",
        reply_to_platform_id=f"m{i}",
        conversation=ConversationRef(channel=channel, chat=f"c{i}"),
    )


async def converse(agent: LLMAgent, i: int, *, tool: bool = False) -> BenchRun:
    ctx = BenchRun(inbound(i, tool=tool))
    final = None
    async for out in agent.run(ctx):
        if out.final and not out.typing:
            final = out
    if final is None or not final.text:
        raise RuntimeError(f"conversation {i} ended without a final answer")
    return ctx


async def capture_bodies(
    data_dir: Path, *, tool: bool, max_turns: int, tools: bool = True
) -> tuple[list[dict[str, Any]], BenchRun]:
    """One conversation against an in-process fake: the exact request bodies, and its usage."""
    script = LLMScript("echo")
    script.echo_tool, script.echo_tool_when = ScriptedCall(TOOL, TOOL_ARGS), TOOL_MARK
    async with FakeOpenAI(script) as fake:
        agent = make_agent(fake.base_url, data_dir, tools=tools, max_turns=max_turns)
        try:
            ctx = await converse(agent, 0, tool=tool)
        finally:
            await agent.aclose()
    return [r.body for r in script.requests], ctx


# --------------------------------------------------------------------------- bare SDK
def sdk_client(base_url: str, *, aiohttp: bool = True) -> AsyncOpenAI:
    """Configured as ``agents.providers.openai.OpenAIProvider`` configures its client (aiohttp
    transport); ``aiohttp=False`` is the SDK's default httpx transport."""
    timeout = httpx2.Timeout(120.0, connect=10.0)
    http_client = DefaultAioHttpClient(timeout=timeout) if aiohttp else None
    return AsyncOpenAI(api_key=API_KEY, base_url=base_url, timeout=timeout, max_retries=0, http_client=http_client)


def untransformed(body: dict[str, Any]) -> dict[str, Any]:
    """The same request with messages and tools in ``extra_body``, which the SDK sends as given.

    Arguments given by name are walked by the SDK's ``_transform`` against their TypedDict
    annotations, recursively through every tool's JSON schema: ~2-4 ms per request here.
    """
    named: dict[str, Any] = {k: body[k] for k in ("model", "stream", "stream_options") if k in body}
    return {**named, "messages": [], "extra_body": {k: v for k, v in body.items() if k not in named}}


async def sdk_request(client: AsyncOpenAI, body: dict[str, Any]) -> None:
    stream = await client.chat.completions.create(**body)
    try:
        async for _chunk in stream:
            pass
    finally:
        await stream.close()


async def sse_request(client: AsyncOpenAI, body: dict[str, Any]) -> None:
    """The request as the provider sends it: ``client.post`` with the orjson-encoded wire body,
    the SSE decoded by ``agents.providers._sse`` and every chunk parsed with orjson."""
    response = await client.post(
        "/chat/completions",
        cast_to=httpx2.Response,
        content=orjson.dumps(body),
        stream=True,
        options={"headers": {"Accept": "text/event-stream", "Content-Type": "application/json"}},
    )
    decoder = SSEDecoder()
    try:
        async for chunk in response.aiter_bytes():
            for event in decoder.feed(chunk):
                if event.data != b"[DONE]":
                    orjson.loads(event.data)
    finally:
        await response.aclose()


def with_user_text(body: dict[str, Any], text: str) -> dict[str, Any]:
    messages = list(body["messages"])
    messages[-1] = {**messages[-1], "content": text}
    return {**body, "messages": messages}


# --------------------------------------------------------------------------- 1. overhead
async def overhead(n: int, blocks: int, data_dir: Path) -> dict[str, float]:
    bodies = {
        "A": (await capture_bodies(data_dir, tool=False, max_turns=12))[0],
        "B": (await capture_bodies(data_dir, tool=True, max_turns=1))[0],
        "C": (await capture_bodies(data_dir, tool=True, max_turns=12))[0],
    }
    assert [len(bodies[s]) for s in SCENARIOS] == [1, 1, 2], {s: len(b) for s, b in bodies.items()}
    agent_t: dict[str, list[float]] = {s: [] for s in SCENARIOS}
    bare_t: dict[str, list[float]] = {s: [] for s in SCENARIOS}
    agent_c: dict[str, list[float]] = {s: [] for s in SCENARIOS}
    bare_c: dict[str, list[float]] = {s: [] for s in SCENARIOS}
    async with fake_process(latency=0, tool=True) as fake:  # one fake for all: only the bodies differ
        url = fake.url
        agents = {
            "A": make_agent(url, data_dir),
            "B": make_agent(url, data_dir, max_turns=1),
            "C": make_agent(url, data_dir),
        }
        client = sdk_client(url)
        # the bare requests go exactly the way the provider sends them (``sse_request``)
        try:
            for s in SCENARIOS:  # warm-up: connections, imports, caches
                for i in range(5):
                    await converse(agents[s], i, tool=s != "A")
                    for body in bodies[s]:
                        await sse_request(client, body)
            per_block = max(1, n // blocks)
            for _block in range(blocks):
                for s in SCENARIOS:
                    for i in range(per_block):
                        t0, c0 = time.perf_counter(), time.process_time()
                        await converse(agents[s], i, tool=s != "A")
                        agent_t[s].append(time.perf_counter() - t0)
                        agent_c[s].append(time.process_time() - c0)
                    for _i in range(per_block):
                        t0, c0 = time.perf_counter(), time.process_time()
                        for body in bodies[s]:
                            await sse_request(client, body)
                        bare_t[s].append(time.perf_counter() - t0)
                        bare_c[s].append(time.process_time() - c0)
        finally:
            for agent in agents.values():
                await agent.aclose()
            await client.close()
    figures: dict[str, float] = {"overhead_conversations": len(agent_t["A"])}
    # CPU time of this process is the primary measure: on a shared machine wall time also
    # counts the moments another process held the core. Wall-time figures get a "wall_" prefix.
    for prefix, agent_x, bare_x in (("", agent_c, bare_c), ("wall_", agent_t, bare_t)):
        o = {s: (statistics.median(agent_x[s]) - statistics.median(bare_x[s])) * 1000 for s in SCENARIOS}
        turn = o["C"] - o["B"]
        figures[f"{prefix}overhead_per_turn_ms"] = round(turn, 3)
        figures[f"{prefix}overhead_per_tool_call_ms"] = round(o["B"] - o["A"], 3)
        figures[f"{prefix}overhead_per_run_setup_ms"] = round(o["A"] - turn, 3)
        figures[f"{prefix}overhead_per_conversation_C_ms"] = round(o["C"], 3)
        for s in SCENARIOS:
            figures[f"{prefix}agent_{s}_median_ms"] = round(statistics.median(agent_x[s]) * 1000, 3)
            figures[f"{prefix}bare_{s}_median_ms"] = round(statistics.median(bare_x[s]) * 1000, 3)
    return figures


# --------------------------------------------------------------------------- 2. concurrency
class BenchChannel:
    capabilities = Capabilities(max_length=100_000)
    problem: str | None = None

    def __init__(self, expected: int) -> None:
        self.name = "bench"
        self.inbox: Inbox | None = None
        self.started_at: dict[str, float] = {}
        self.latencies: list[float] = []
        self.texts: list[str] = []
        self.done = asyncio.Event()
        self.expected = expected

    async def start(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def stop(self) -> None: ...

    async def send(self, msg: Outbound) -> Delivery:
        if msg.final and not msg.typing:
            t0 = self.started_at.pop(msg.reply_to_platform_id or "", None)
            if t0 is not None:
                self.latencies.append(time.perf_counter() - t0)
                self.texts.append(msg.text)
            if len(self.latencies) >= self.expected:
                self.done.set()
        return Delivery(platform_ids=("x",))


@dataclass
class Phase:
    wall_s: float
    answered: int
    """Finished within the deadline, whether with the model's answer or an error message."""
    cpu_s: float
    latencies: list[float]
    fake_cpu_s: float = 0.0
    failed: int = 0
    """Answered with an error (e.g. a connect timeout) instead of the model's text."""


async def hub_phase(
    url: str,
    n: int,
    latency: float,
    data_dir: Path,
    *,
    persist: bool,
    deadline: float,
    profile: cProfile.Profile | None,
) -> Phase:
    settings = load_settings(
        environ={},
        overrides={
            "hub": {"data_dir": str(data_dir)},
            "server": {"enabled": False},
            "sessions": {"max_concurrent_runs": max(n, 1), "max_sessions_in_memory": max(10_000, 2 * n)},
            "agent": {"runtime": "llm", "provider": "fake", "timeout_seconds": 300},
            "providers": {
                "fake": {
                    "kind": "openai",
                    "model": "fake-model",
                    "base_url": url,
                    "api_key": API_KEY,
                    "max_retries": 0,
                    # the profiler slows the loop enough to trip the 10 s connect timeout
                    **({"connect_timeout_seconds": 300} if profile else {}),
                }
            },
            "tools": {"workspace": str(data_dir / "workspace")},
        },
    )
    ch = BenchChannel(n)
    store = Store.from_settings(settings) if persist else MemoryStore()
    async with Hub(settings, store=store, channels={"bench": ch}):
        tune_gc_for_serving()  # as `autohands run` does once started
        assert ch.inbox is not None
        inbox = ch.inbox
        # warm-up: one conversation opens the provider's connection pool and the store's paths
        ch.expected, ch.started_at["warm"] = 1, time.perf_counter()
        await inbox(
            Inbound(
                kind="message",
                sender=Sender(id="w"),
                text="warm up",
                platform_id="warm",
                reply_to_platform_id="warm",
                conversation=ConversationRef(channel="bench", chat="warm"),
            )
        )
        await asyncio.wait_for(ch.done.wait(), 60 + latency)
        ch.latencies.clear()
        ch.done.clear()
        ch.expected = n

        async def one(i: int) -> None:
            msg = inbound(i)
            ch.started_at[msg.platform_id or ""] = time.perf_counter()
            await inbox(msg)

        cpu0 = time.process_time()
        if profile is not None:
            profile.enable()
        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        try:
            await asyncio.wait_for(ch.done.wait(), deadline)
        except TimeoutError:
            pass
        wall = time.perf_counter() - t0
        if profile is not None:
            profile.disable()
        cpu = time.process_time() - cpu0
        answered = len(ch.latencies)
        if answered < n:
            # let the rest finish so the hub stops cleanly, without counting them
            await asyncio.wait_for(ch.done.wait(), 600)
    bad = [t for t in ch.texts[:answered] if not t.startswith("echo:")]
    if bad:
        print(f"hub: {len(bad)} conversations got an error instead of the answer, e.g. {bad[0][:160]!r}")
    return Phase(wall, answered - len(bad), cpu, list(ch.latencies[:answered]), failed=len(bad))


async def bare_phase(
    url: str, n: int, body: dict[str, Any], *, aiohttp: bool, deadline: float, raw: bool = False, sse: bool = False
) -> Phase:
    client = sdk_client(url, aiohttp=aiohttp)
    latencies: list[float] = []
    errors: list[BaseException] = []
    try:
        await sdk_request(client, with_user_text(body, "warm up"))
        bodies = [with_user_text(body, f"what is six times seven? ({i})") for i in range(n)]
        if raw:
            bodies = [untransformed(b) for b in bodies]
        send = sse_request if sse else sdk_request

        async def one(b: dict[str, Any]) -> None:
            t = time.perf_counter()
            try:
                await send(client, b)
            except Exception as exc:  # the SDK's own errors (e.g. connect timeout) are results too
                errors.append(exc)
                return
            latencies.append(time.perf_counter() - t)

        cpu0 = time.process_time()
        t0 = time.perf_counter()
        tasks = [asyncio.ensure_future(one(b)) for b in bodies]
        await asyncio.wait(tasks, timeout=deadline)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        answered, failed = len(latencies), len(errors)
        await asyncio.gather(*tasks)
    finally:
        await client.close()
    if errors:
        print(f"bare SDK: {failed} requests failed, e.g. {type(errors[0]).__name__}: {errors[0]}")
    return Phase(wall, answered, cpu, latencies[:answered], failed=failed)


async def concurrency(
    n: int,
    latency: float,
    data_dir: Path,
    *,
    persist: bool,
    target_s: float,
    aiohttp_variant: bool,
    profile_path: str | None,
) -> dict[str, Any]:
    # The hub's own request body (system prompt for this channel, the full tool set).
    body = (await capture_bodies(data_dir / "capture", tool=False, max_turns=12))[0][0]
    deadline = max(60.0, 30 * target_s)  # past the target we still wait, to report the real wall time
    profile = cProfile.Profile() if profile_path else None
    async with fake_process(latency=latency, tool=False) as fake:
        url = fake.url

        async def measured(phase: Any) -> Phase:
            before = fake.cpu_s()
            result: Phase = await phase
            result.fake_cpu_s = fake.cpu_s() - before
            return result

        # Both phases run under the GC settings `autohands run` uses, so the ratio compares
        # code, not collector settings.
        tune_gc_for_serving()
        # "bare": the same client set-up and request path as the hub's provider (aiohttp
        # transport, untransformed wire body), so the ratio is the hub's own share.
        bare = await measured(bare_phase(url, n, body, aiohttp=True, raw=True, deadline=deadline))
        # "same_path": exactly the provider's request path with no hub around it, so the hub's
        # own cost shows even though its provider outruns the SDK's typed stream.
        same = await measured(bare_phase(url, n, body, aiohttp=True, sse=True, deadline=deadline))
        hub = await measured(
            hub_phase(url, n, latency, data_dir / "hub", persist=persist, deadline=deadline, profile=profile)
        )
        aio = None
        if aiohttp_variant:  # the SDK as it comes: its default httpx transport, named arguments
            aio = await measured(bare_phase(url, n, body, aiohttp=False, deadline=deadline))
    if profile is not None and profile_path:
        profile.dump_stats(profile_path)
    figures: dict[str, Any] = {
        "concurrent": n,
        "fake_latency_s": latency,
        "persist": persist,
        "request_body_bytes": len(json.dumps(body)),
    }
    for name, phase in (("hub", hub), ("bare", bare), ("same_path", same), ("bare_sdk_defaults", aio)):
        if phase is None:
            continue
        figures[f"{name}_wall_s"] = round(phase.wall_s, 3)
        figures[f"{name}_answered"] = phase.answered
        figures[f"{name}_failed"] = phase.failed
        figures[f"{name}_rate_per_s"] = round(phase.answered / phase.wall_s, 1)
        figures[f"{name}_cpu_ms_per_conversation"] = round(phase.cpu_s / max(1, phase.answered) * 1000, 3)
        figures[f"{name}_fake_cpu_ms_per_request"] = round(phase.fake_cpu_s / max(1, phase.answered) * 1000, 3)
        figures.update(latency_figures(f"{name}_", phase.latencies))
    figures["hub_share_ratio"] = round(figures["hub_rate_per_s"] / figures["bare_rate_per_s"], 3)
    figures["hub_share_of_same_path"] = round(figures["hub_rate_per_s"] / figures["same_path_rate_per_s"], 3)
    figures["hub_within_target"] = hub.answered == n and hub.wall_s <= target_s
    return figures


# --------------------------------------------------------------------------- 3. tokens
async def tokens(data_dir: Path) -> dict[str, int]:
    _, full = await capture_bodies(data_dir, tool=False, max_turns=12, tools=True)
    _, bare = await capture_bodies(data_dir, tool=False, max_turns=12, tools=False)
    agent = make_agent("http://127.0.0.1:9/v1", data_dir)
    n_tools = len(agent.tool_specs)
    await agent.aclose()
    with_tools, without = full.usage[0].input_tokens, bare.usage[0].input_tokens
    return {
        "input_tokens_per_turn_full_tools": with_tools,
        "input_tokens_per_turn_no_tools": without,
        "tool_definition_tokens": with_tools - without,
        "builtin_tools": n_tools,
    }


# --------------------------------------------------------------------------- main
def print_profile(path: str, limit: int = 25) -> None:
    stats = pstats.Stats(path, stream=sys.stderr)
    stats.sort_stats("tottime").print_stats(limit)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--overhead-convs", type=int, default=200, help="conversations per scenario (part 1)")
    p.add_argument("--blocks", type=int, default=4, help="alternating agent/bare blocks (part 1)")
    p.add_argument("--concurrent", type=int, default=1000, help="conversations at once (part 2; 0 skips)")
    p.add_argument("--latency", type=float, default=1.0, help="the fake's fixed latency per request (part 2)")
    p.add_argument("--target", type=float, default=3.0, help="wall-time target for part 2, seconds")
    p.add_argument("--memory", action="store_true", help="part 2 with the in-memory store (no SQLite)")
    p.add_argument(
        "--no-aiohttp-variant", action="store_true", help="skip the bare-SDK run with the SDK's own defaults"
    )
    p.add_argument("--profile", metavar="PATH", help="cProfile the hub phase of part 2 into PATH")
    p.add_argument("--skip-overhead", action="store_true")
    p.add_argument(
        "--log-level", default="CRITICAL", help="the hub's log level (failures are counted in the figures either way)"
    )
    args = p.parse_args()
    logging.basicConfig(level=args.log_level.upper())
    figures: dict[str, Any] = {
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0
    }
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        t = asyncio.run(tokens(data / "tokens"))
        print(
            f"input tokens per turn: {t['input_tokens_per_turn_full_tools']} with the {t['builtin_tools']} "
            f"built-in tools, {t['input_tokens_per_turn_no_tools']} without "
            f"(tool definitions: {t['tool_definition_tokens']})"
        )
        figures.update(t)
        if not args.skip_overhead:
            o = asyncio.run(overhead(args.overhead_convs, args.blocks, data / "overhead"))
            for prefix, what in (("", "CPU"), ("wall_", "wall")):
                print(
                    f"runtime overhead ({what}): {o[f'{prefix}overhead_per_turn_ms']:.3f} ms per model turn, "
                    f"{o[f'{prefix}overhead_per_tool_call_ms']:.3f} ms per tool call, "
                    f"{o[f'{prefix}overhead_per_run_setup_ms']:.3f} ms per run setup; "
                    f"{o[f'{prefix}overhead_per_conversation_C_ms']:.3f} ms per tool conversation"
                )
                print(
                    f"  medians per conversation ({what}, agent vs bare SDK, ms): "
                    + ", ".join(
                        f"{s} {o[f'{prefix}agent_{s}_median_ms']:.2f} vs {o[f'{prefix}bare_{s}_median_ms']:.2f}"
                        for s in SCENARIOS
                    )
                )
            figures.update(o)
        if args.concurrent:
            c = asyncio.run(
                concurrency(
                    args.concurrent,
                    args.latency,
                    data / "concurrency",
                    persist=not args.memory,
                    target_s=args.target,
                    aiohttp_variant=not args.no_aiohttp_variant,
                    profile_path=args.profile,
                )
            )
            n = args.concurrent
            print(
                f"{n} concurrent conversations through the hub (fake latency {args.latency:g} s, "
                f"persistence {'on' if not args.memory else 'off'}): {c['hub_answered']}/{n} answered, "
                f"wall {c['hub_wall_s']:.2f} s, {c['hub_cpu_ms_per_conversation']:.2f} ms CPU each "
                f"-> {'MEETS' if c['hub_within_target'] else 'MISSES'} the {args.target:g} s target"
            )
            print(
                f"{n} bare SDK requests at once: wall {c['bare_wall_s']:.2f} s, "
                f"{c['bare_cpu_ms_per_conversation']:.2f} ms CPU each (the fake: "
                f"{c['bare_fake_cpu_ms_per_request']:.2f} ms per request); hub share "
                f"{c['hub_share_ratio']:.2f} (target >= 0.70)"
            )
            print(
                f"{n} requests on the provider's own path with no hub (client.post, our SSE decoding): wall "
                f"{c['same_path_wall_s']:.2f} s, {c['same_path_cpu_ms_per_conversation']:.2f} ms CPU each; "
                f"hub share of it {c['hub_share_of_same_path']:.2f}"
            )
            if "bare_sdk_defaults_wall_s" in c:
                print(
                    f"{n} bare SDK requests with the SDK's defaults (httpx transport, named arguments): wall "
                    f"{c['bare_sdk_defaults_wall_s']:.2f} s, {c['bare_sdk_defaults_cpu_ms_per_conversation']:.2f} "
                    "ms CPU each"
                )
            figures.update(c)
    if args.profile:
        print_profile(args.profile)
    figures["peak_rss_mb"] = peak_rss_mb()
    emit(figures)


if __name__ == "__main__":
    main()
