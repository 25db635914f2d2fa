"""How extensions are found and described: entry-point groups and their manifests.

Channels, agents, providers, tools and memory backends register under the entry-point groups
``autohands.channels``, ``autohands.agents``, ``autohands.providers``, ``autohands.tools`` and
``autohands.memory``; ours are declared in our own ``pyproject.toml`` the same way. An entry
point is loaded only when config names it, so discord.py is never imported unless Discord is on.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload, runtime_checkable

from .errors import PluginError

if TYPE_CHECKING:
    from .agent import AgentFactory, Check
    from .channel import ChannelClass

__all__ = ["Advising", "Described", "Manifest", "Probing", "list_entry_points", "load_entry_point"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """Describes an extension for ``autohands extensions`` and ``doctor``."""

    id: str
    version: str = "0.1.0"
    description: str = ""
    permissions: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    """Config keys that hold credentials; ``doctor`` reports whether each is present."""


@runtime_checkable
class Described(Protocol):
    """An extension that carries its ``Manifest``: every channel class (``ChannelClass``); an
    agent factory or a provider class may."""

    @property
    def manifest(self) -> Manifest: ...


@runtime_checkable
class Probing(Protocol):
    """An extension class that can check, live, that its section works: a channel's identity
    call (Telegram ``getMe``, Slack ``auth.test``, Discord ``users/@me``), a provider's round
    trip (``/v1/models`` or a one-token request). ``autohands doctor`` and ``autohands init``
    call it.

    ``section`` is the raw config section (``kind`` included); the probe validates it itself.
    It never raises: a failure is a ``Check`` with status ``ERROR``, a ``detail`` that names the
    cause (401 → the token was refused; 404 on an OpenAI-compatible URL → is ``base_url``
    missing ``/v1``?; connection refused → nothing listens there) and a ``fix``. It gives up
    after ``timeout`` seconds, and never puts a secret in what it returns.
    """

    async def probe(self, name: str, section: dict[str, Any], *, timeout: float) -> Check: ...


@runtime_checkable
class Advising(Protocol):
    """A channel class that can tell, from its section alone, that it will not work as the
    operator likely means (nobody can use the bot; ``allow_users`` holds names where the
    platform needs ids). ``autohands config check`` and ``doctor`` print each warning, naming
    the section; ``run`` logs them once per channel. ``section`` is the raw, valid section."""

    def config_warnings(self, name: str, section: dict[str, Any]) -> list[str]: ...


def _find_entry_point(group: str, name: str) -> EntryPoint:
    """The entry point ``name`` of ``group``; ``PluginError`` listing the installed ones if none."""
    for ep in entry_points(group=group):
        if ep.name == name:
            return ep
    known = ", ".join(sorted(ep.name for ep in entry_points(group=group))) or "none"
    raise PluginError(f"no extension {name!r} in entry-point group {group!r} (installed: {known})")


@overload
def load_entry_point(group: Literal["autohands.channels"], name: str) -> ChannelClass[Any]: ...
@overload
def load_entry_point(group: Literal["autohands.agents"], name: str) -> AgentFactory: ...
@overload
def load_entry_point(group: str, name: str) -> object: ...
def load_entry_point(group: str, name: str) -> object:
    """Import the object that entry point ``name`` of ``group`` names.

    The group says what it is: a ``ChannelClass`` for ``autohands.channels`` (its config type is
    known only once loaded, hence ``Any`` there), an ``AgentFactory`` for ``autohands.agents``.
    Other groups give an ``object`` for the caller to check.

    Raises:
        PluginError: no such entry point, or importing it failed (the message names it).
    """
    ep = _find_entry_point(group, name)
    try:
        return ep.load()
    except Exception as exc:  # an extension's import error must name the extension
        raise PluginError(f"extension {name!r} ({ep.value}) failed to load: {exc}") from exc


def list_entry_points(group: str) -> list[EntryPoint]:
    """The entry points of ``group``, by name (none is loaded)."""
    return sorted(entry_points(group=group), key=lambda ep: ep.name)
