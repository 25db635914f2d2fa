"""What intent analysis saves: input tokens per request with ``[agent] intent`` off and auto.

    python bench/intent.py [--requests 46]

Method: a fixed corpus of varied requests (chat with no tool, each built-in category, several
categories at once, an answer form asked for, and requests whose first guess misses a tool, so
the model must widen with ``more_tools``). Each request is a real run of the agent that
``build_agent`` makes (every built-in tool, ``schedule`` included; streaming; a fresh
conversation each), against an in-process fake model scripted per request: with ``auto`` the
intent call answers with the categories a sensible model would pick; then, in both settings,
the same tool calls (run for real in a temporary workspace; calls that need a person are
denied, as nobody answers) and the same final answer. Where a form was asked and the answer
lacks it, the formatting call is scripted and counted too. Every step must be consumed exactly,
or the bench fails. ``mode`` is always ``react``, so only the tool set differs.

Tokens are the fake's reported usage (request bytes / 4), summed over every model call of a
run, as the runtime records them. Tool-definition tokens per main call are the ``tools`` part
of each request body, by the same measure.

The last line of output is one JSON object of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

sys.path[0] = str(Path(__file__).resolve().parents[1])

import orjson

from agents.build import build_agent
from agents.intent import MORE_TOOLS
from agents.runtime import LLMAgent
from bench._common import emit
from bench.agent import BenchRun
from hub.agent import AgentServices
from hub.commands import CommandRegistry
from hub.messages import ConversationRef, Inbound, Sender
from tests.fakes.llm_script import LLMScript, ScriptedCall
from tests.fakes.openai_server import FakeOpenAI

Call = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Request:
    text: str
    picked: tuple[str, ...]
    """The categories a sensible intent model picks."""
    calls: tuple[Call, ...] = ()
    """The tool calls the main model makes (one turn)."""
    final: str = "Done."
    form: str | None = None
    formatted: str | None = None
    """The formatting call's reply, when the final answer lacks the form asked for."""
    widen: bool = False
    """The picked categories miss a tool: the model calls ``more_tools`` first."""


def r(text: str, picked: tuple[str, ...] = (), *calls: Call, **kw: Any) -> Request:
    return Request(text, picked, calls, **kw)


