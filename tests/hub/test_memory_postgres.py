"""The ``postgres`` memory backend (hub/memory/postgres.py) against a real PostgreSQL server.

One throwaway server per session (``tests/pg_server.py``), a fresh database per test. The
behaviour every backend shares is the ``sqlite`` backend's tests, imported below so they run
here against this module's ``memory`` fixture; the rest is what PostgreSQL adds: tsquery
syntax, the URL, lazy opening, and vectors (without pgvector: the server here has none).
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from hub.errors import ConfigError, StoreError
from hub.memory import Memory, MemoryBackend, Scope
from hub.memory.base import EmbeddingUnavailable, MemoryOptions
from hub.memory.embeddings import OpenAIEmbedder
from hub.memory.postgres import PostgresMemory
from tests.fakes.openai_server import FakeOpenAI

# The shared behaviour: store/get/list/delete, ranking, scopes never cross, shared and
# conversation scopes, delete_scope, FTS syntax as text, operator words as words.
from tests.hub.test_memory_sqlite import (  # noqa: F401  (collected here, run on this file's fixture)
    test_delete_scope_removes_one_users_memories_only,
    test_fts_syntax_in_a_query_is_text,
    test_operator_words_match_as_words,
    test_scopes_never_cross,
    test_search_ranks_the_more_relevant_first,
    test_shared_and_conversation_scopes,
    test_store_get_list_delete,
)
from tests.pg_server import PgServer, pg_bin_dir, pg_server

ALICE = Scope.user("telegram", "100")
BOB = Scope.user("telegram", "200")
LOGGER = "hub.memory.postgres"
DATABASE = "memory_tests"


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (.ci/run installs them)")
    with pg_server(bin_dir) as server:
        server.create_database(DATABASE)
        yield server


@pytest.fixture
def pg_url(pg: PgServer) -> str:
    """The tests' database, empty: no tables until the backend's first use creates them."""
    return pg.empty(DATABASE)


@pytest.fixture
async def memory(pg_url: str) -> AsyncIterator[PostgresMemory]:
    async with PostgresMemory(pg_url) as backend:
        yield backend


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


class Clock:
    """Monotonic seconds that only move when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def hybrid(pg_url: str, fake: FakeOpenAI, clock: Clock) -> AsyncIterator[PostgresMemory]:
    embedder = OpenAIEmbedder(base_url=fake.base_url, api_key="sk-test", model="fake-embed", timeout=5)
    async with PostgresMemory(pg_url, embedder=embedder, retry_seconds=30, clock=clock) as backend:
        yield backend


async def test_from_options_passes_the_embedder(pg_url: str, fake: FakeOpenAI) -> None:
    embedder = OpenAIEmbedder(base_url=fake.base_url, api_key="sk-test", model="fake-embed", timeout=5)
    async with PostgresMemory.from_options(MemoryOptions(path=Path("unused"), url=pg_url, embedder=embedder)) as b:
        stored = await b.store("Alice is a keen photographer", scope=ALICE, source="t", scopes=[ALICE])
        assert [(h.memory.id, h.via) for h in await b.search("photography", scopes=[ALICE])] == [(stored.id, "vector")]
    with pytest.raises(EmbeddingUnavailable, match="closed"):
        await embedder.embed(["x"])  # the backend closed the embedder it owns


def _tables(pg: PgServer, url: str) -> dict[str, str]:
    """The database's tables, each with its ``embedding`` column's type (or "")."""
    with psycopg.connect(pg.conninfo(str(make_url(url).database))) as conn:
        rows = conn.execute(
            "SELECT c.relname, coalesce(format_type(a.atttypid, a.atttypmod), '') FROM pg_class c"
            " LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'embedding'"
            " WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace"
        ).fetchall()
    return dict(rows)


async def test_is_a_memory_backend_registered_as_postgres(pg_url: str) -> None:
    (ep,) = [ep for ep in entry_points(group="autohands.memory") if ep.name == "postgres"]
    assert ep.load() is PostgresMemory
    assert PostgresMemory.manifest.id == "postgres"
    assert isinstance(PostgresMemory(pg_url), MemoryBackend)


@pytest.mark.parametrize("url", ["sqlite:////tmp/hub.db", "", "not a url", "mysql+pymysql://u:hunter22@db/x"])
def test_a_url_that_is_not_postgres_names_memory_url(url: str) -> None:
    with pytest.raises(ConfigError, match=r"^memory\.url: .*PostgreSQL URL") as caught:
        PostgresMemory.from_options(MemoryOptions(path=Path("unused"), url=url))
    assert "hunter22" not in str(caught.value)


