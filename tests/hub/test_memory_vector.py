"""The ``vector`` memory backend (hub/memory/vector.py) and the OpenAI-compatible embedder
(hub/memory/embeddings.py), against the fake OpenAI server's ``/v1/embeddings`` (issue 25)."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from openai import AsyncOpenAI

from hub.errors import ConfigError
from hub.memory import Hit, Memory, MemoryBackend, Scope, ScopeDenied
from hub.memory.base import EmbeddingRefused, EmbeddingUnavailable, MemoryOptions
from hub.memory.embeddings import OpenAIEmbedder
from hub.memory.vector import VectorMemory
from hub.messages import ConversationRef
from tests.fakes.embeddings import fake_embedding
from tests.fakes.llm_script import LLMScript
from tests.fakes.openai_server import FakeOpenAI

ALICE = Scope.user("telegram", "100")
BOB = Scope.user("telegram", "200")
ALICE_SLACK = Scope.user("slack", "100")  # same platform id on another channel: another user
ROOM = Scope.conversation(ConversationRef(channel="telegram", chat="-5"))
KEY = "sk-test-embeddings-0123456789"


class Clock:
    """Monotonic seconds that only move when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(LLMScript(api_key=KEY)) as server:
        yield server


def embedder(fake: FakeOpenAI, model: str = "fake-embed", **kwargs: int) -> OpenAIEmbedder:
    return OpenAIEmbedder(base_url=fake.base_url, api_key=KEY, model=model, timeout=5.0, **kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def memory(tmp_path: Path, fake: FakeOpenAI, clock: Clock) -> AsyncIterator[VectorMemory]:
    async with VectorMemory(tmp_path / "memory.db", embedder(fake), retry_seconds=30, clock=clock) as backend:
        yield backend


async def remember(memory: VectorMemory, text: str, scope: Scope = ALICE) -> Memory:
    return await memory.store(text, scope=scope, source="remember", scopes=[scope])


def ids(hits: Sequence[Hit]) -> list[str]:
    return [hit.memory.id for hit in hits]


async def test_registered_as_vector(tmp_path: Path, fake: FakeOpenAI) -> None:
    (ep,) = [ep for ep in entry_points(group="autohands.memory") if ep.name == "vector"]
    assert ep.load() is VectorMemory
    assert VectorMemory.manifest.id == "vector"
    assert set(VectorMemory.manifest.permissions) == {"fs.write", "net"}
    backend = VectorMemory.from_options(MemoryOptions(path=tmp_path / "m.db", embedder=embedder(fake)))
    assert isinstance(backend, MemoryBackend)
    await backend.close()


def test_needs_an_embedder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"memory\.embedding_provider and memory\.embedding_model"):
        VectorMemory.from_options(MemoryOptions(path=tmp_path / "m.db"))


async def test_embedder_answers_the_fakes_vectors_in_batches(fake: FakeOpenAI) -> None:
    client = embedder(fake, batch_size=2)
    texts = ["running late", "run", "photography", "x", "the cat sat"]
    vectors = await client.embed(texts)
    assert fake.embedding_requests == 3
    assert fake.script.requests[-1].body["encoding_format"] == "base64"  # what the SDK asks for
    for text, vector in zip(texts, vectors, strict=True):
        assert vector == pytest.approx(fake_embedding(text), abs=1e-6)
    assert await client.check() == "fake-embed, 256 dimensions"
    await client.aclose()
    await client.aclose()
    with pytest.raises(EmbeddingUnavailable, match="closed"):
        await client.embed(["x"])


async def test_fake_answers_floats_when_asked(fake: FakeOpenAI) -> None:
    async with AsyncOpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0) as client:
        answer = await client.embeddings.create(model="m", input="run", encoding_format="float")
    assert answer.data[0].embedding == pytest.approx(fake_embedding("run"))
    assert answer.model == "m" and answer.usage.total_tokens == 1


