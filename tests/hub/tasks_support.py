"""Helpers for the task pool's tests: a hub on the fake model with the shell tool allowed."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import psutil

from hub.config import Settings, load_settings
from hub.messages import ConversationRef, Sender
from hub.tasks import Task, TaskEvent, Tasks
from tests.fakes.llm_script import ScriptedCall
from tests.fakes.openai_server import FakeOpenAI

OWNER = Sender(id="u1", name="Ann")
OTHER = Sender(id="u2", name="Bob")
ADMIN = Sender(id="root", name="Root", is_admin=True)
CONV = ConversationRef(channel="rec", chat="c1")


def llm_settings(tmp_path: Path, llm: FakeOpenAI, *, risk: str = "low", **over: Any) -> Settings:
    """A hub on ``tmp_path`` whose agent talks to ``llm`` and may run ``sh`` and ``sleep``
    unasked (sandbox off, low risk: the tests count and kill real processes)."""
    base: dict[str, Any] = {
        "hub": {"data_dir": str(tmp_path / "data")},
        "server": {"enabled": False},
        "channels": {"web": {"enabled": False}, "api": {"enabled": False}},
        "providers": {"local": {"kind": "openai", "base_url": llm.base_url, "api_key": "sk-local", "model": "m1"}},
        "agent": {"provider": "local"},
        "tools": {
            "workspace": str(tmp_path / "ws"),
            "workspace_scope": "shared",
            "shell": {
                "sandbox": "off",
                "risk": risk,
                "allow_commands": ["sh", "sleep"],
                "programs": {"sh": {"flags": ["-c"], "operands": "text"}, "sleep": {"operands": "text"}},
            },
        },
    }
    for k, v in over.items():
        base[k] = {**base.get(k, {}), **v}
    return load_settings(environ={}, overrides=base)


def shell(script: str) -> ScriptedCall:
    return ScriptedCall("run_command", {"command": f"sh -c '{script}'"})


def marker() -> str:
    return f"31.{secrets.randbelow(10**6):06d}"


def alive(mark: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if mark in " ".join(proc.info["cmdline"] or ()) and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


async def until(predicate: Any, timeout: float = 10.0) -> None:
    """Poll what has no event to await (another process, a file a child writes): bounded."""
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def next_event(events: Any, kind: str, detail: str = "", timeout: float = 10.0) -> TaskEvent:
    """The next event of ``kind`` whose detail contains ``detail``."""
    async with asyncio.timeout(timeout):
        async for event in events:
            if event.kind == kind and detail in event.detail:
                assert isinstance(event, TaskEvent)
                return event
    raise AssertionError(f"the events ended before a {kind} {detail!r}")


async def settled(tasks: Tasks, task: Task, timeout: float = 10.0) -> Task:
    return await tasks.wait(task.id, timeout=timeout)


def calls_made(tmp_path: Path, name: str = "calls.txt") -> int:
    """Lines the scripted ``sh`` commands appended to ``name`` in the workspace."""
    return sum(len(p.read_text().splitlines()) for p in (tmp_path / "ws").rglob(name))
