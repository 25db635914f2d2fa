"""Build providers from the raw ``[providers]`` config section."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from typing import Protocol, TypeGuard

from hub.config import validate_section
from hub.errors import ConfigError, PluginError
from hub.extensions import load_entry_point

from .base import Provider
from .chain import ProviderChain
from .config import ProviderConfig

ENTRY_POINT_GROUP = "autohands.providers"


class ProviderClass(Protocol):
    """What an ``autohands.providers`` entry point names: built as ``cls(name, config)``."""

    def __call__(self, name: str, config: ProviderConfig) -> Provider: ...


def _is_provider_class(loaded: object) -> TypeGuard[ProviderClass]:
    """The group's contract declares the signature; what can be checked unbuilt is the call."""
    return callable(loaded)


def build_provider(name: str, section: Mapping[str, object]) -> Provider:
    """Validate ``[providers.<name>]`` and construct its class (entry point named by ``kind``).

    Raises:
        ConfigError: the section is invalid (the message names the key), a key is missing, or
            no provider is installed under ``kind``.
        PluginError: the provider named by ``kind`` failed to load, or is not a provider class.
    """
    config = validate_section(ProviderConfig, section, f"providers.{name}")
    known = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    try:
        cls = load_entry_point(ENTRY_POINT_GROUP, config.kind)  # installed, or an [extensions] folder's
    except PluginError:
        if config.kind in known:
            raise  # installed but failed to load: the message names it
        raise ConfigError(
            f"invalid config: providers.{name}.kind: no provider {config.kind!r} is installed "
            f"(installed: {', '.join(sorted(known))}; an extension's provider needs its package or "
            "[extensions] paths)"
        ) from None
    if not _is_provider_class(cls):
        raise PluginError(f"extension {config.kind!r} in {ENTRY_POINT_GROUP!r} is not a provider class")
    return cls(name, config)


def build_chain(primary: str, fallbacks: Sequence[str], providers: Mapping[str, Mapping[str, object]]) -> Provider:
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
