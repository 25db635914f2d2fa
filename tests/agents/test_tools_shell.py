"""The ``shell`` tool: allowlist, no shell interpretation, timeout kill, output cap."""

from __future__ import annotations

import asyncio
import gc
import time
import warnings
from pathlib import Path

import psutil
import pytest

from agents.tools.base import Risk, ToolContext
from agents.tools.config import ShellToolsConfig, ToolsConfig
from agents.tools.shell import run_command, shell_tools
from hub.errors import ToolDenied, ToolFailed

from .conftest_tools import call, make_ctx


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "a.txt").write_text("alpha\nbeta\n")
    return workspace.resolve()


def ctx_with(ws: Path, **shell: object) -> ToolContext:
    return make_ctx(ws, ToolsConfig(shell=ShellToolsConfig(**shell)))  # type: ignore[arg-type]


def test_risk_is_high_by_default_and_configurable() -> None:
    assert run_command.risk is Risk.HIGH
    [configured] = shell_tools(ToolsConfig(shell=ShellToolsConfig(risk=Risk.MEDIUM, timeout_seconds=7)))
    assert configured.risk is Risk.MEDIUM and configured.timeout_seconds == 12


def test_config_refuses_paths_in_allowlist() -> None:
    with pytest.raises(ValueError, match="bare executable name"):
        ShellToolsConfig(allow_commands=("/bin/sh",))


async def test_runs_in_workspace(ws: Path) -> None:
    ctx = ctx_with(ws)
    assert await call(run_command, ctx, command="cat a.txt") == "exit code: 0\nalpha\nbeta\n"
    assert await call(run_command, ctx, command="pwd") == f"exit code: 0\n{ws}\n"
    out = await call(run_command, ctx, command="grep -c nothing a.txt")
    assert out == "exit code: 1\n0\n"


async def test_no_shell_interpretation(ws: Path) -> None:
    ctx = ctx_with(ws)
    out = await call(run_command, ctx, command="echo $HOME; rm -rf x | cat && `id` > out.txt *")
    assert out == "exit code: 0\n$HOME; rm -rf x | cat && `id` > out.txt *\n"
    assert not (ws / "out.txt").exists()


async def test_minimal_environment(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "s3cr3t")
    monkeypatch.setenv("VISIBLE", "yes")
    ctx = ctx_with(ws, allow_commands=("env",), pass_env=("VISIBLE",))
    out = await call(run_command, ctx, command="env")
    assert "s3cr3t" not in out
    assert "VISIBLE=yes" in out and "PATH=/usr/local/bin:/usr/bin:/bin" in out


async def test_allowlist(ws: Path) -> None:
    ctx = ctx_with(ws, allow_commands=("ls", "cat"))
    with pytest.raises(ToolDenied, match=r"'rm' is not allowed; allowed commands: ls, cat"):
        await call(run_command, ctx, command="rm a.txt")
    with pytest.raises(ToolDenied, match="not allowed"):
        await call(run_command, ctx, command="/bin/ls")
    with pytest.raises(ToolFailed, match="empty command"):
        await call(run_command, ctx, command="   ")
    with pytest.raises(ToolFailed, match="cannot parse command"):
        await call(run_command, ctx, command="cat 'unterminated")
    assert (ws / "a.txt").exists()


async def test_arguments_outside_workspace_refused(ws: Path, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s")
    (ws / "link").symlink_to(tmp_path / "secret")
    ctx = ctx_with(ws)
    for command in (
        "cat /etc/passwd",
        "cat ../secret",
        "grep --file=/etc/passwd a.txt",
        "cat ~/x",
        "cat link",
    ):
        with pytest.raises(ToolDenied):
            await call(run_command, ctx, command=command)
    assert (await call(run_command, ctx, command=f"cat {ws / 'a.txt'}")).startswith("exit code: 0")


async def test_output_cap(ws: Path) -> None:
    (ws / "big.txt").write_text("x" * 100_000)
    ctx = ctx_with(ws, max_output_bytes=100)
    out = await call(run_command, ctx, command="cat big.txt")
    assert out == "exit code: 0\n" + "x" * 100 + "\n[output truncated: first 100 of 100000 bytes shown]"


async def test_timeout_kills_the_process_group(ws: Path) -> None:
    ctx = ctx_with(ws, allow_commands=("sh",), timeout_seconds=0.5)
    # The shell starts a background child; both must die when the command times out.
    script = "sleep 30 & echo $! > child.pid; echo $$ > leader.pid; wait"
    started = time.monotonic()
    with pytest.raises(ToolFailed, match=r"timed out after 0.5s and was killed"):
        await call(run_command, ctx, command=f"sh -c '{script}'")
    assert time.monotonic() - started < 5
    for name in ("leader.pid", "child.pid"):
        pid = int((ws / name).read_text())
        await _wait_gone(pid)


async def _wait_gone(pid: int) -> None:
    async with asyncio.timeout(5):
        while True:
            try:
                if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                    return
            except psutil.NoSuchProcess:
                return
            await asyncio.sleep(0.02)


async def test_cancellation_kills_and_reaps_the_process(ws: Path) -> None:
    """Killed, then waited for before the cancellation returns: not left for the child watcher
    and the garbage collector (its transport was once found unclosed after the loop ended)."""
    ctx = ctx_with(ws, allow_commands=("sh",), timeout_seconds=30)
    task = asyncio.create_task(call(run_command, ctx, command="sh -c 'echo $$ > leader.pid; sleep 30'"))
    async with asyncio.timeout(5):
        # The child writes the file; there is no event to await across the process boundary.
        while not (ws / "leader.pid").exists() or not (ws / "leader.pid").read_text().strip():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not psutil.pid_exists(int((ws / "leader.pid").read_text()))  # reaped: not even a zombie
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    assert not [w for w in caught if "unclosed transport" in str(w.message)]

