"""Helpers shared by the channel tests."""

from __future__ import annotations


class MemoryState:
    """``KeyValueState`` in a dict (what the store's scoped state is to a channel)."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    async def get(self, key: str) -> str | None:
        return self.data.get(key)

    async def set(self, key: str, value: str) -> None:
        self.data[key] = value
