"""Per-call approval rules: the tool's own assessment, the whole call in the question, approvals
a conversation keeps, and runs nobody watches that never ask."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agents.approvals import GRANT_SETTING, question_text, visible
from agents.providers.base import ToolResultsMessage
from agents.tools.base import Approval, Risk, Tool, ToolContext
from hub.errors import ToolDenied
from hub.messages import JobInfo
from tests.agents.fake_run_context import FakeRunContext, approve_button, collect, inbound
from tests.agents.scripted import ScriptedProvider, call
from tests.agents.test_approvals import Counter, run_answering
from tests.agents.test_runtime import make_agent, make_tool

DUE = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def assessed(assess: Any, *, risk: Risk = Risk.LOW) -> tuple[Tool, Counter]:
    counter = Counter()
    tool = make_tool("delete", counter, risk=risk)
    return Tool(
        name=tool.name,
        description=tool.description,
        parameters=tool.parameters,
        invoke=tool.invoke,
        risk=risk,
        assess=assess,
    ), counter


def results(provider: ScriptedProvider, turn: int = 1) -> list[Any]:
    message = provider.requests[turn].messages[-1]
    assert isinstance(message, ToolResultsMessage)
    return list(message.results)


def job_inbound(*granted: str) -> Any:
    return inbound(
        "[scheduled]",
        kind="job",
        platform_id="job:x:1",
        job=JobInfo(job_id="x", action="agent", due_at=DUE, granted_tools=granted),
    )


def test_the_question_shows_every_argument_whole_and_what_runs() -> None:
    command = "sort " + " ".join(f"file{i:03d}.txt" for i in range(40)) + " --compress-program=sh"
    tool = make_tool("run_command", Counter(), risk=Risk.HIGH)
    detail = "runs exactly:\n" + "\n".join(f"{i}. {a}" for i, a in enumerate(command.split(), 1))
    text = question_text(tool, {"command": command}, Approval(reason="it runs in the sandbox", detail=detail))
    assert len(command) > 400 and f'command: "{command}"' in text
    assert "…" not in text and text.count("--compress-program=sh") == 2
    assert text.startswith("Approve running run_command? It runs in the sandbox.")


def test_the_question_shows_multiline_values_line_by_line_and_invisible_characters() -> None:
    tool = make_tool("write_file", Counter(), risk=Risk.HIGH)
    text = question_text(tool, {"path": "evil\u202etxt.sh", "content": "one\ntwo\u200b"}, Approval(reason="x"))
    assert 'path: "evil\\u202etxt.sh"' in text  # a right-to-left override cannot hide the real name
    assert "content (8 characters, 2 lines):\n  | one\n  | two\\u200b" in text
    assert visible("plain text") == "plain text"


async def test_assess_refusing_a_call_asks_nobody() -> None:
    def refuse(args: dict[str, Any], ctx: ToolContext) -> Approval | None:
        raise ToolDenied("'sh' is not an allowed command")

    tool, counter = assessed(refuse, risk=Risk.HIGH)
    provider = ScriptedProvider().tool_calls(call("delete", {"path": "x"}, id="1")).reply("ok")
    ctx = FakeRunContext()
    await collect(make_agent(provider, tool), ctx)
    assert ctx.asked == [] and counter.runs == 0
    [result] = results(provider)
    assert result.is_error and "'sh' is not an allowed command" in result.content


async def test_a_kept_approval_is_asked_once_per_conversation_and_stored() -> None:
    def per_host(args: dict[str, Any], ctx: ToolContext) -> Approval | None:
        return Approval(reason=f"first request to {args['path']}", remember_as=f"egress:{args['path']}")

    tool, counter = assessed(per_host)
    provider = (
        ScriptedProvider()
        .tool_calls(call("delete", {"path": "a.example"}, id="1"))
        .tool_calls(call("delete", {"path": "a.example"}, id="2"), call("delete", {"path": "b.example"}, id="3"))
        .reply("ok")
    )
    ctx = FakeRunContext()
    await run_answering(make_agent(provider, tool), ctx, approve_button, approve_button)
    assert counter.runs == 3
    assert [q.text.splitlines()[0] for q in ctx.asked] == [
        "Approve running delete? First request to a.example.",
        "Approve running delete? First request to b.example.",
    ]
    assert ctx.settings == {f"{GRANT_SETTING}egress:a.example": "yes", f"{GRANT_SETTING}egress:b.example": "yes"}

    # A later run in the same conversation starts with what was kept.
    provider = ScriptedProvider().tool_calls(call("delete", {"path": "b.example"}, id="4")).reply("ok")
    later = FakeRunContext(settings=ctx.settings)
    await collect(make_agent(provider, tool), later)
    assert later.asked == [] and counter.runs == 4


async def test_a_job_run_never_asks_and_is_denied_at_once() -> None:
    tool, counter = assessed(None, risk=Risk.HIGH)
    provider = ScriptedProvider().tool_calls(call("delete", {"path": "x"}, id="1")).reply("ok")
    ctx = FakeRunContext(job_inbound())
    await collect(make_agent(provider, tool, approval_timeout_seconds=3600), ctx)  # would hang if it asked
    assert ctx.asked == [] and counter.runs == 0
    [result] = results(provider)
    assert result.is_error and "nobody is watching this run" in result.content


async def test_a_job_run_uses_the_tools_granted_at_creation_only() -> None:
    high, counter = assessed(None, risk=Risk.HIGH)

    def never_grantable(args: dict[str, Any], ctx: ToolContext) -> Approval | None:
        return Approval(reason="the URL carries text the model read", grantable=False)

    fetch = Tool(
        name="fetch",
        description="f",
        parameters={"type": "object", "properties": {}},
        invoke=Counter(),
        assess=never_grantable,
    )
    provider = (
        ScriptedProvider()
        .tool_calls(call("delete", {"path": "x"}, id="1"), call("fetch", {"path": "y"}, id="2"))
        .reply("ok")
    )
    ctx = FakeRunContext(job_inbound("delete", "fetch"))
    await collect(make_agent(provider, high, fetch), ctx)
    assert ctx.asked == [] and counter.runs == 1
    deleted, fetched = results(provider)
    assert not deleted.is_error and fetched.is_error and "nobody is watching" in fetched.content


async def test_what_tools_read_is_exposure_for_later_calls_in_the_run() -> None:
    seen: list[bool] = []

    async def read(args: dict[str, Any], ctx: ToolContext) -> str:
        return "the password is swordfish-42"

    def watch(args: dict[str, Any], ctx: ToolContext) -> Approval | None:
        seen.append(ctx.exposure.contains("swordfish-42"))
        return None

    reader = Tool(
        name="read",
        description="r",
        parameters={"type": "object", "properties": {}},
        invoke=read,
        permissions=("fs.read",),
    )
    sender = Tool(
        name="send", description="s", parameters={"type": "object", "properties": {}}, invoke=Counter(), assess=watch
    )
    provider = (
        ScriptedProvider()
        .tool_calls(call("send", {"path": "1"}, id="1"))
        .tool_calls(call("read", {}, id="2"))
        .tool_calls(call("send", {"path": "2"}, id="3"))
        .reply("ok")
    )
    await collect(make_agent(provider, reader, sender), FakeRunContext())
    assert seen == [False, True]
