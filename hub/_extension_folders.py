"""Extensions in ``[extensions] paths``: Python files and packages imported at run time.

A folder extension is a module with two names at its top level::

    manifest = Manifest(id="weather", description="…", provides=("tool:weather",))
    entry_points = {"autohands.tools": {"weather": WEATHER}}

``entry_points`` is the table a ``pyproject.toml`` would declare (group → name → object), with
the objects themselves. ``ExtensionFolders.reload`` re-imports what changed on disk (by content
hash), drops what was removed and imports what is new. A module that fails to import, or whose
manifest or table is wrong, becomes a ``FolderFailure`` with one error line in the log; the
others load. Objects handed out earlier stay as they were: a module is re-executed under a
fresh ``sys.modules`` entry, never mutated, so a run that holds the old objects keeps them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from .errors import PluginError
from .extensions import GROUPS, Manifest, check_manifest

log = logging.getLogger(__name__)

MODULE_PREFIX = "autohands_ext_"
"""Folder extensions are imported as ``autohands_ext_<file stem>`` (submodules below it)."""


@dataclass(frozen=True, slots=True)
class FolderExtension:
    manifest: Manifest
    key: str
    """The file or package name (``weather``)."""
    path: Path
    entry_points: Mapping[str, Mapping[str, object]]
    digest: str
    """Hash of its source files: a reload re-imports only when it changed."""


@dataclass(frozen=True, slots=True)
class FolderFailure:
    key: str
    path: Path
    error: str
    digest: str = ""


@dataclass(frozen=True, slots=True)
class ReloadReport:
    """What one (re)load did, by extension key."""

    loaded: tuple[str, ...] = ()
    reloaded: tuple[str, ...] = ()
    unloaded: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()
    unchanged: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.loaded or self.reloaded or self.unloaded or self.failed)

    def line(self) -> str:
        """One line for the log, the CLI and ``/ext reload``."""
        parts = [
            f"{verb} {', '.join(keys)}"
            for verb, keys in (("loaded", self.loaded), ("reloaded", self.reloaded), ("unloaded", self.unloaded))
            if keys
        ]
        parts += [f"{key} failed: {why}" for key, why in self.failed]
        if self.unchanged:
            parts.append(f"{len(self.unchanged)} unchanged")
        return "extensions: " + ("; ".join(parts) if parts else "no extension folders hold any")


@dataclass(slots=True)
class ExtensionFolders:
    """The extensions found in ``folders``; ``reload`` brings them in line with the disk."""

    folders: tuple[Path, ...]
    disabled: frozenset[str] = frozenset()
    _loaded: dict[str, FolderExtension] = field(default_factory=dict)
    _failed: dict[str, FolderFailure] = field(default_factory=dict)
    _listeners: list[Callable[[], None]] = field(default_factory=list)

    # ------------------------------------------------------------------ FolderSource
    def entry_points(self, group: str) -> dict[str, object]:
        return {name: obj for ext in self._loaded.values() for name, obj in ext.entry_points.get(group, {}).items()}

    def failures(self) -> dict[str, str]:
        return {key: f.error for key, f in self._failed.items()}

    def extensions(self) -> list[FolderExtension]:
        return list(self._loaded.values())

    def failed(self) -> list[FolderFailure]:
        return list(self._failed.values())

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    # ------------------------------------------------------------------ loading
    def reload(self) -> ReloadReport:
        """Import what is new or changed, drop what is gone; listeners hear of any change."""
        found = dict(_candidates(self.folders, self.disabled))
        before = dict(self._loaded)
        report: dict[str, list[str]] = {"loaded": [], "reloaded": [], "unloaded": [], "unchanged": []}
        failed: list[tuple[str, str]] = []
        for key in [k for k in (*self._loaded, *self._failed) if k not in found]:
            if self._loaded.pop(key, None) is not None:
                report["unloaded"].append(key)
            self._failed.pop(key, None)
            _forget_modules(key)
        for key, path in found.items():
            digest = _digest(path)
            old: FolderExtension | FolderFailure | None = self._loaded.get(key) or self._failed.get(key)
            if old is not None and old.digest == digest:
                report["unchanged"].append(key)
                continue
            outcome = self._load_one(key, path, digest)
            if isinstance(outcome, FolderFailure):
                failed.append((key, outcome.error))
                if key in before:
                    report["unloaded"].append(key)
            else:
                report["reloaded" if key in before else "loaded"].append(key)
        result = ReloadReport(
            loaded=tuple(report["loaded"]),
            reloaded=tuple(report["reloaded"]),
            unloaded=tuple(report["unloaded"]),
            failed=tuple(failed),
            unchanged=tuple(report["unchanged"]),
        )
        if result.changed:
            self._notify()
        return result

    def _load_one(self, key: str, path: Path, digest: str) -> FolderExtension | FolderFailure:
        self._loaded.pop(key, None)
        self._failed.pop(key, None)
        try:
            ext = _import(key, path, digest)
            if ext.manifest.id in self.disabled:
                raise PluginError(f"{path}: disabled in [extensions] disabled")
        except Exception as exc:  # any error in someone else's module: isolate it, say why
            why = str(exc) if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}"
            log.error("extension %s (%s) failed to load: %s", key, path, why)
            failure = self._failed[key] = FolderFailure(key, path, why, digest)
            return failure
        self._loaded[key] = ext
        return ext

    def _notify(self) -> None:
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:  # one listener's bug must not keep the others stale
                log.exception("an extensions listener failed")


def _candidates(folders: tuple[Path, ...], disabled: frozenset[str]) -> Iterator[tuple[str, Path]]:
    """(key, path) of each extension file or package, folder by folder, by name; a name seen in an
    earlier folder wins."""
    seen: set[str] = set()
    for folder in folders:
        if not folder.is_dir():
            log.warning("[extensions] paths: %s is not a folder; skipped", folder)
            continue
        for path in sorted(folder.iterdir()):
            key = path.stem if path.suffix == ".py" else path.name
            usable = (path.suffix == ".py" and path.is_file()) or (path / "__init__.py").is_file()
            if not usable or key[:1] in "_." or key in seen or key in disabled or not key.isidentifier():
                continue
            seen.add(key)
            yield key, path


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(path.rglob("*.py"))
    for f in files:
        h.update(str(f.relative_to(path.parent)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _import(key: str, path: Path, digest: str) -> FolderExtension:
    """Execute the module afresh and read its manifest and table."""
    _forget_modules(key)
    name = MODULE_PREFIX + key
    init = path if path.is_file() else path / "__init__.py"
    locations = None if path.is_file() else [str(path)]
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=locations)
    if spec is None or spec.loader is None:
        raise PluginError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and relative imports look the module up there
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    manifest = check_manifest(getattr(module, "manifest", None), str(path))
    return FolderExtension(manifest, key, path, _table(module, path), digest)


def _table(module: ModuleType, path: Path) -> dict[str, dict[str, object]]:
    table = getattr(module, "entry_points", None)
    if not isinstance(table, Mapping) or not table:
        raise PluginError(f'{path}: no entry_points (expected e.g. {{"autohands.tools": {{"name": object}}}})')
    out: dict[str, dict[str, object]] = {}
    for group, names in table.items():
        if group not in GROUPS:
            raise PluginError(f"{path}: entry_points group {group!r} is not one of {', '.join(GROUPS)}")
        if not isinstance(names, Mapping) or not all(isinstance(n, str) for n in names):
            raise PluginError(f"{path}: entry_points[{group!r}] must map names to objects")
        out[str(group)] = dict(names)
    return out


def _forget_modules(key: str) -> None:
    """Drop the extension's modules from ``sys.modules``, so the next import runs them afresh."""
    name = MODULE_PREFIX + key
    for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[mod]
