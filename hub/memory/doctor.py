"""``autohands doctor``'s rows for memory: the backend answers and how much it holds, and the
embedding endpoint embeds (live)."""

from __future__ import annotations

import asyncio

from hub.agent import Check
from hub.config import Settings
from hub.errors import AutoHandsError
from hub.memory.base import EmbeddingUnavailable
from hub.memory.config import MemoryConfig
from hub.memory.open import embedder_for, open_memory
from hub.redact import masked_url

__all__ = ["memory_checks"]


async def memory_checks(settings: Settings, *, timeout: float) -> list[Check]:
    """One row for the backend, and one for the embedding endpoint when one is configured."""
    try:
        access = open_memory(settings)
    except AutoHandsError as exc:
        return [Check("memory", "ERROR", str(exc), fix="correct the [memory] section")]
    if access is None:
        return [Check("memory", "off", "[memory] enabled = false")]
    try:
        async with asyncio.timeout(timeout):
            counts = await access.backend.scope_counts()
    except (AutoHandsError, OSError, TimeoutError) as exc:
        detail = f"{access.name}: {type(exc).__name__}: {exc}" if str(exc) else f"{access.name}: {exc!r}"
        return [Check("memory", "ERROR", detail, fix="check [memory] path or url and its permissions")]
    finally:
        await access.close()
    config = access.config
    users = sum(1 for scope, _ in counts if scope.kind == "user")
    total = sum(n for _, n in counts)
    on_file = access.name in ("sqlite", "vector")
    where = settings.data_dir / config.path if on_file else masked_url(config.url or settings.store_url)
    rows = [Check("memory", "ok", f"{access.name} at {where}: {total} memories, {users} user(s)")]
    if config.embedding_provider:
        rows.append(await _embedding_check(settings, config, timeout))
    return rows


async def _embedding_check(settings: Settings, config: MemoryConfig, timeout: float) -> Check:
    embedder = embedder_for(config, settings.providers)
    if embedder is None:
        return Check("memory embeddings", "off", "no embedding_provider")
    what = "memory embeddings"
    used = f"{config.embedding_model} at [providers.{config.embedding_provider}]"
    try:
        async with asyncio.timeout(timeout):
            vectors = await embedder.embed(["autohands doctor"])
    except (EmbeddingUnavailable, TimeoutError) as exc:
        return Check(
            what,
            "WARNING",
            f"{used} did not embed: {exc or 'timed out'}; search falls back to full text",
            fix=f"check [providers.{config.embedding_provider}] base_url and that it serves {config.embedding_model}",
        )
    finally:
        await embedder.aclose()
    return Check(what, "ok", f"{used}: {len(vectors[0]) if vectors else 0} dimensions")