async def test_embedder_errors_are_one_line_without_the_key(fake: FakeOpenAI) -> None:
    fake.embeddings_down = True
    with pytest.raises(EmbeddingUnavailable, match="HTTP 503") as down:
        await embedder(fake).embed(["x"])
    fake.embeddings_down = False
    wrong = OpenAIEmbedder(base_url=fake.base_url, api_key="sk-wrong-key-0000000", model="m", timeout=5.0)
    with pytest.raises(EmbeddingUnavailable, match="HTTP 401") as refused:
        await wrong.embed(["x"])
    await wrong.aclose()
    unreachable = OpenAIEmbedder(base_url="http://127.0.0.1:9/v1", api_key=KEY, model="m", timeout=5.0)
    with pytest.raises(EmbeddingUnavailable, match="cannot connect") as gone:
        await unreachable.embed(["x"])
    await unreachable.aclose()
    fake.embeddings_refuse = "POISON"
    with pytest.raises(EmbeddingRefused, match=r"HTTP 400: .*maximum context length") as poisoned:
        await embedder(fake).embed(["fine", "POISON"])
    assert poisoned.value.status == 400
    for error in (down, refused, gone, poisoned):
        message = str(error.value)
        assert "\n" not in message and KEY not in message and "sk-wrong-key" not in message
    assert not any(isinstance(error.value, EmbeddingRefused) for error in (down, refused, gone))  # not the texts'


async def test_store_search_delete(memory: VectorMemory, fake: FakeOpenAI) -> None:
    cat = await remember(memory, "My cat is called Miso")
    work = await remember(memory, "I work at the bakery on Main Street")
    assert fake.embedding_requests == 2
    hits = await memory.search("Miso the cat", scopes=[ALICE])
    assert ids(hits)[0] == cat.id and hits[0].via == "hybrid"
    assert await memory.get(work.id, scopes=[ALICE]) == work
    assert await memory.delete(cat.id, scopes=[ALICE])
    assert cat.id not in ids(await memory.search("Miso the cat", scopes=[ALICE]))
    assert cat.id not in ids(await memory.search_vector("Miso the cat", scopes=[ALICE]))
    assert await memory.pending_count() == 0


async def test_hybrid_finds_related_words_and_ranks_the_doubly_found_first(memory: VectorMemory) -> None:
    hobby = await remember(memory, "Alice loves photography on weekends")
    both = await remember(memory, "The photographer at our wedding was Bob")
    await remember(memory, "The garden needs water every evening")
    assert ids(await memory.search_fulltext("photographer", scopes=[ALICE])) == [both.id]
    assert ids(await memory.search_vector("photographer", scopes=[ALICE]))[:2] == [both.id, hobby.id]
    hits = await memory.search("photographer", scopes=[ALICE], limit=2)
    assert ids(hits) == [both.id, hobby.id]
    assert [hit.via for hit in hits] == ["hybrid", "vector"]
    assert hits[0].score > hits[1].score


async def test_scopes_never_cross(memory: VectorMemory) -> None:
    # Bob's many near-duplicates would fill the top k if the scope filter came after it.
    for n in range(30):
        await remember(memory, f"secret plan number {n}: surprise party", scope=BOB)
    alice = await remember(memory, "my secret plans for the surprise")
    slack = await remember(memory, "secret plan: surprise party", scope=ALICE_SLACK)
    room = await remember(memory, "the room's secret plan: surprise party", scope=ROOM)
    for search in (memory.search, memory.search_vector, memory.search_fulltext):
        assert ids(await search("secret plan surprise party", scopes=[ALICE], limit=1)) == [alice.id]
        assert ids(await search("secret plan surprise party", scopes=[ALICE_SLACK], limit=3)) == [slack.id]
        found = await search("secret plan surprise party", scopes=[ALICE, ROOM], limit=5)
        assert set(ids(found)) == {alice.id, room.id}
        assert await search("secret plan", scopes=[]) == []
    with pytest.raises(ScopeDenied):
        await memory.store("planted", scope=ALICE, source="remember", scopes=[BOB])