CORPUS: tuple[Request, ...] = (
    r("Hi! How are you today?", final="Fine, thanks! How can I help?"),
    r("Write a haiku about autumn rain.", final="Grey rain on red leaves / ..."),
    r("Explain the difference between TCP and UDP in two sentences.", final="TCP is reliable; UDP is not."),
    r("Translate 'good morning, friends' into Spanish.", final="Buenos días, amigos."),
    r("What's the capital of Australia?", final="Canberra."),
    r("Give me three name ideas for a bakery.", final="Rise, Crumb, Flour Hour."),
    r("Summarise the plot of Hamlet in one paragraph.", final="A prince avenges his father..."),
    r("Thanks, that's all for now!", final="You're welcome!"),
    r("What time is it?", ("time",), ("now", {})),
    r("What time is it in Tokyo right now?", ("time",), ("now", {"timezone": "Asia/Tokyo"})),
    r(
        "Convert 3pm New York time to Berlin time.",
        ("time",),
        ("convert_time", {"time": "15:00", "from_timezone": "America/New_York", "to_timezone": "Europe/Berlin"}),
    ),
    r("What's today's date?", ("time",), ("now", {})),
    r("What is 17.5% of 2,340?", ("math",), ("calculate", {"expression": "0.175*2340"})),
    r("Compute (3^7 - 12) / 5.", ("math",), ("calculate", {"expression": "(3**7-12)/5"})),
    r("Mean and standard deviation of 4, 8, 15, 16, 23, 42?", ("math",), ("stats", {"values": [4, 8, 15, 16, 23, 42]})),
    r("How many seconds are in 3.5 days?", ("math",), ("calculate", {"expression": "3.5*86400"})),
    r("Read notes.txt and tell me what it says.", ("file",), ("read_file", {"path": "notes.txt"})),
    r(
        "Save a shopping list (milk, eggs, bread) to list.txt.",
        ("file",),
        ("write_file", {"path": "list.txt", "content": "milk\neggs\nbread\n"}),
    ),
    r("What files are in my workspace?", ("file",), ("list_dir", {})),
    r("Delete old.log.", ("file",), ("delete_file", {"path": "old.log"})),
    r(
        "Append 'call Bob' to todo.txt.",
        ("file",),
        ("write_file", {"path": "todo.txt", "content": "call Bob\n", "append": True}),
    ),
    r("Find every TODO in my Python files.", ("search",), ("grep", {"pattern": "TODO", "glob": "*.py"})),
    r("List all markdown files in the workspace.", ("search",), ("glob", {"pattern": "**/*.md"})),
    r("Which file mentions 'invoice 2024'?", ("search", "file"), ("grep", {"pattern": "invoice 2024"})),
    r("Fetch http://127.0.0.1/ and summarise it.", ("web",), ("fetch_url", {"url": "http://127.0.0.1/"})),
    r(
        "What does http://127.0.0.2/downloads say about the latest release?",
        ("web",),
        ("fetch_url", {"url": "http://127.0.0.2/downloads"}),
    ),
    r(
        "Read http://127.0.0.3/news and list the top 3 headlines.",
        ("web",),
        ("fetch_url", {"url": "http://127.0.0.3/news"}),
    ),
    r("Run git status in my workspace.", ("shell",), ("run_command", {"command": "git status"})),
    r("How big is the data folder? Use du.", ("shell",), ("run_command", {"command": "du -sh data"})),
    r("Count the lines in report.csv.", ("shell",), ("run_command", {"command": "wc -l report.csv"})),
    r(
        "Remind me tomorrow at 9 to call the dentist.",
        ("schedule",),
        ("schedule", {"operation": "create", "text": "call the dentist", "when": "tomorrow at 9"}),
    ),
    r(
        "Every weekday at 8, send me a summary of my todo list.",
        ("schedule", "file"),
        ("schedule", {"operation": "create", "text": "summarise todo.txt", "every": "weekday at 8"}),
    ),
    r("What reminders do I have?", ("schedule",), ("schedule", {"operation": "list"})),
    r(
        "Read data.csv and compute the average of the price column.",
        ("file", "math"),
        ("read_file", {"path": "data.csv"}),
        ("stats", {"values": [3.5, 4.0, 2.25]}),
    ),
    r(
        "Fetch http://127.0.0.4/prices.json and save it to prices.json.",
        ("web", "file"),
        ("fetch_url", {"url": "http://127.0.0.4/prices.json"}),
    ),
    r(
        "How many days until Christmas?",
        ("time", "math"),
        ("now", {}),
        ("calculate", {"expression": "359-325"}),
    ),
    r(
        "Grep my notes for 'meeting' and tell me the time in London.",
        ("search", "time"),
        ("grep", {"pattern": "meeting"}),
        ("now", {"timezone": "Europe/London"}),
    ),
    r(
        "List the files in my workspace as a table.",
        ("file",),
        ("list_dir", {}),
        final="| name | kind |\n|---|---|\n| notes.txt | file |",
        form="a table",
    ),
    r(
        "Give me the current time in Tokyo, Paris and New York as JSON.",
        ("time",),
        ("now", {"timezone": "Asia/Tokyo"}),
        ("now", {"timezone": "Europe/Paris"}),
        ("now", {"timezone": "America/New_York"}),
        final='{"Tokyo": "17:30", "Paris": "10:30", "New York": "04:30"}',
        form="JSON",
    ),
    r(
        "Read notes.txt and answer in German.",
        ("file",),
        ("read_file", {"path": "notes.txt"}),
        final="Die Datei notes.txt gibt es nicht.",
        form="German",
    ),
    r(
        "What's 2+2? Answer in JSON.",
        ("math",),
        ("calculate", {"expression": "2+2"}),
        final="2 + 2 = 4.",
        form="JSON",
        formatted='{"result": 4}',
    ),
    r(
        "Tell me what changed in my project recently.",
        (),
        ("run_command", {"command": "git log -5"}),
        widen=True,
    ),
    r(
        "How long ago was my last commit?",
        ("time",),
        ("run_command", {"command": "git log -1"}),
        widen=True,
    ),
    r(
        "Set a timer for 10 minutes.",
        ("time",),
        ("schedule", {"operation": "create", "text": "timer", "when": "in 10 minutes"}),
        widen=True,
    ),
    r(
        "Download http://127.0.0.5/data.csv and tell me the total.",
        ("web",),
        ("fetch_url", {"url": "http://127.0.0.5/data.csv"}),
        ("calculate", {"expression": "1+2+3"}),
        widen=True,
    ),
    r("What is in the README?", (), ("read_file", {"path": "README.md"}), widen=True),
)


class _NoScheduler:
    """Makes ``build_agent`` offer the ``schedule`` tool; a call of it fails (a tool error)."""

    async def create_from_phrases(self, **_: object) -> NoReturn:
        raise NotImplementedError("the bench never schedules")

    async def list_jobs(self, conversation: ConversationRef) -> NoReturn:
        raise NotImplementedError("the bench never schedules")

    async def cancel(self, job_id: str, by: Sender, *, channel: str | None = None) -> NoReturn:
        raise NotImplementedError("the bench never schedules")


def make_agent(base_url: str, data_dir: Path, intent: str) -> LLMAgent:
    services = AgentServices(
        agent_config={"provider": "fake", "intent": intent},
        providers_config={
            "fake": {
                "kind": "openai",
                "model": "fake-model",
                "base_url": base_url,
                "api_key": "sk-bench",
                "max_retries": 0,
            }
        },
        tools_config={"workspace": str(data_dir / "workspace")},
        commands=CommandRegistry(),
        data_dir=data_dir,
        scheduler=_NoScheduler(),
    )
    agent = build_agent(services, environ={})
    assert isinstance(agent, LLMAgent)
    return agent


