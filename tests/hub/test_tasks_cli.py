"""``autohands tasks`` as an operator runs it (a subprocess) beside a running hub: submit and
wait for the result, list, show, control, refusals as one line on stderr, exit codes."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.agent import Checkpointing, RunContext
from hub.app import Hub
from hub.config import load_settings
from hub.messages import Outbound
from tests.fakes.llm_script import LLMScript
from tests.fakes.openai_server import FakeOpenAI
from tests.hub.conftest import FuncAgent, RecordingChannel, reply
from tests.hub.test_cli import one_error_line, run_cli


class Gate:
    """Task runs whose text starts with "slow" wait for ``release`` after their first step."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.stepped = asyncio.Event()

    async def run(self, ctx: RunContext) -> AsyncIterator[Outbound]:
        if isinstance(ctx, Checkpointing) and not ctx.resuming and ctx.inbound.text.startswith("slow"):
            self.stepped.set()
            await self.release.wait()
            await ctx.step([], label="waited")
        yield reply(ctx, f"done: {ctx.inbound.text}")


class Beside:
    """A hub in this process, and ``autohands tasks …`` beside it on the same database."""

    def __init__(self, tmp_path: Path, hub: Hub, gate: Gate, cfg: Path) -> None:
        self.tmp_path, self.hub, self.gate, self.cfg = tmp_path, hub, gate, cfg

    async def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(run_cli, "tasks", *args, "--config", str(self.cfg), home=self.tmp_path)


@pytest.fixture
async def beside(tmp_path: Path) -> AsyncIterator[Beside]:
    data = tmp_path / "data"
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[hub]\ndata_dir = "{data}"\n[server]\nenabled = false\n[agent]\nruntime = "none"\n'
        "[tasks]\npoll_seconds = 0.05\n"
    )
    settings = load_settings(
        environ={},
        overrides={
            "hub": {"data_dir": str(data)},
            "server": {"enabled": False},
            "agent": {"runtime": "none"},
            "tasks": {"poll_seconds": 0.05},
        },
    )
    gate = Gate()
    async with Hub(settings, agent=FuncAgent(gate.run), channels={"rec": RecordingChannel()}) as hub:
        yield Beside(tmp_path, hub, gate, cfg)


async def test_submit_wait_prints_the_result_then_list_and_show(beside: Beside) -> None:
    done = await beside.cli("submit", "add 2 and 2", "--mode", "react", "--priority", "5", "--wait", "--timeout", "20")
    assert done.returncode == 0, done.stderr
    first, result = done.stdout.splitlines()
    task_id = first.split()[1]
    assert first == f"task {task_id} submitted (pending)" and result == "done: add 2 and 2"
    task = await beside.hub.tasks.get(task_id)
    assert (task.state, task.mode, task.priority) == ("completed", "react", 5)

    listing = await beside.cli("list")
    assert listing.returncode == 0 and listing.stdout.startswith(f"{task_id} — completed, ")
    assert listing.stdout.rstrip().endswith("add 2 and 2")
    only = await beside.cli("list", "--state", "failed")
    assert only.stdout.strip() == "no tasks"
    shown = await beside.cli("show", task_id)
    assert shown.returncode == 0 and shown.stdout.startswith(f"Task {task_id}: completed (mode react, priority 5")
    assert "Result: done: add 2 and 2" in shown.stdout


async def test_control_a_running_task_and_refusals(beside: Beside) -> None:
    submitted = await beside.cli("submit", "slow work")
    assert submitted.returncode == 0, submitted.stderr
    task_id = submitted.stdout.split()[1]
    await asyncio.wait_for(beside.gate.stepped.wait(), 20)

    waited = await beside.cli("wait", task_id, "--timeout", "1")
    assert "has not ended after 1 s" in one_error_line(waited) and waited.returncode == 1

    refused = await beside.cli("resume", task_id)
    line = one_error_line(refused)
    assert line.startswith(f"autohands: error: task {task_id} is running, so it cannot resume; ")
    assert "pause it" in line and "cancel it" in line  # what can be done from there
    assert refused.returncode == 1

    cancelled = await beside.cli("cancel", task_id)
    assert cancelled.returncode == 0 and cancelled.stdout.startswith(f"task {task_id}: cancel asked")
    assert (await beside.hub.tasks.wait(task_id, timeout=20)).state == "cancelled"
    ended = await beside.cli("wait", task_id)
    assert one_error_line(ended).startswith(f"autohands: error: task {task_id} cancelled") and ended.returncode == 1

    beside.gate.release.set()
    again = await beside.cli("retry", task_id, "--from-start")
    assert again.returncode == 0, again.stderr
    assert (await beside.hub.tasks.wait(task_id, timeout=20)).state == "completed"


async def test_unknown_task_and_usage_errors(beside: Beside) -> None:
    unknown = await beside.cli("show", "nosuch")
    assert one_error_line(unknown) == "autohands: error: no task nosuch" and unknown.returncode == 1
    no_action = await beside.cli()
    assert "'tasks' needs an action" in one_error_line(no_action) and no_action.returncode == 2
    bad_mode = await beside.cli("submit", "x", "--mode", "fast")
    assert "invalid choice: 'fast'" in one_error_line(bad_mode) and bad_mode.returncode == 2


async def test_the_readme_python_example_runs_against_the_fake_model(tmp_path: Path) -> None:
    """README "Background tasks, and AutoHands inside your program", run as written with the
    config at ``~/.autohands/config.toml`` (a temporary home)."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("## Background tasks") :]
    [example] = re.findall(r"```python\n(.*?)```", section[: section.index("\n## ", 5)], flags=re.S)
    async with FakeOpenAI(LLMScript(default="echo", api_key="sk-local")) as llm:
        (tmp_path / ".autohands").mkdir()
        (tmp_path / ".autohands" / "config.toml").write_text(
            f'[hub]\ndata_dir = "{tmp_path / "data"}"\n[server]\nenabled = false\n'
            f'[providers.local]\nkind = "openai"\nbase_url = "{llm.base_url}"\napi_key = "sk-local"\nmodel = "m"\n'
            f'[agent]\nprovider = "local"\n[tools]\nenabled = ["math"]\nworkspace = "{tmp_path / "ws"}"\n'
        )
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", example],
            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
            cwd=Path(__file__).parents[2],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    first, rest = done.stdout.split("\n", 1)
    assert first.startswith("submitted ") and first.endswith(" pending")
    assert rest.startswith("completed echo: ")  # the fake model echoes what it was asked
    assert rest.index("Write a haiku about the sea") < rest.index("What is 17 * 23?")
