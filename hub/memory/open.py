"""Open the hub's memory from ``[memory]``: the backend named there, its embedder, the links."""

from __future__ import annotations

import os
from collections.abc import Mapping

from hub.config import Settings, validate_section
from hub.errors import ConfigError
from hub.extensions import load_entry_point
from hub.memory.access import IdentityLinks, MemoryAccess
from hub.memory.base import Embedder, MemoryOptions
from hub.memory.config import MemoryConfig

__all__ = ["embedder_for", "memory_config", "open_memory"]

# Local OpenAI-compatible servers ignore the key, but the SDK insists on one.
_PLACEHOLDER_KEY = "not-needed"


def memory_config(settings: Settings) -> MemoryConfig:
    """``[memory]`` validated; ``ConfigError`` names the bad key."""
    return validate_section(MemoryConfig, settings.memory, "memory")


def open_memory(settings: Settings) -> MemoryAccess | None:
    """The memory ``[memory]`` describes, or None when it is off. Nothing connects yet: the
    backend opens its file or pool on first use.

    Raises:
        ConfigError: ``[memory]`` is invalid, names an unknown backend or provider, or the
            backend lacks what it needs (the message names the key and the fix).
    """
    config = memory_config(settings)
    if not config.enabled:
        return None
    name = config.backend_for(settings.store_url)
    backend_class = load_entry_point("autohands.memory", name)
    options = MemoryOptions(
        path=settings.data_dir / config.path.expanduser(),
        url=config.url or settings.store_url,
        embedder=embedder_for(config, settings.providers),
    )
    backend = backend_class.from_options(options)
    return MemoryAccess(backend, name=name, links=IdentityLinks(config.links), config=config)


def embedder_for(config: MemoryConfig, providers: Mapping[str, Mapping[str, object]]) -> Embedder | None:
    """The embedder ``[memory] embedding_provider`` and ``embedding_model`` name, or None."""
    if not config.embedding_provider and not config.embedding_model:
        return None
    if not config.embedding_provider or not config.embedding_model:
        missing = "embedding_model" if config.embedding_provider else "embedding_provider"
        raise ConfigError(
            f"memory.{missing}: set both embedding_provider (a [providers.NAME]) and embedding_model, or neither"
        )
    section = providers.get(config.embedding_provider)
    if section is None:
        known = ", ".join(sorted(providers)) or "none"
        raise ConfigError(
            f"memory.embedding_provider: no [providers.{config.embedding_provider}] (configured: {known})"
        )
    base_url = section.get("base_url")
    api_key = section.get("api_key") or os.environ.get("OPENAI_API_KEY") or ""
    if not api_key and not base_url:
        raise ConfigError(
            f"memory.embedding_provider: [providers.{config.embedding_provider}] has no api_key and "
            "$OPENAI_API_KEY is empty; set one, or a base_url for a local server"
        )
    from hub.memory.embeddings import OpenAIEmbedder  # the openai SDK only when embeddings are on

    return OpenAIEmbedder(
        base_url=str(base_url) if base_url else None,
        api_key=str(api_key) or _PLACEHOLDER_KEY,
        model=config.embedding_model,
        timeout=config.embedding_timeout_seconds,
    )
