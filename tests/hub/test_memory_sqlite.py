"""The ``sqlite`` memory backend (hub/memory/sqlite.py) and reciprocal rank fusion (issue 25)."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from hub.memory import MemoryBackend, Scope, ScopeDenied, reciprocal_rank_fusion
from hub.memory.sqlite import SqliteMemory
from hub.messages import ConversationRef

ALICE = Scope.user("telegram", "100")
BOB = Scope.user("telegram", "200")
ALICE_SLACK = Scope.user("slack", "100")  # same platform id on another channel: another user
ROOM = Scope.conversation(ConversationRef(channel="telegram", chat="-5"))


@pytest.fixture
async def memory(tmp_path: Path) -> AsyncIterator[SqliteMemory]:
    async with SqliteMemory(tmp_path / "data" / "memory.db") as backend:
        yield backend


async def test_is_a_memory_backend_registered_as_sqlite() -> None:
    (ep,) = [ep for ep in entry_points(group="autohands.memory") if ep.name == "sqlite"]
    assert ep.load() is SqliteMemory
    assert isinstance(SqliteMemory(Path("unused.db")), MemoryBackend)


async def test_opens_lazily(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    backend = SqliteMemory(path)
    assert not path.exists()
    await backend.list(scopes=[ALICE])
    assert path.exists()
    await backend.close()
    await backend.close()
    with pytest.raises(RuntimeError, match="closed"):
        await backend.list(scopes=[ALICE])


async def test_store_get_list_delete(memory: SqliteMemory) -> None:
    first = await memory.store("My cat is called Miso", scope=ALICE, source="remember", scopes=[ALICE])
    second = await memory.store(
        "I work at the bakery", scope=ALICE, source="remember", scopes=[ALICE], metadata={"lang": "en"}
    )
    assert await memory.get(first.id, scopes=[ALICE]) == first
    assert (await memory.get(second.id, scopes=[ALICE])) == second
    assert second.metadata == {"lang": "en"}
    assert [m.id for m in await memory.list(scopes=[ALICE])] == [second.id, first.id]
    assert await memory.delete(first.id, scopes=[ALICE])
    assert not await memory.delete(first.id, scopes=[ALICE])
    assert await memory.get(first.id, scopes=[ALICE]) is None
    assert await memory.search("Miso", scopes=[ALICE]) == []
    assert [m.id for m in await memory.list(scopes=[ALICE])] == [second.id]


async def test_search_ranks_the_more_relevant_first(memory: SqliteMemory) -> None:
    scopes = [ALICE]
    await memory.store("We went to the beach last summer", scope=ALICE, source="remember", scopes=scopes)
    weak = await memory.store("The garden needs water; the dog likes water too", scope=ALICE, source="t", scopes=scopes)
    strong = await memory.store(
        "Alice is allergic to peanuts and peanut butter", scope=ALICE, source="t", scopes=scopes
    )
    other = await memory.store("Peanuts are a snack", scope=ALICE, source="t", scopes=scopes)
    hits = await memory.search("is Alice allergic to peanuts?", scopes=scopes)
    assert [hit.memory.id for hit in hits][:2] == [strong.id, other.id]
    assert all(hit.via == "fulltext" for hit in hits)
    assert hits[0].score > hits[1].score
    assert weak.id not in [hit.memory.id for hit in hits]
    assert len(await memory.search("peanuts", scopes=scopes, limit=1)) == 1


async def test_scopes_never_cross(memory: SqliteMemory) -> None:
    alice = await memory.store("secret plan: surprise party", scope=ALICE, source="remember", scopes=[ALICE])
    bob = await memory.store("secret plan: new job", scope=BOB, source="remember", scopes=[BOB])
    await memory.store("secret plan: on slack", scope=ALICE_SLACK, source="remember", scopes=[ALICE_SLACK])
    assert [h.memory.id for h in await memory.search("secret plan", scopes=[BOB])] == [bob.id]
    assert await memory.get(alice.id, scopes=[BOB]) is None
    assert not await memory.delete(alice.id, scopes=[BOB, ROOM])
    assert [m.id for m in await memory.list(scopes=[BOB])] == [bob.id]
    assert await memory.get(alice.id, scopes=[ALICE]) == alice
    for call in (memory.search("plan", scopes=[]), memory.list(scopes=[]), memory.get(alice.id, scopes=[])):
        assert not await call
    with pytest.raises(ScopeDenied):
        await memory.store("planted", scope=ALICE, source="remember", scopes=[BOB])
    with pytest.raises(ScopeDenied):
        await memory.delete_scope(ALICE, scopes=[BOB])
    assert len(await memory.list(scopes=[ALICE])) == 1


async def test_shared_and_conversation_scopes(memory: SqliteMemory) -> None:
    shared = await memory.store(
        "The office opens at nine", scope=Scope.shared(), source="operator", scopes=[Scope.shared()]
    )
    room = await memory.store("This room plans the office party", scope=ROOM, source="remember", scopes=[ROOM])
    visible = [ALICE, ROOM, Scope.shared()]
    assert {h.memory.id for h in await memory.search("office", scopes=visible)} == {shared.id, room.id}
    assert [h.memory.id for h in await memory.search("office", scopes=[BOB, Scope.shared()])] == [shared.id]


async def test_delete_scope_removes_one_users_memories_only(memory: SqliteMemory) -> None:
    for n in range(3):
        await memory.store(f"alice fact {n}", scope=ALICE, source="remember", scopes=[ALICE])
    bob = await memory.store("bob fact", scope=BOB, source="remember", scopes=[BOB])
    slack = await memory.store("alice on slack", scope=ALICE_SLACK, source="remember", scopes=[ALICE_SLACK])
    room = await memory.store("room fact", scope=ROOM, source="remember", scopes=[ROOM])
    assert await memory.delete_scope(ALICE, scopes=[ALICE, ROOM]) == 3
    assert await memory.list(scopes=[ALICE]) == []
    assert await memory.search("alice fact", scopes=[ALICE]) == []
    remaining = await memory.list(scopes=[BOB, ALICE_SLACK, ROOM])
    assert {m.id for m in remaining} == {bob.id, slack.id, room.id}
    assert await memory.delete_scope(ALICE, scopes=[ALICE]) == 0


@pytest.mark.parametrize(
    "query",
    [
        '"',
        'say "hi',
        "peanut*",
        "*",
        "peanut NEAR butter",
        "NEAR(peanut butter)",
        "-peanut",
        "peanut OR",
        "AND",
        "text:peanut",
        "^peanut",
        "(peanut",
        "{text}: x",
        "'; DROP TABLE memories; --",
        "",
    ],
)
async def test_fts_syntax_in_a_query_is_text(memory: SqliteMemory, query: str) -> None:
    await memory.store('peanut butter, NEAR the "door" - said AND', scope=ALICE, source="t", scopes=[ALICE])
    hits = await memory.search(query, scopes=[ALICE])
    assert len(hits) <= 1
    assert len(await memory.list(scopes=[ALICE])) == 1


async def test_operator_words_match_as_words(memory: SqliteMemory) -> None:
    near = await memory.store("we met NEAR the station", scope=ALICE, source="t", scopes=[ALICE])
    await memory.store("far away", scope=ALICE, source="t", scopes=[ALICE])
    assert [h.memory.id for h in await memory.search("NEAR", scopes=[ALICE])] == [near.id]
    assert [h.memory.id for h in await memory.search('"station', scopes=[ALICE])] == [near.id]
    assert [h.memory.id for h in await memory.search("-station*", scopes=[ALICE])] == [near.id]


async def test_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    async with SqliteMemory(path) as backend:
        await backend.store("x", scope=ALICE, source="t", scopes=[ALICE])
        for file in (path, path.with_name("memory.db-wal")):
            assert stat.S_IMODE(file.stat().st_mode) == 0o600
    async with SqliteMemory(path) as backend:
        assert len(await backend.list(scopes=[ALICE])) == 1


def test_scope_values() -> None:
    assert ALICE.key == "telegram:100" and ALICE != ALICE_SLACK
    assert ROOM == Scope("conversation", "telegram:-5")
    assert Scope.shared() == Scope("global")
    with pytest.raises(ValueError, match="needs a key"):
        Scope("user")
    with pytest.raises(ValueError, match="has no key"):
        Scope("global", "x")
    with pytest.raises(ValueError, match="kind"):
        Scope("team", "x")  # type: ignore[arg-type]  # the check for untyped callers


def test_rrf_on_hand_checked_lists() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "c", "d"]])
    assert [item for item, _ in fused] == ["b", "c", "a", "d"]
    scores = dict(fused)
    assert scores["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 62)
    assert scores["a"] == pytest.approx(1 / 61)
    assert scores["d"] == pytest.approx(1 / 63)


def test_rrf_ties_duplicates_and_k() -> None:
    assert reciprocal_rank_fusion([["x", "y"], ["y", "x"]]) == [("x", 1 / 61 + 1 / 62), ("y", 1 / 62 + 1 / 61)]
    assert reciprocal_rank_fusion([["x", "x", "y"]], k=0) == [("x", 1.0), ("y", 1 / 3)]
    assert reciprocal_rank_fusion([]) == []
    with pytest.raises(ValueError, match="k"):
        reciprocal_rank_fusion([["x"]], k=-1)


async def test_scope_tokens_match_any_key(memory: SqliteMemory) -> None:
    """The FTS scope token is computed in SQL and in Python alike, whatever the key holds."""
    odd = [Scope("user", "telegram:Ünïcødé-用户"), Scope("conversation", 'slack:C1:17.2 "x" OR y'), Scope.shared()]
    for scope in odd:
        await memory.store("the green umbrella is in the car", scope=scope, source="t", scopes=[scope])
    for scope in odd:
        hits = await memory.search("green umbrella", scopes=[scope])
        assert [h.memory.scope for h in hits] == [scope]


async def test_stop_words_do_not_match_but_a_query_of_them_alone_still_searches(memory: SqliteMemory) -> None:
    sister = await memory.store("My sister Ana lives in Lisbon", scope=ALICE, source="t", scopes=[ALICE])
    await memory.store("Where does the time go, my friend", scope=ALICE, source="t", scopes=[ALICE])
    hits = await memory.search("where does my sister live?", scopes=[ALICE])
    assert [h.memory.id for h in hits] == [sister.id]  # "where", "does", "my" match nothing
    assert await memory.search("what is the weather like today", scopes=[ALICE]) == []
    assert len(await memory.search("where does", scopes=[ALICE])) == 1  # nothing but stop words


async def test_words_match_by_stem(memory: SqliteMemory) -> None:
    run = await memory.store("I go running every morning", scope=ALICE, source="t", scopes=[ALICE])
    assert [h.memory.id for h in await memory.search("when do I run?", scopes=[ALICE])] == [run.id]