def script_request(script: LLMScript, req: Request, intent: str) -> None:
    if intent == "auto":
        reply = {"intent": req.text, "categories": list(req.picked), "mode": "react", "form": req.form}
        script.reply(orjson.dumps(reply).decode())
        if req.widen:
            script.tool_calls(ScriptedCall(MORE_TOOLS, {}))
    if req.calls:
        script.tool_calls(*(ScriptedCall(name, args) for name, args in req.calls))
    script.reply(req.final)
    if intent == "auto" and req.formatted is not None:
        script.reply(req.formatted)


@dataclass
class Measured:
    input_tokens: list[int] = field(default_factory=list)
    output_tokens: list[int] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)
    tool_tokens: list[int] = field(default_factory=list)
    """The tool definitions' share of each main model call."""
    widened: int = 0
    finals: list[str] = field(default_factory=list)


def _widened(bodies: list[dict[str, Any]]) -> bool:
    return any(
        call["function"]["name"] == MORE_TOOLS
        for body in bodies
        for message in body["messages"]
        for call in message.get("tool_calls") or ()
    )


async def measure(corpus: tuple[Request, ...], intent: str, data_dir: Path) -> Measured:
    out = Measured()
    async with FakeOpenAI(LLMScript()) as fake:
        agent = make_agent(fake.base_url, data_dir, intent)
        try:
            for i, req in enumerate(corpus):
                seen = len(fake.script.requests)
                script_request(fake.script, req, intent)
                ctx = BenchRun(_inbound(i, req.text))
                finals = [o.text async for o in agent.run(ctx) if o.final and not o.typing]
                fake.script.assert_done()
                bodies = [q.body for q in fake.script.requests[seen:]]
                out.finals.append(finals[-1])
                out.input_tokens.append(sum(u.input_tokens for u in ctx.usage))
                out.output_tokens.append(sum(u.output_tokens for u in ctx.usage))
                out.calls.append(len(bodies))
                out.tool_tokens.extend(len(orjson.dumps(b["tools"])) // 4 for b in bodies if "tools" in b)
                out.widened += _widened(bodies)
        finally:
            await agent.aclose()
    return out


def _inbound(i: int, text: str) -> Inbound:
    return Inbound(
        kind="message",
        sender=Sender(id=f"u{i}"),
        text=text,
        platform_id=f"m{i}",
        reply_to_platform_id=f"m{i}",
        conversation=ConversationRef(channel="bench", chat=f"c{i}"),
    )


def figures(off: Measured, on: Measured, n: int) -> dict[str, Any]:
    total_off, total_on = sum(off.input_tokens), sum(on.input_tokens)
    return {
        "requests": n,
        "input_tokens_per_request_off": round(total_off / n, 1),
        "input_tokens_per_request_auto": round(total_on / n, 1),
        "input_tokens_saved_pct": round(100 * (1 - total_on / total_off), 1),
        "input_tokens_saved_pct_not_widened": round(
            100
            * (
                1
                - sum(b for b, r in zip(on.input_tokens, CORPUS, strict=False) if not r.widen)
                / sum(a for a, r in zip(off.input_tokens, CORPUS, strict=False) if not r.widen)
            ),
            1,
        ),
        "median_request_saved_pct": round(
            statistics.median(100 * (1 - b / a) for a, b in zip(off.input_tokens, on.input_tokens, strict=True)), 1
        ),
        "output_tokens_per_request_off": round(sum(off.output_tokens) / n, 1),
        "output_tokens_per_request_auto": round(sum(on.output_tokens) / n, 1),
        "model_calls_per_request_off": round(sum(off.calls) / n, 2),
        "model_calls_per_request_auto": round(sum(on.calls) / n, 2),
        "tool_definition_tokens_per_call_off": round(statistics.fmean(off.tool_tokens), 1),
        "tool_definition_tokens_per_call_auto": round(statistics.fmean(on.tool_tokens), 1),
        "widened": on.widened,
        "formatting_calls": sum(1 for r in CORPUS[:n] if r.formatted is not None),
    }


async def main_async(n: int) -> dict[str, Any]:
    corpus = CORPUS[:n]
    with tempfile.TemporaryDirectory() as tmp:
        off = await measure(corpus, "off", Path(tmp) / "off")
        on = await measure(corpus, "auto", Path(tmp) / "auto")
    for req, a, b, final in zip(corpus, off.input_tokens, on.input_tokens, on.finals, strict=True):
        note = " (widened)" if req.widen else ""
        print(f"{a:5d} → {b:5d} input tokens  {','.join(req.picked) or '-':12s} {req.text[:60]}{note}")
        assert req.formatted is None or final == req.formatted, final
    return figures(off, on, len(corpus))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=len(CORPUS), help="the first N requests of the corpus")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the tools' own warnings (a denied call) are expected here
    result = asyncio.run(main_async(max(1, min(args.requests, len(CORPUS)))))
    print(
        f"input tokens per request: {result['input_tokens_per_request_off']} with intent off, "
        f"{result['input_tokens_per_request_auto']} with auto ({result['input_tokens_saved_pct']} % fewer); "
        f"model calls per request {result['model_calls_per_request_off']} → {result['model_calls_per_request_auto']}; "
        f"{result['widened']} of {result['requests']} widened"
    )
    emit(result)


if __name__ == "__main__":
    main()
