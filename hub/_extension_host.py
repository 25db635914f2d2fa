"""The running hub's extensions: folders loaded at start, reloaded on request, ``/ext``.

A reload is asked for in one of two ways: ``/ext reload`` from an admin in chat, or
``autohands extensions reload`` beside the running hub, which writes a request file in the data
directory that the hub polls (``[extensions] poll_seconds``) and answers with a file of its own
(``ReloadRequests``). Either way the agent hears of the change through ``subscribe`` and swaps
its tool registry between runs: a run in flight keeps the registry it started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ._extension_folders import ExtensionFolders, ReloadReport
from ._lifecycle import Lifecycle
from .commands import Command, CommandCall, CommandRegistry
from .errors import PluginError
from .extensions import (
    ExtensionsConfig,
    Provided,
    activate_folders,
    check_manifest,
    deactivate_folders,
    is_builtin,
    list_entry_points,
    load_entry_point,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReloadRequests:
    """The request and answer files ``autohands extensions reload`` and the hub exchange."""

    data_dir: Path

    @property
    def request(self) -> Path:
        return self.data_dir / "extensions.reload"

    @property
    def answer(self) -> Path:
        return self.data_dir / "extensions.reloaded"

    def ask(self) -> str:
        """Write a request; returns its id, which the answer carries."""
        rid = secrets.token_hex(8)
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_atomically(self.request, rid)
        return rid

    def answered(self, rid: str) -> str | None:
        """The hub's answer line to request ``rid``, or None while there is none."""
        try:
            body = json.loads(self.answer.read_text())
        except (OSError, ValueError):
            return None
        return str(body.get("report")) if isinstance(body, dict) and body.get("id") == rid else None

    def take(self) -> str | None:
        """The pending request's id (the request is consumed), or None."""
        try:
            rid = self.request.read_text().strip()
            self.request.unlink()
        except OSError:
            return None
        return rid or None

    def reply(self, rid: str, report: str) -> None:
        _write_atomically(self.answer, json.dumps({"id": rid, "report": report}))


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class ExtensionHost:
    """The hub's part for extensions (an ``ExtensionSource`` for the agent).

    Args:
        config: the validated ``[extensions]`` section.
        data_dir: where reload requests arrive; None: only ``/ext reload`` reloads.
    """

    def __init__(self, config: ExtensionsConfig, data_dir: Path | None) -> None:
        self.config = config
        self.folders = ExtensionFolders(config.folders(), frozenset(config.disabled))
        self._requests = ReloadRequests(data_dir) if data_dir is not None else None
        self._failed: dict[str, str] = {}
        self._installed: list[Provided] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._life = Lifecycle("ExtensionHost")

    async def start(self) -> None:
        with self._life.starting():
            if self.config.paths:
                log.info("%s", self.folders.reload().line())
            activate_folders(self.folders)
            if self._requests is not None:
                self._requests.take()  # a request left from before this start is answered by it
                self._poller = asyncio.create_task(self._poll(self._requests), name="extensions-reload")

    async def stop(self) -> None:
        if not self._life.stopping():
            return
        deactivate_folders(self.folders)
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    async def __aenter__(self) -> ExtensionHost:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def reload(self) -> ReloadReport:
        """Bring the folders in line with the disk; the agent's next run sees the result."""
        report = self.folders.reload()
        for ext in self.folders.extensions():
            if ext.key in report.loaded or ext.key in report.reloaded:
                self._failed.pop(ext.manifest.id, None)
        log.info("%s", report.line())
        return report

    async def _poll(self, requests: ReloadRequests) -> None:
        while True:
            await asyncio.sleep(self.config.poll_seconds)
            rid = requests.take()
            if rid is not None:
                requests.reply(rid, self.reload().line())

    # ------------------------------------------------------------------ ExtensionSource
    def provided(self, group: str) -> list[Provided]:
        out = [p for p in self._installed_tools() if group == "autohands.tools"]
        for ext in self.folders.extensions():
            out += [
                Provided(manifest=ext.manifest, name=n, value=v) for n, v in ext.entry_points.get(group, {}).items()
            ]
        return [p for p in out if p.manifest.id not in self._failed]

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        return self.folders.subscribe(listener)

    def fail(self, extension_id: str, reason: str) -> None:
        log.error("extension %s failed: %s", extension_id, reason)
        self._failed[extension_id] = reason

    def failures(self) -> dict[str, str]:
        """Every extension that failed, by id or file: at load (folders) or at start."""
        return {**self.folders.failures(), **self._failed}

    def _installed_tools(self) -> list[Provided]:
        """Installed third-party ``autohands.tools`` entry points (ours are built by the agent
        from ``[tools] enabled``), loaded once: an installed package changes with a restart."""
        if self._installed is None:
            self._installed = []
            for ep in list_entry_points("autohands.tools"):
                if is_builtin(ep) or ep.name in self.config.disabled:
                    continue
                try:
                    value = load_entry_point("autohands.tools", ep.name)
                    manifest = check_manifest(getattr(value, "manifest", None), f"extension {ep.name!r}")
                except PluginError as exc:
                    self.fail(ep.name, str(exc))
                    continue
                self._installed.append(Provided(manifest=manifest, name=ep.name, value=value))
        return self._installed

    # ------------------------------------------------------------------ /ext
    def command(self) -> Command:
        return Command(
            name="ext",
            description="list extensions; an admin can reload them",
            usage="[reload]",
            handler=self._ext,
        )

    async def _ext(self, call: CommandCall) -> str:
        if call.args.strip() == "reload":
            if not call.is_admin:
                return "Only an admin can reload extensions."
            return self.reload().line()
        if call.args.strip():
            return "Usage: /ext or /ext reload"
        return self.summary()

    def summary(self) -> str:
        lines = [f"{e.manifest.title} {e.manifest.version} ({e.key}): loaded" for e in self.folders.extensions()]
        lines += [f"{key}: failed: {why}" for key, why in self.failures().items()]
        return "\n".join(["Extensions:", *lines]) if lines else "No extensions loaded from [extensions] paths."


def register_extension_host(commands: CommandRegistry, host: ExtensionHost) -> None:
    commands.add(host.command())
