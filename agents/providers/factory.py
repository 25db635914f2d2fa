"""Build providers from the raw ``[providers]`` config section."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hub.config import validate_section
from hub.errors import ConfigError
from hub.plugins import load_entry_point

from .base import Provider
from .chain import ProviderChain
from .config import ProviderConfig

ENTRY_POINT_GROUP = "autohands.providers"


def build_provider(name: str, section: Any) -> Provider:
    """Validate ``[providers.<name>]`` and construct its class (entry point named by ``kind``).

    Raises:
        ConfigError: the section is invalid (the message names the key) or a key is missing.
        PluginError: no provider class is registered for ``kind``.
    """
    config = validate_section(ProviderConfig, section, f"providers.{name}")
    cls = load_entry_point(ENTRY_POINT_GROUP, config.kind)
    provider: Provider = cls(name, config)
    return provider


def build_chain(primary: str, fallbacks: Sequence[str], providers: Mapping[str, Any]) -> Provider:
    """The provider named ``primary`` (``[agent] provider``), wrapped with its ``fallback`` list.

    Every named section is validated before any client is created, so one bad section fails
    start-up without leaving half-built clients behind. Returns the bare provider when there
    are no fallbacks.
    """
    names = [primary, *(n for n in dict.fromkeys(fallbacks) if n != primary)]
    known = ", ".join(sorted(providers)) or "none"
    for key, name in zip(["agent.provider", *["agent.fallback"] * len(fallbacks)], names, strict=False):
        if name not in providers:
            raise ConfigError(f"{key}: no [providers.{name}] section (configured providers: {known})")
    for name in names:
        validate_section(ProviderConfig, providers[name], f"providers.{name}")
    built = [build_provider(name, providers[name]) for name in names]
    return built[0] if len(built) == 1 else ProviderChain(built[0], built[1:])
