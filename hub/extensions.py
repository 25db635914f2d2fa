"""How extensions are found and described: entry-point groups, folders and their manifests.

Channels, agents, providers, tools and memory backends register under the entry-point groups
``autohands.channels``, ``autohands.agents``, ``autohands.providers``, ``autohands.tools`` and
``autohands.memory``; ours are declared in our own ``pyproject.toml`` the same way. An entry
point is loaded only when config names it, so discord.py is never imported unless Discord is on.

Python files and packages in ``[extensions] paths`` are the other source
(``hub._extension_folders``): each declares the same table as a ``pyproject.toml`` (group →
name → object) and a ``Manifest``. Active folders join the installed entry points, so every
``load_entry_point`` caller finds them; both sources are process-wide by nature (installed
distributions, imported modules), which is why this table is too. ``docs/EXTENSION_GUIDE.md``
shows how to write one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from .errors import PluginError

if TYPE_CHECKING:
    from .agent import AgentFactory, Check
    from .channel import ChannelClass
    from .memory.base import MemoryBackendClass

__all__ = [
    "GROUPS",
    "Advising",
    "Described",
    "ExtensionSource",
    "ExtensionsConfig",
    "FolderSource",
    "Manifest",
    "Probing",
    "Provided",
    "activate_folders",
    "check_manifest",
    "config_models",
    "deactivate_folders",
    "folder_entry_points",
    "is_builtin",
    "list_entry_points",
    "load_entry_point",
]

GROUPS: dict[str, str] = {
    "autohands.channels": "channel",
    "autohands.providers": "provider",
    "autohands.tools": "tools",
    "autohands.agents": "agent",
    "autohands.memory": "memory",
}
"""Each entry-point group an extension may provide to → the kind it names in ``provides``."""

_ID = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_VERSION = re.compile(r"^\d+(\.\d+){0,2}([.+-][0-9A-Za-z.+-]+)?$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """Describes an extension: ``autohands extensions`` lists it, ``autohands extensions docs``
    renders it (docs/EXTENSIONS.md), ``doctor`` checks its secrets."""

    id: str
    """Lower-case, unique within its group: the entry-point name (``telegram``, ``openai``)."""
    name: str = ""
    """What people call it (``Telegram``); the id when empty."""
    version: str = "0.1.0"
    description: str = ""
    """One line: what it does."""
    author: str = "AutoHands"
    provides: tuple[str, ...] = ()
    """What it adds, as ``kind:name`` (``channel:telegram``, ``tool:calculate``)."""
    config: type[BaseModel] | None = None
    """The pydantic model of its config section; ``config_schema`` is its JSON schema."""
    permissions: tuple[str, ...] = ()
    """What it needs: ``net`` (talks to the network), ``fs.read`` / ``fs.write`` (files in the
    workspace), ``shell.exec``, ``secrets`` (reads credentials from its section)."""
    secrets: tuple[str, ...] = ()
    """Config keys that hold credentials; ``doctor`` reports whether each is present."""
    extra: Mapping[str, str] = field(default_factory=dict)
    """Anything else worth a line in the reference page (``homepage``, ``license``)."""

    @property
    def title(self) -> str:
        return self.name or self.id

    def config_schema(self) -> dict[str, Any]:
        """The JSON schema of ``config`` (``model_json_schema``); empty when it takes none."""
        return self.config.model_json_schema() if self.config is not None else {}


def check_manifest(value: object, where: str) -> Manifest:
    """``value`` as a valid ``Manifest``, or ``PluginError`` saying what is wrong with it.

    ``where`` names the extension in the message (a file, an entry point)."""
    if not isinstance(value, Manifest):
        found = "nothing" if value is None else type(value).__name__
        raise PluginError(f"{where}: no manifest (expected `manifest = Manifest(...)`, found {found})")
    if not _ID.match(value.id):
        raise PluginError(f"{where}: manifest id {value.id!r} must be lower-case letters, digits, '-' or '_'")
    if not _VERSION.match(value.version):
        raise PluginError(f"{where}: manifest version {value.version!r} is not a version like 1.2.0")
    if value.config is not None and not (isinstance(value.config, type) and issubclass(value.config, BaseModel)):
        raise PluginError(f"{where}: manifest config must be a pydantic model class")
    return value


class ExtensionsConfig(BaseModel):
    """``[extensions]``: extensions loaded from folders, and which to leave off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    paths: tuple[Path, ...] = ()
    """Folders whose Python files (``weather.py``) and packages (``weather/__init__.py``) are
    loaded as extensions at start, and again by ``autohands extensions reload`` or ``/ext reload``
    (``~`` expands). Names starting with ``_`` or ``.`` are skipped."""
    disabled: tuple[str, ...] = ()
    """Extension ids (or file names without ``.py``) not to load, from a folder or installed."""
    poll_seconds: float = Field(default=2.0, gt=0, le=3600)
    """How often a running hub looks for an ``autohands extensions reload`` request."""

    def folders(self) -> tuple[Path, ...]:
        return tuple(p.expanduser() for p in self.paths)


