"""Memory in the agent: the tools act for the asking user only, automatic recall fills the user
turn within its budget (the system prompt unchanged), compaction keeps its summary, and the
hub's ``/memory`` and ``/forget`` commands (issue 25)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agents.config import AgentConfig
from agents.memory import AgentMemory
from agents.providers.base import UserMessage
from agents.runtime import LLMAgent, ResolvedModel, default_tool_context
from agents.tools.base import Tool, ToolContext, ToolRegistry
from agents.tools.config import ToolsConfig
from agents.tools.memory import memory_tools
from hub.commands import CommandCall, CommandRegistry
from hub.memory._terms import query_terms
from hub.memory.access import IdentityLinks, MemoryAccess, Visibility
from hub.memory.base import Hit, Memory, Scope
from hub.memory.commands import register_memory_commands
from hub.memory.config import MemoryConfig
from hub.memory.recall import RECALL_HEADER, estimate_tokens, meaningful_stems, relevant
from hub.memory.sqlite import SqliteMemory
from hub.messages import ConversationRef, Inbound, Sender
from tests.agents.fake_run_context import CONV, FakeRunContext, collect, inbound
from tests.agents.scripted import ScriptedProvider
from tests.agents.test_compaction import conversation
from tests.hub.test_pairing import NoSession

ADA = Sender(id="u1", name="Ada")
BOB = Sender(id="u2", name="Bob")
OTHER_CHAT = ConversationRef(channel="test", chat="chat-2")


@pytest.fixture
async def access(tmp_path: Path) -> AsyncIterator[MemoryAccess]:
    links = IdentityLinks({"ada": ["test:u1", "slack:UADA"]})
    memory = MemoryAccess(SqliteMemory(tmp_path / "memory.db"), name="sqlite", links=links)
    yield memory
    await memory.close()


def agent_memory(access: MemoryAccess, **config: Any) -> AgentMemory:
    return AgentMemory(access, MemoryConfig.model_validate(config))


def make_agent(provider: ScriptedProvider, memory: AgentMemory, tmp_path: Path, **cfg: Any) -> LLMAgent:
    registry = ToolRegistry()
    registry.extend(memory_tools(memory))
    config = AgentConfig.model_validate({"stream": False, **cfg})
    return LLMAgent(
        lambda setting: ResolvedModel(provider, None, None),
        registry,
        config,
        tool_context=default_tool_context(tmp_path / "ws"),
        memory=memory,
    )


def tool_context(sender: Sender, conversation: ConversationRef = CONV) -> ToolContext:
    return ToolContext(conversation=conversation, sender=sender, workspace=Path("/nonexistent"), config=ToolsConfig())


def tools(memory: AgentMemory) -> dict[str, Tool]:
    return {t.name: t for t in memory_tools(memory)}


def me(access: MemoryAccess, sender: Sender = ADA, channel: str = "test") -> Visibility:
    return access.for_user(channel, sender.id, CONV)


async def test_tools_remember_recall_and_forget_for_the_asking_user_only(access: MemoryAccess) -> None:
    t = tools(agent_memory(access))
    saved = json.loads(await t["remember"].invoke({"text": "My sister Ana lives in Lisbon"}, tool_context(ADA)))
    found = json.loads(await t["recall"].invoke({"query": "where does Ana live"}, tool_context(ADA)))
    assert [f["id"] for f in found] == [saved["id"]] and found[0]["whose"] == "user"

    # Bob, in the same chat on the same channel, finds nothing and cannot delete Ada's memory
    assert json.loads(await t["recall"].invoke({"query": "Ana Lisbon"}, tool_context(BOB))) == []
    with pytest.raises(Exception, match="no memory"):
        await t["forget"].invoke({"memory_id": saved["id"]}, tool_context(BOB))
    assert await access.backend.get(saved["id"], scopes=me(access).readable) is not None

    assert "forgot" in await t["forget"].invoke({"memory_id": saved["id"]}, tool_context(ADA))
    assert await access.list(me(access)) == []


async def test_linked_identities_share_memories_across_channels(access: MemoryAccess) -> None:
    t = tools(agent_memory(access))
    await t["remember"].invoke({"text": "Ada prefers tea over coffee"}, tool_context(ADA))
    on_slack = tool_context(Sender(id="UADA"), ConversationRef(channel="slack", chat="D1"))
    found = json.loads(await t["recall"].invoke({"query": "tea or coffee"}, on_slack))
    assert [f["text"] for f in found] == ["Ada prefers tea over coffee"]
    # someone else on Slack does not see it
    stranger = tool_context(Sender(id="UOTHER"), ConversationRef(channel="slack", chat="D2"))
    assert json.loads(await t["recall"].invoke({"query": "tea coffee"}, stranger)) == []


async def test_conversation_memories_stay_in_their_chat(access: MemoryAccess) -> None:
    t = tools(agent_memory(access))
    await t["remember"].invoke({"text": "The release is on Friday", "about": "conversation"}, tool_context(ADA))
    assert json.loads(await t["recall"].invoke({"query": "release Friday"}, tool_context(BOB)))  # same chat
    elsewhere = tool_context(ADA, OTHER_CHAT)
    assert json.loads(await t["recall"].invoke({"query": "release Friday"}, elsewhere)) == []


async def test_bad_tool_arguments_are_reported(access: MemoryAccess) -> None:
    t = tools(agent_memory(access))
    with pytest.raises(Exception, match="empty"):
        await t["remember"].invoke({"text": "   "}, tool_context(ADA))
    with pytest.raises(Exception, match="2000"):
        await t["remember"].invoke({"text": "x" * 2001}, tool_context(ADA))


async def test_automatic_recall_fills_the_user_turn_and_leaves_the_system_prompt(
    access: MemoryAccess, tmp_path: Path
) -> None:
    provider = ScriptedProvider().reply("first").reply("second")
    agent = make_agent(provider, agent_memory(access), tmp_path)
    await collect(agent, FakeRunContext(inbound("where does my sister live?")))
    await access.remember(me(access), "My sister Ana lives in Lisbon", source="remember")
    await access.remember(me(access, BOB), "Bob's sister lives in Porto", source="remember")
    await collect(agent, FakeRunContext(inbound("where does my sister live?")))

    before, after = provider.requests
    assert before.system == after.system  # byte-stable: memories never go into the system prompt
    first, second = before.messages[-1], after.messages[-1]
    assert isinstance(first, UserMessage) and RECALL_HEADER not in first.text
    assert isinstance(second, UserMessage) and RECALL_HEADER in second.text
    assert "Ana lives in Lisbon" in second.text and "Porto" not in second.text  # only Ada's


async def test_automatic_recall_keeps_within_its_token_budget(access: MemoryAccess, tmp_path: Path) -> None:
    for n in range(8):
        await access.remember(me(access), f"Project falcon note {n}: " + "detail " * 12, source="remember")
    provider = ScriptedProvider().reply("ok")
    agent = make_agent(provider, agent_memory(access, recall_tokens=60, recall_limit=8), tmp_path)
    await collect(agent, FakeRunContext(inbound("what about project falcon?")))
    message = provider.requests[0].messages[-1]
    assert isinstance(message, UserMessage)
    note = message.text[message.text.index(RECALL_HEADER) :]
    assert 0 < estimate_tokens(note) <= 60
    assert 1 <= note.count("\n- [") < 8


async def test_recall_off_adds_nothing(access: MemoryAccess, tmp_path: Path) -> None:
    await access.remember(me(access), "My sister Ana lives in Lisbon", source="remember")
    provider = ScriptedProvider().reply("ok")
    await collect(
        make_agent(provider, agent_memory(access, recall_tokens=0), tmp_path), FakeRunContext(inbound("sister"))
    )
    message = provider.requests[0].messages[-1]
    assert isinstance(message, UserMessage) and RECALL_HEADER not in message.text


@pytest.mark.parametrize("direct", [True, False])
async def test_compaction_keeps_its_summary_as_a_memory(access: MemoryAccess, tmp_path: Path, direct: bool) -> None:
    provider = ScriptedProvider().reply("Ada planned a trip to Kyoto in April.").reply("Fresh answer.")
    compaction = {"context_window": 2048, "keep_recent": 6, "budget_fraction": 0.5}
    agent = make_agent(provider, agent_memory(access, recall_tokens=0), tmp_path, compaction=compaction)
    ctx = FakeRunContext(inbound("and now?", direct=direct), history=conversation(12))
    await collect(agent, ctx)

    assert ctx.replaced is not None and ctx.replaced[0].kind == "summary"
    memories = await access.list(me(access))
    assert [(m.text, m.source) for m in memories] == [("Ada planned a trip to Kyoto in April.", "compaction")]
    assert memories[0].scope == (Scope.user("test", "u1") if direct else Scope.conversation(CONV))


async def command(registry: CommandRegistry, name: str, args: str, sender: Sender = ADA) -> str:
    found = registry.get(name)
    assert found is not None
    message = Inbound(kind="command", conversation=CONV, sender=sender, text=args, command=name, platform_id="x")
    answer = await found.handler(CommandCall(inbound=message, args=args, session=NoSession()))
    assert answer is not None
    return answer


async def test_forget_all_removes_everything_of_that_user_and_nothing_else(access: MemoryAccess) -> None:
    registry = CommandRegistry()
    register_memory_commands(registry, access)
    ada_here = await access.remember(me(access), "Ada likes jazz", source="remember")
    ada_slack = access.for_user("slack", "UADA")
    await access.remember(ada_slack, "Ada works at Acme", source="remember")
    bob = await access.remember(me(access, BOB), "Bob likes rock", source="remember")
    chat = await access.remember(
        me(access), "This chat plans the offsite", source="remember", scope=Scope.conversation(CONV)
    )
    shared = await access.backend.store(
        "The office is closed on Sundays", scope=Scope.shared(), source="operator", scopes=[Scope.shared()]
    )

    listing = await command(registry, "memory", "")
    assert ada_here.id in listing and chat.id in listing and shared.id in listing and bob.id not in listing
    assert "Acme" in listing  # the linked identity's memory too
    assert "Bob" not in await command(registry, "memory", "likes")

    assert await command(registry, "forget", "all") == "Forgot all 2 of your memories."
    everyone = await access.backend.scope_counts()
    assert dict((s, n) for s, n in everyone) == {
        Scope.user("test", "u2"): 1,
        Scope.conversation(CONV): 1,
        Scope.shared(): 1,
    }
    assert "No memory" in await command(registry, "forget", bob.id)  # Ada cannot forget Bob's
    assert await command(registry, "forget", bob.id, sender=BOB) == f"Forgot memory {bob.id}."
    assert "Usage" in await command(registry, "forget", "")


async def test_a_memory_already_recalled_in_the_history_is_not_added_again(
    access: MemoryAccess, tmp_path: Path
) -> None:
    lisbon = await access.remember(me(access), "My sister Ana lives in Lisbon", source="remember")
    provider = ScriptedProvider().reply("In Lisbon.").reply("She is a teacher.")
    agent = make_agent(provider, agent_memory(access), tmp_path)
    first = FakeRunContext(inbound("where does my sister Ana live?"))
    await collect(agent, first)
    teacher = await access.remember(me(access), "Ana works as a teacher", source="remember")
    await collect(agent, FakeRunContext(inbound("what does my sister Ana do?"), history=first.new_history))

    earlier, later = provider.requests[0].messages[-1], provider.requests[1].messages[-1]
    assert isinstance(earlier, UserMessage) and f"[{lisbon.id}]" in earlier.text
    assert isinstance(later, UserMessage) and f"[{teacher.id}]" in later.text
    assert f"[{lisbon.id}]" not in later.text  # still in the prompt from the first turn


def _hit(text: str, *, via: str = "fulltext", similarity: float | None = None, score: float = 1.0) -> Hit:
    memory = Memory(id="m1", scope=Scope.shared(), text=text, created_at=datetime.now(UTC), source="t")
    return Hit(memory=memory, score=score, via=via, similarity=similarity)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("message", "memory", "added"),
    [
        ("where does my sister Ana live?", "My sister Ana lives in Lisbon", True),  # two words
        ("do I bake?", "I've been baking bread every weekend", True),  # one word, one-word message
        ("is penicillin safe for me?", "I'm allergic to penicillin", True),  # a long, rare word
        ("what does Ferdinand fix", "Ferdinand repairs harpsichords", True),  # a name
        ("suggest a name for a grey cat", "The grey scarf belongs to my aunt", False),  # one common word
        ("hi!", "Felix starts his new job on the 10th", False),  # short words never count
        ("where does it go", "Where does the time go", False),  # stop words only
    ],
)
def test_automatic_recall_adds_only_memories_that_clear_the_bar(message: str, memory: str, added: bool) -> None:
    assert relevant(_hit(memory), meaningful_stems(query_terms(message)), min_similarity=0.45) is added


def test_with_embeddings_similarity_decides_too() -> None:
    words = meaningful_stems(query_terms("which city is she in?"))
    assert relevant(_hit("Ana lives in Lisbon", via="hybrid", similarity=0.6), words, min_similarity=0.45)
    assert not relevant(_hit("Ana lives in Lisbon", via="vector", score=0.2), words, min_similarity=0.45)
    assert relevant(_hit("Ana lives in Lisbon", via="vector", score=0.5), words, min_similarity=0.45)