async def test_endpoint_down_falls_back_to_full_text_then_catches_up(
    memory: VectorMemory, fake: FakeOpenAI, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hub.memory.vector")
    fake.embeddings_down = True
    kept = await remember(memory, "Alice loves photography")
    also = await remember(memory, "Bob is a photographer")
    assert fake.embedding_requests == 1  # the second store waited for the retry time
    assert await memory.pending_count() == 2
    for _ in range(3):
        hits = await memory.search("photographer", scopes=[ALICE])
        assert ids(hits) == [also.id] and hits[0].via == "fulltext"
    with pytest.raises(EmbeddingUnavailable):
        await memory.search_vector("photographer", scopes=[ALICE])
    clock.now += 31  # still down: one more try, no more warnings
    assert ids(await memory.search("photographer", scopes=[ALICE])) == [also.id]
    assert fake.embedding_requests == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "HTTP 503" in warnings[0].getMessage()

    fake.embeddings_down = False
    clock.now += 31
    hits = await memory.search("photographer", scopes=[ALICE])
    assert ids(hits) == [also.id, kept.id] and [hit.via for hit in hits] == ["hybrid", "vector"]
    assert await memory.pending_count() == 0
    assert ["memory embeddings are back" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        True
    ]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


async def test_catching_up_is_bounded_per_call(tmp_path: Path, fake: FakeOpenAI) -> None:
    fake.embeddings_down = True
    async with VectorMemory(tmp_path / "m.db", embedder(fake), retry_seconds=0, catch_up_limit=2) as memory:
        for n in range(5):
            await remember(memory, f"fact number {n}")
        fake.embeddings_down = False
        await memory.search("fact", scopes=[ALICE])
        assert await memory.pending_count() == 3
        await remember(memory, "one more fact")
        assert await memory.pending_count() == 1


async def test_other_models_vectors_are_ignored_and_replaced(tmp_path: Path, fake: FakeOpenAI) -> None:
    path = tmp_path / "m.db"
    async with VectorMemory(path, embedder(fake, "old-model")) as memory:
        first = await remember(memory, "Alice loves photography")
    async with VectorMemory(path, embedder(fake, "new-model")) as memory:
        assert await memory.pending_count() == 1
        assert await memory.search_vector("photographer", scopes=[ALICE]) == []
        hits = await memory.search("photographer", scopes=[ALICE])  # embeds the waiting one first
        assert ids(hits) == [first.id] and hits[0].via == "vector"
        assert await memory.pending_count() == 0
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT model, dim FROM memory_vectors").fetchall() == [("new-model", 256)]


async def test_delete_scope_and_restore_keep_the_index_in_step(memory: VectorMemory) -> None:
    alices = [await remember(memory, f"alice likes photography, fact {n}") for n in range(3)]
    bob = await remember(memory, "bob likes photography too", scope=BOB)
    assert len(await memory.search_vector("photographer", scopes=[ALICE])) == 3  # loads the index
    assert await memory.delete_scope(ALICE, scopes=[ALICE]) == 3
    assert await memory.search_vector("photographer", scopes=[ALICE]) == []
    assert ids(await memory.search_vector("photographer", scopes=[BOB])) == [bob.id]
    assert await memory.restore(alices) == 3
    assert await memory.restore(alices) == 0
    assert await memory.pending_count() == 0
    assert set(ids(await memory.search_vector("photographer", scopes=[ALICE]))) == {m.id for m in alices}
    with sqlite3.connect(memory.path) as db:
        assert db.execute("SELECT COUNT(*) FROM memory_vectors").fetchone() == (4,)


async def test_restore_embeds_in_batches(tmp_path: Path, fake: FakeOpenAI) -> None:
    now = datetime.now(UTC)
    memories = [
        Memory(id=f"m{n:04d}", scope=ALICE, text=f"imported fact {n}", created_at=now, source="import")
        for n in range(600)
    ]
    async with VectorMemory(tmp_path / "m.db", embedder(fake)) as memory:
        assert await memory.restore(memories) == 600
        assert fake.embedding_requests == 3  # 256 + 256 + 88
        assert await memory.pending_count() == 0
        assert ids(await memory.search("imported fact 599", scopes=[ALICE], limit=1)) == ["m0599"]


async def test_index_loads_from_the_file(tmp_path: Path, fake: FakeOpenAI) -> None:
    path = tmp_path / "m.db"
    async with VectorMemory(path, embedder(fake)) as memory:
        kept = await remember(memory, "Alice loves photography")
    async with VectorMemory(path, embedder(fake)) as memory:
        assert ids(await memory.search_vector("photographer", scopes=[ALICE])) == [kept.id]


async def test_close_twice(tmp_path: Path, fake: FakeOpenAI) -> None:
    memory = VectorMemory(tmp_path / "m.db", embedder(fake))
    await remember(memory, "x marks the spot")
    await memory.close()
    await memory.close()
    with pytest.raises(RuntimeError, match="closed"):
        await memory.search("spot", scopes=[ALICE])


class ShortEmbedder:
    """An ``Embedder`` that answers one vector too few, as a broken local server might."""

    model = "short"

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [[1.0, 0.0]] * (len(texts) - 1)

    async def aclose(self) -> None:
        pass


async def test_a_wrong_answer_counts_as_unavailable(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with VectorMemory(tmp_path / "m.db", ShortEmbedder()) as memory:
        kept = await remember(memory, "Alice loves photography")
        assert await memory.pending_count() == 1
        assert ids(await memory.search("photography", scopes=[ALICE])) == [kept.id]
    assert "the embedder answered 0 vectors for 1 texts" in caplog.text


def _refusal_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


async def test_a_text_the_model_refuses_is_given_up_not_an_outage(
    memory: VectorMemory, fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hub.memory.vector")
    fake.embeddings_refuse = "POISON"
    now = datetime.now(UTC)
    texts = [f"Alice keeps photography notes, part {n}" for n in range(9)]
    texts.insert(4, "POISON: Alice pasted a huge photography log")
    memories = [Memory(id=f"r{n}", scope=ALICE, text=t, created_at=now, source="import") for n, t in enumerate(texts)]
    assert await memory.restore(memories) == 10  # one batch, refused: probed, then halved
    assert fake.embedding_requests == 10  # the 10, the probe, then halves: 5 + 5, 2 + 3, 1 + 2, 1 + 1
    assert await memory.pending_count() == 0  # the refused one does not wait either
    (warning,) = _refusal_warnings(caplog)
    assert "memory r4 " in warning and "HTTP 400" in warning and "POISON" not in warning
    assert "unavailable" not in warning

    poison = await remember(memory, "POISON again: a photographer's diary")  # alone: probed, given up
    vector = ids(await memory.search_vector("photographer", scopes=[ALICE], limit=20))
    assert set(vector) == {f"r{n}" for n in range(10)} - {"r4"}
    hits = await memory.search("pasted photography log", scopes=[ALICE], limit=20)
    assert {h.memory.id: h.via for h in hits}["r4"] == "fulltext"
    assert poison.id in ids(await memory.search_fulltext("diary", scopes=[ALICE]))
    warnings = _refusal_warnings(caplog)
    assert len(warnings) == 2 and f"memory {poison.id} " in warnings[1]

    before = fake.embedding_requests
    await memory.search("photographer", scopes=[ALICE])
    assert fake.embedding_requests == before + 1  # the query only: refused texts are not sent again
    assert not [r for r in caplog.records if "unavailable" in r.getMessage()]


async def test_a_refused_query_falls_back_to_full_text_for_that_query_only(
    memory: VectorMemory, fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hub.memory.vector")
    kept = await remember(memory, "Alice loves photography")
    fake.embeddings_refuse = "POISON"
    hits = await memory.search("POISON photography", scopes=[ALICE])
    assert [(h.memory.id, h.via) for h in hits] == [(kept.id, "fulltext")]
    hits = await memory.search("photographer", scopes=[ALICE])  # no outage: vectors at once
    assert [(h.memory.id, h.via) for h in hits] == [(kept.id, "vector")]
    assert _refusal_warnings(caplog) == []


async def test_an_endpoint_that_refuses_every_text_is_down(
    memory: VectorMemory, fake: FakeOpenAI, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong model name may answer 400 to everything: the probe is refused too, so nothing is
    given up; the memories wait, as in any outage."""
    caplog.set_level(logging.INFO, logger="hub.memory.vector")
    fake.embeddings_refuse = ""  # in every text
    kept = await remember(memory, "Alice loves photography")
    assert await memory.pending_count() == 1
    (warning,) = _refusal_warnings(caplog)
    assert "unavailable" in warning and "HTTP 400" in warning
    fake.embeddings_refuse = None
    clock.now += 31
    hits = await memory.search("photographer", scopes=[ALICE])
    assert [(h.memory.id, h.via) for h in hits] == [(kept.id, "vector")]
    assert await memory.pending_count() == 0