def config_models() -> dict[str, type[BaseModel]]:
    """Entry point ``autohands.config:hub``: ``[extensions]``'s model, for ``autohands config reference``."""
    return {"extensions": ExtensionsConfig}


@dataclass(frozen=True, slots=True, kw_only=True)
class Provided:
    """One object an extension provides to a group: what the agent builds its tools from."""

    manifest: Manifest
    name: str
    """Its name in the group (the entry-point name)."""
    value: object


@runtime_checkable
class ExtensionSource(Protocol):
    """The hub's extensions as an agent sees them (``AgentServices.extensions``): what they
    provide now, a call when that changes (a reload), and where to report one that fails."""

    def provided(self, group: str) -> list[Provided]:
        """Third-party and folder extensions' objects of ``group`` (ours excluded), enabled ones only."""

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` after each reload that changed something; returns the unsubscribe."""

    def fail(self, extension_id: str, reason: str) -> None:
        """Mark an extension failed (its ``start`` raised): one error line, and the listing says why."""


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


class FolderSource(Protocol):
    """Extensions loaded from folders, seen as entry points (``hub._extension_folders``)."""

    def entry_points(self, group: str) -> Mapping[str, object]:
        """Name → object of ``group`` from every extension loaded now."""

    def failures(self) -> Mapping[str, str]:
        """Extension (file stem or id) → why it could not be loaded."""


_ACTIVE: list[FolderSource] = []


def activate_folders(source: FolderSource) -> None:
    """Let ``load_entry_point`` find ``source``'s extensions (after the installed ones)."""
    if source not in _ACTIVE:
        _ACTIVE.append(source)


def deactivate_folders(source: FolderSource) -> None:
    if source in _ACTIVE:
        _ACTIVE.remove(source)


def folder_entry_points(group: str) -> dict[str, object]:
    """Name → object of ``group`` from the active folders (the first folder wins a name)."""
    out: dict[str, object] = {}
    for source in _ACTIVE:
        for name, obj in source.entry_points(group).items():
            out.setdefault(name, obj)
    return out


def _find_entry_point(group: str, name: str) -> EntryPoint:
    """The entry point ``name`` of ``group``; ``PluginError`` listing the installed ones if none."""
    for ep in entry_points(group=group):
        if ep.name == name:
            return ep
    known = ", ".join(sorted({*(ep.name for ep in entry_points(group=group)), *folder_entry_points(group)})) or "none"
    failed = "".join(f"; {n} failed to load: {why}" for s in _ACTIVE for n, why in s.failures().items() if n == name)
    raise PluginError(f"no extension {name!r} in entry-point group {group!r} (installed: {known}){failed}")


@overload
def load_entry_point(group: Literal["autohands.channels"], name: str) -> ChannelClass[Any]: ...
@overload
def load_entry_point(group: Literal["autohands.agents"], name: str) -> AgentFactory: ...
@overload
def load_entry_point(group: Literal["autohands.memory"], name: str) -> MemoryBackendClass: ...
@overload
def load_entry_point(group: str, name: str) -> object: ...
def load_entry_point(group: str, name: str) -> object:
    """Import the object that entry point ``name`` of ``group`` names: an installed package's,
    else an active folder extension's.

    The group says what it is: a ``ChannelClass`` for ``autohands.channels`` (its config type is
    known only once loaded, hence ``Any`` there), an ``AgentFactory`` for ``autohands.agents``.
    Other groups give an ``object`` for the caller to check.

    Raises:
        PluginError: no such entry point, or importing it failed (the message names it).
    """
    if not any(ep.name == name for ep in entry_points(group=group)):
        found = folder_entry_points(group).get(name)
        if found is not None:
            return found
    ep = _find_entry_point(group, name)
    try:
        return ep.load()
    except Exception as exc:  # an extension's import error must name the extension
        raise PluginError(f"extension {name!r} ({ep.value}) failed to load: {exc}") from exc


def list_entry_points(group: str) -> list[EntryPoint]:
    """The installed entry points of ``group``, by name (none is loaded; folders not included)."""
    return sorted(entry_points(group=group), key=lambda ep: ep.name)


def is_builtin(ep: EntryPoint) -> bool:
    """Whether ``ep`` is one of ours (declared in AutoHands' own ``pyproject.toml``)."""
    return ep.dist is not None and ep.dist.name.lower() == "autohands"
