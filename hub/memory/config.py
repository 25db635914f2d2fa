"""``[memory]``: which backend keeps memories, how they are embedded and recalled, and whose
identities are one person's."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

__all__ = ["MemoryConfig", "config_models"]

_IDENTITY = re.compile(r"^[A-Za-z0-9_.-]+:\S+$")


class MemoryConfig(BaseModel):
    """``[memory]``: what the agent remembers beyond one conversation's history."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: StrictBool = True
    """Keep memories: the ``remember``, ``recall`` and ``forget`` tools, automatic recall,
    compaction summaries, ``/memory`` and ``/forget``. Off: none of them exist."""
    backend: str = Field(default="auto", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    """``auto``: ``postgres`` when ``[store] url`` is PostgreSQL (memories live with the rest),
    else ``sqlite``. ``sqlite`` (full text, no extra service), ``vector`` (full text and
    embeddings, ranked together; needs ``embedding_provider`` and ``embedding_model``),
    ``postgres`` (PostgreSQL full text, and pgvector where installed), or a memory extension's
    name."""

    def backend_for(self, store_url: str) -> str:
        """The backend ``auto`` means with the store at ``store_url``, or the one named."""
        if self.backend != "auto":
            return self.backend
        return "postgres" if store_url.startswith("postgresql") else "sqlite"

    path: Path = Path("memory.db")
    """The SQLite file of ``sqlite`` and ``vector``, relative to ``[hub] data_dir``."""
    url: str = ""
    """``postgres``: an SQLAlchemy URL (``postgresql+psycopg://user:pass@host/db``); empty uses
    ``[store] url``. Write the password as ``${VAR}``."""
    embedding_provider: str = ""
    """The ``[providers.NAME]`` whose OpenAI-compatible endpoint embeds (its ``base_url`` and
    ``api_key``): OpenAI, Ollama, vLLM, LM Studio. Empty: no embeddings."""
    embedding_model: str = ""
    """The embedding model, e.g. ``text-embedding-3-small`` or ``nomic-embed-text``."""
    embedding_timeout_seconds: float = Field(default=10.0, gt=0)
    """Longest wait for the embedding endpoint; past it, search falls back to full text and
    storing embeds later."""
    recall_tokens: int = Field(default=300, ge=0, le=10_000)
    """Automatic recall: at most this many tokens of relevant memories are added to each user
    message (never to the system prompt); 0 turns automatic recall off."""
    recall_limit: int = Field(default=5, ge=1, le=50)
    """Automatic recall and the ``recall`` tool return at most this many memories."""
    recall_min_similarity: float = Field(default=0.45, ge=-1, le=1)
    """Automatic recall adds a memory only when it shares words with the message — two, or one
    rare word or name — or, with embeddings, when its cosine similarity to the message reaches
    this (a vector search always finds a nearest neighbour, relevant or not). Models differ:
    raise it if unrelated memories show up, lower it if related ones are missed."""
    summarise_compaction: StrictBool = True
    """When history compaction summarises old turns, keep the summary as a memory too."""
    links: dict[str, list[str]] = Field(default_factory=dict)
    """One person's identities on several channels, so they share memories:
    ``alice = ["telegram:12345", "slack:U0123ABC"]`` (``channel:user_id``, the channel as named
    in ``[channels]``). New memories go to the first identity; each one reads and forgets all."""

    @field_validator("links")
    @classmethod
    def _identities(cls, links: dict[str, list[str]]) -> dict[str, list[str]]:
        seen: dict[str, str] = {}
        for name, identities in links.items():
            if not identities:
                raise ValueError(f"link {name!r} lists no identities")
            for identity in identities:
                if not _IDENTITY.match(identity):
                    raise ValueError(f"link {name!r}: {identity!r} is not channel:user_id (e.g. telegram:12345)")
                if identity in seen and seen[identity] != name:
                    raise ValueError(f"{identity!r} is in both link {seen[identity]!r} and link {name!r}")
                seen[identity] = name
        return links


def config_models() -> dict[str, type[BaseModel]]:
    """Entry point ``autohands.config:memory``: ``[memory]``'s model, for ``autohands config reference``."""
    return {"memory": MemoryConfig}