async def test_opens_lazily_and_fails_in_one_line(tmp_path: Path) -> None:
    backend = PostgresMemory(f"postgresql://me:hunter22@/db?host={tmp_path}")  # no server there
    with pytest.raises(StoreError) as caught:
        await backend.list(scopes=[ALICE])
    message = str(caught.value)
    assert message.startswith("memory database ") and "\n" not in message
    assert "hunter22" not in message
    await backend.close()
    await backend.close()
    with pytest.raises(RuntimeError, match="closed"):
        await backend.list(scopes=[ALICE])


async def test_tables_are_created_on_first_use_and_kept(pg: PgServer, pg_url: str) -> None:
    backend = PostgresMemory(pg_url)
    assert "memories" not in _tables(pg, pg_url)
    kept = await backend.store("The boiler is serviced in May", scope=ALICE, source="t", scopes=[ALICE])
    await backend.close()
    assert _tables(pg, pg_url) == {"memories": ""}  # no embedder: full text only, no vector table
    async with PostgresMemory(pg_url) as again:
        assert await again.get(kept.id, scopes=[ALICE]) == kept
        assert [h.memory.id for h in await again.search("boilers", scopes=[ALICE])] == [kept.id]


async def test_two_backends_create_the_tables_at_once(pg_url: str) -> None:
    async with PostgresMemory(pg_url) as one, PostgresMemory(pg_url) as two:
        await asyncio.gather(one.list(scopes=[ALICE]), two.list(scopes=[ALICE]))


@pytest.mark.parametrize(
    "query",
    [
        "peanut & butter",
        "peanut | !butter",
        "!peanut",
        "peanut:*",
        "pea:*A",
        "peanut <-> butter",
        "<2>",
        "'peanut'",
        "'",
        "''",
        "\\",
        "c:\\path\\to\\peanut",
        "&|!()<->:*",
        "x@y.com peanut-butter",
        "100% :query %(query)s %s",
    ],
)
async def test_tsquery_syntax_in_a_query_is_text(memory: PostgresMemory, query: str) -> None:
    await memory.store("peanut butter & jam | 'quoted' !bang", scope=ALICE, source="t", scopes=[ALICE])
    hits = await memory.search(query, scopes=[ALICE])
    assert len(hits) <= 1
    assert len(await memory.list(scopes=[ALICE])) == 1


async def test_any_term_matches_and_words_are_stemmed(memory: PostgresMemory) -> None:
    cat = await memory.store("Our cats sleep on the radiator", scope=ALICE, source="t", scopes=[ALICE])
    assert [h.memory.id for h in await memory.search("cat zebra", scopes=[ALICE])] == [cat.id]  # OR, not AND
    assert [h.memory.id for h in await memory.search("sleeping", scopes=[ALICE])] == [cat.id]
    assert await memory.search("the on", scopes=[ALICE]) == []  # stop words only


async def test_restore_keeps_everything_and_skips_known_ids(memory: PostgresMemory) -> None:
    when = datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    old = Memory(id="abc123", scope=ALICE, text="imported fact", created_at=when, source="import", metadata={"k": "v"})
    room = Memory(id="def456", scope=Scope("conversation", "slack:C1"), text="x", created_at=when, source="import")
    assert await memory.restore([old, room]) == 2
    assert await memory.restore([old, room]) == 0
    assert await memory.restore([]) == 0
    assert await memory.get("abc123", scopes=[ALICE]) == old
    assert await memory.get("abc123", scopes=[BOB]) is None
    await memory.store("new fact", scope=ALICE, source="remember", scopes=[ALICE])
    assert await memory.scope_counts() == [(room.scope, 1), (ALICE, 2)]


async def test_hybrid_finds_by_meaning_and_by_words(hybrid: PostgresMemory, pg: PgServer, pg_url: str) -> None:
    words = await hybrid.store("Alice bought a new camera for photography", scope=ALICE, source="t", scopes=[ALICE])
    meaning = await hybrid.store("Alice is a keen photographer", scope=ALICE, source="t", scopes=[ALICE])
    await hybrid.store("Bob is a photographer too", scope=BOB, source="t", scopes=[BOB])
    hits = await hybrid.search("photography", scopes=[ALICE])
    assert [(h.memory.id, h.via) for h in hits[:2]] == [(words.id, "hybrid"), (meaning.id, "vector")]
    assert hits[0].score > hits[1].score
    assert all(h.memory.scope == ALICE for h in hits)
    assert not hybrid.uses_pgvector  # the server here has no pgvector
    assert _tables(pg, pg_url) == {"memories": "", "memory_vectors": "bytea"}
    assert await hybrid.delete(meaning.id, scopes=[ALICE])
    assert meaning.id not in [h.memory.id for h in await hybrid.search("photographer", scopes=[ALICE])]


