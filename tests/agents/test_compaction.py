"""Compaction: cut only at user messages, keep tool call/result pairs, summarise with one call."""

from __future__ import annotations

import random

from agents import history
from agents.compaction import compact, estimate_tokens, find_cut, transcript
from agents.providers.base import AssistantMessage, ToolResult, ToolResultsMessage, UserMessage
from hub.agent import HistoryItem
from tests.agents.fake_run_context import FakeRunContext, collect
from tests.agents.scripted import ScriptedProvider, call
from tests.agents.test_runtime import make_agent


def user(text: str) -> HistoryItem:
    return history.encode(UserMessage(text=text))


def assistant(text: str = "", *calls: str) -> HistoryItem:
    tool_calls = tuple(call("add", {"n": c}, id=c) for c in calls)
    return history.encode(AssistantMessage(text=text, tool_calls=tool_calls))


def results(*ids: str) -> HistoryItem:
    return history.encode(
        ToolResultsMessage(results=tuple(ToolResult(call_id=i, name="add", content="r" * 200) for i in ids))
    )


def conversation(turns: int, *, tools_every: int = 2) -> list[HistoryItem]:
    items: list[HistoryItem] = []
    for t in range(turns):
        items.append(user(f"question {t} " + "x" * 400))
        if t % tools_every == 0:
            items += [assistant("", f"c{t}a", f"c{t}b"), results(f"c{t}a", f"c{t}b")]
        items.append(assistant(f"answer {t} " + "y" * 400))
    return items


def pairs_intact(items: list[HistoryItem]) -> bool:
    """Every assistant tool-call item is directly followed by the results of exactly its calls."""
    for i, it in enumerate(items):
        if it.kind == "assistant" and it.data["tool_calls"]:
            if i + 1 >= len(items) or items[i + 1].kind != "tool_results":
                return False
            ids = [c["id"] for c in it.data["tool_calls"]]
            if [r["call_id"] for r in items[i + 1].data["results"]] != ids:
                return False
        if it.kind == "tool_results" and (i == 0 or items[i - 1].kind != "assistant"):
            return False
    return True


def test_find_cut_lands_on_a_user_message_and_keeps_at_least_k() -> None:
    rng = random.Random(7)
    for _ in range(200):
        items = conversation(rng.randint(1, 12), tools_every=rng.randint(1, 3))
        keep = rng.randint(1, 10)
        cut = find_cut(items, keep)
        if cut:
            assert items[cut].kind == "user"
            assert pairs_intact(items[cut:])
            before = [i for i in range(1, len(items) - keep + 1) if items[i].kind == "user"]
            if before:
                assert len(items) - cut >= keep


def test_find_cut_refuses_when_there_is_nothing_to_summarise() -> None:
    assert find_cut(conversation(2), 50) == 0
    one_run = [user("go"), assistant("", "a"), results("a"), assistant("", "b"), results("b"), assistant("ok")]
    assert find_cut(one_run, 2) == 0  # a single user turn cannot be cut
    assert find_cut([history.summary_item("s", 4), user("q"), assistant("a"), user("q2")], 1) == 3
    assert find_cut([history.summary_item("s", 4), user("q"), assistant("a")], 1) == 0


def test_estimate_grows_with_content_and_tools() -> None:
    small = estimate_tokens("sys", [UserMessage(text="hi")])
    big = estimate_tokens("sys", history.decode(conversation(10)))
    assert 0 < small < big
    assert big > sum(len(str(i.data)) for i in conversation(10)) // 5


async def test_compact_summarises_the_old_part_in_one_call() -> None:
    items = conversation(6)
    provider = ScriptedProvider().reply("The user asked six questions.")
    result = await compact(items, provider=provider, model=None, keep_recent=4, max_tokens=256)
    assert result is not None
    new = result.history
    assert new[0].kind == "summary" and new[0].data["text"] == "The user asked six questions."
    assert new[1].kind == "user" and pairs_intact(new[1:]) and len(new) - 1 >= 4
    assert new[1:] == items[new[0].data["replaced"] :]
    request = provider.requests[0]
    assert request.tools == () and "Summarise this conversation" in request.messages[0].text  # type: ignore[union-attr]
    assert "Assistant called add" in request.messages[0].text  # type: ignore[union-attr]
    provider.assert_done()


async def test_run_compacts_history_over_budget_and_keeps_tool_pairs() -> None:
    items = conversation(12)
    provider = ScriptedProvider().reply("Summary of earlier talk.").reply("Fresh answer.")
    compaction = {"context_window": 2048, "keep_recent": 6, "budget_fraction": 0.5}
    agent = make_agent(provider, compaction=compaction)
    ctx = FakeRunContext(history=items)
    out = await collect(agent, ctx)

    assert out[-1].text == "Fresh answer."
    assert ctx.replaced is not None and ctx.replaced[0].kind == "summary"
    assert pairs_intact(ctx.new_history)
    assert [i.kind for i in ctx.remembered] == ["user", "assistant"]
    request = provider.requests[1]
    first = request.messages[0]
    assert isinstance(first, UserMessage) and first.text.startswith(history.SUMMARY_PREFIX)
    assert len(ctx.usage) == 2  # the summary call is recorded too
    provider.assert_done()


async def test_run_under_budget_does_not_compact() -> None:
    provider = ScriptedProvider().reply("ok")
    ctx = FakeRunContext(history=conversation(2))
    await collect(make_agent(provider), ctx)
    assert ctx.replaced is None and len(provider.requests) == 1


async def test_failed_summary_call_leaves_history_and_still_answers() -> None:
    from agents.providers.errors import ServerError

    provider = ScriptedProvider().fail(ServerError("boom", status=500)).reply("Answer anyway.")
    agent = make_agent(provider, compaction={"context_window": 2048, "keep_recent": 2})
    ctx = FakeRunContext(history=conversation(12))
    out = await collect(agent, ctx)
    assert out[-1].text == "Answer anyway." and ctx.replaced is None


def test_transcript_caps_long_parts() -> None:
    text = transcript([user("z" * 10_000), assistant("", "a"), results("a")])
    assert len(text) < 5000 and "Result of add" in text


def test_history_roundtrip_and_repair() -> None:
    msgs = history.decode(conversation(3))
    assert [history.encode(m) for m in msgs] and history.decode([history.encode(m) for m in msgs]) == msgs
    broken = [
        user("a"),
        assistant("", "x", "y"),
        results("x"),
        user("b"),
        results("zz"),
        user("c"),
        HistoryItem(kind="mystery", data={}),
        HistoryItem(kind="user", data={}),
    ]
    repaired = history.decode(broken)
    tool_msg = repaired[2]
    assert isinstance(tool_msg, ToolResultsMessage)
    assert [r.call_id for r in tool_msg.results] == ["x", "y"] and tool_msg.results[1].is_error
    assert repaired[3] == UserMessage(text="b\n\nc")  # orphan results dropped, users merged
    assert len(repaired) == 4