async def test_embedding_outage_falls_back_and_catches_up(
    hybrid: PostgresMemory, fake: FakeOpenAI, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    fake.embeddings_down = True
    stored = await hybrid.store("Alice is a keen photographer", scope=ALICE, source="t", scopes=[ALICE])
    found = await hybrid.search("photographer", scopes=[ALICE])
    assert [(h.memory.id, h.via) for h in found] == [(stored.id, "fulltext")]
    assert await hybrid.search("photography", scopes=[ALICE]) == []  # no shared lexeme, no vectors
    assert fake.embedding_requests == 1  # down: tried again only after retry_seconds
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unavailable" in warnings[0].getMessage()
    fake.embeddings_down = False
    clock.now += 30
    found = await hybrid.search("photography", scopes=[ALICE])
    assert [(h.memory.id, h.via) for h in found] == [(stored.id, "vector")]
    assert fake.embedding_requests == 3  # the waiting memory, then the query
    assert any("back" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
    fake.embeddings_down = True
    clock.now += 30
    await hybrid.search("photography", scopes=[ALICE])
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2  # a new outage, a new warning


def _photographers(count: int, prefix: str = "old") -> list[Memory]:
    when = datetime.now(UTC)
    text = "Alice is a keen photographer {}"
    return [
        Memory(id=f"{prefix}{n}", scope=ALICE, text=text.format(n), created_at=when, source="import")
        for n in range(count)
    ]


async def test_restore_embeds_what_it_adds_in_batches(hybrid: PostgresMemory, fake: FakeOpenAI) -> None:
    old = _photographers(300)
    assert await hybrid.restore(old) == 300
    assert fake.embedding_requests == 2  # 256, then 44
    assert await hybrid.restore(old[:10]) == 0
    assert fake.embedding_requests == 2  # nothing added, nothing embedded
    hits = await hybrid.search("photography", scopes=[ALICE], limit=3)
    assert [h.via for h in hits] == ["vector"] * 3
    assert fake.embedding_requests == 3  # nothing waits: the query only


async def test_restore_embeds_the_text_it_kept(hybrid: PostgresMemory) -> None:
    first = _photographers(1)[0]
    again = Memory(id=first.id, scope=ALICE, text="Bob waters the tomatoes", created_at=first.created_at, source="x")
    assert await hybrid.restore([first, again]) == 1  # one id: the first one stays
    hits = await hybrid.search("photography", scopes=[ALICE])
    assert [(h.memory.id, h.memory.text, h.via) for h in hits] == [(first.id, first.text, "vector")]


async def test_restore_while_embeddings_are_down_embeds_later(
    hybrid: PostgresMemory, fake: FakeOpenAI, clock: Clock
) -> None:
    fake.embeddings_down = True
    old = _photographers(3)
    assert await hybrid.restore(old) == 3  # kept all the same
    assert await hybrid.search("photography", scopes=[ALICE]) == []
    fake.embeddings_down = False
    clock.now += 30
    hits = await hybrid.search("photography", scopes=[ALICE])
    assert {(h.memory.id, h.via) for h in hits} == {(m.id, "vector") for m in old}


async def test_a_real_array_vectors_table_is_replaced(
    hybrid: PostgresMemory, pg: PgServer, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Vectors were ``real[]`` before they were bytes; such a table is made again and refilled."""
    with psycopg.connect(pg.conninfo(str(make_url(pg_url).database)), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE memories (seq bigserial PRIMARY KEY, id text NOT NULL UNIQUE, scope_kind text NOT NULL,"
            " scope_key text NOT NULL, text text NOT NULL, created_at timestamptz NOT NULL, source text NOT NULL,"
            " metadata jsonb NOT NULL DEFAULT '{}',"
            " tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED)"
        )
        conn.execute(
            "INSERT INTO memories (id, scope_kind, scope_key, text, created_at, source)"
            " VALUES ('old1', %s, %s, 'Alice is a keen photographer', now(), 't')",
            (ALICE.kind, ALICE.key),
        )
        conn.execute(
            "CREATE TABLE memory_vectors (memory_id text NOT NULL REFERENCES memories (id) ON DELETE CASCADE,"
            " model text NOT NULL, embedding real[] NOT NULL, PRIMARY KEY (memory_id, model))"
        )
        conn.execute("INSERT INTO memory_vectors VALUES ('old1', 'fake-embed', '{1, 0, 0}')")
    caplog.set_level(logging.INFO, logger=LOGGER)
    hits = await hybrid.search("photography", scopes=[ALICE])
    assert [(h.memory.id, h.via) for h in hits] == [("old1", "vector")]
    assert _tables(pg, pg_url) == {"memories": "", "memory_vectors": "bytea"}
    assert any("replacing the vectors table" in r.getMessage() for r in caplog.records)


async def test_vector_search_never_crosses_scopes(hybrid: PostgresMemory) -> None:
    await hybrid.store("Alice is a keen photographer", scope=ALICE, source="t", scopes=[ALICE])
    assert await hybrid.search("photography", scopes=[BOB]) == []
    assert await hybrid.search("photography", scopes=[]) == []


def _vector_rows(pg: PgServer, url: str) -> dict[str, bool]:
    """Each memory with a row in ``memory_vectors``: whether it holds an embedding."""
    with psycopg.connect(pg.conninfo(str(make_url(url).database))) as conn:
        rows = conn.execute("SELECT memory_id, embedding IS NOT NULL FROM memory_vectors").fetchall()
    return dict(rows)


async def test_a_text_the_model_refuses_is_given_up_not_an_outage(
    hybrid: PostgresMemory, fake: FakeOpenAI, pg: PgServer, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    fake.embeddings_refuse = "POISON"
    old = _photographers(10)
    old[4] = Memory(
        id="old4", scope=ALICE, text="POISON: a keen photographer's log", created_at=old[4].created_at, source="x"
    )
    assert await hybrid.restore(old) == 10  # one batch, refused: probed, then halved
    assert fake.embedding_requests == 10  # the 10, the probe, then halves: 5 + 5, 2 + 3, 1 + 2, 1 + 1
    assert _vector_rows(pg, pg_url) == {m.id: m.id != "old4" for m in old}  # NULL: refused, not waiting
    poison = await hybrid.store("POISON again: Alice's diary", scope=ALICE, source="t", scopes=[ALICE])
    assert _vector_rows(pg, pg_url)[poison.id] is False

    before = fake.embedding_requests
    hits = await hybrid.search("photography", scopes=[ALICE], limit=20)
    assert fake.embedding_requests == before + 1  # the query only: refused texts are not sent again
    assert {(h.memory.id, h.via) for h in hits} == {(m.id, "vector") for m in old if m.id != "old4"}
    hits = await hybrid.search("photographer's log", scopes=[ALICE], limit=20)
    assert {h.memory.id: h.via for h in hits}["old4"] == "fulltext"  # by its words alone
    assert [h.memory.id for h in await hybrid.search("diary", scopes=[ALICE])] == [poison.id]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and "memory old4 " in warnings[0] and f"memory {poison.id} " in warnings[1]
    assert not [w for w in warnings if "POISON" in w or "unavailable" in w]


async def test_an_older_vectors_table_takes_refused_marks(
    hybrid: PostgresMemory, fake: FakeOpenAI, pg: PgServer, pg_url: str
) -> None:
    """``memory_vectors.embedding`` was NOT NULL before refused texts were marked with NULL."""
    kept = await hybrid.store("Alice is a keen photographer", scope=ALICE, source="t", scopes=[ALICE])
    with psycopg.connect(pg.conninfo(str(make_url(pg_url).database)), autocommit=True) as conn:
        conn.execute("DELETE FROM memory_vectors")
        conn.execute("ALTER TABLE memory_vectors ALTER COLUMN embedding SET NOT NULL")
    fake.embeddings_refuse = "POISON"
    embedder = OpenAIEmbedder(base_url=fake.base_url, api_key="sk-test", model="fake-embed", timeout=5)
    async with PostgresMemory(pg_url, embedder=embedder) as again:
        poison = await again.store("POISON pill", scope=ALICE, source="t", scopes=[ALICE])
        assert _vector_rows(pg, pg_url) == {kept.id: True, poison.id: False}


def test_without_the_postgres_extra_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """The module imports without greenlet (sqlalchemy's asyncio needs it: the postgres extra),
    so opening the backend can say what to install instead of failing to load."""
    code = "import sys; sys.modules['greenlet'] = None\nimport hub.memory.postgres\nprint('imported')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.strip() == "imported", done.stderr[-500:]
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "greenlet" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install 'autohands\[postgres\]'"):
        PostgresMemory.from_options(MemoryOptions(path=Path("unused"), url="postgresql+psycopg://u@h/db"))


def test_auto_picks_postgres_when_the_store_is_postgresql(tmp_path: Path) -> None:
    from hub.config import load_settings
    from hub.memory.open import open_memory

    data = {"hub": {"data_dir": str(tmp_path)}}
    on_sqlite = open_memory(load_settings(environ={}, overrides=data, user_file=False))
    assert on_sqlite is not None and on_sqlite.name == "sqlite"
    store = {"store": {"url": "postgresql+psycopg://u:pw@127.0.0.1/db"}}
    on_postgres = open_memory(load_settings(environ={}, overrides={**data, **store}, user_file=False))
    assert on_postgres is not None and on_postgres.name == "postgres"
    assert isinstance(on_postgres.backend, PostgresMemory)
