"""The ``shell`` tool in both modes: allowlist, no shell interpretation, timeout kill, output cap,
and the approval rule that refuses before anyone is asked and shows the exact command."""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
import shlex
import shutil
import time
import warnings
from pathlib import Path

import psutil
import pytest

from agents.tools import sandbox
from agents.tools.base import Risk, ToolContext
from agents.tools.config import ProgramArgs, ShellToolsConfig, ToolsConfig
from agents.tools.shell import run_command, shell_tools
from hub.errors import ToolDenied, ToolFailed

from .conftest_tools import call, make_ctx

# Test-only declarations, so that off mode can run a shell and env like the sandbox does.
TEST_PROGRAMS = {
    "sh": ProgramArgs(flags=("-c",), operands="text"),
    "env": ProgramArgs(operands=None),
}


@pytest.fixture(params=["bwrap", "off"])
def mode(request: pytest.FixtureRequest) -> str:
    if request.param == "bwrap" and shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    return str(request.param)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "a.txt").write_text("alpha\nbeta\n")
    return workspace.resolve()


def ctx_with(ws: Path, mode: str = "off", **shell: object) -> ToolContext:
    shell.setdefault("programs", TEST_PROGRAMS)
    return make_ctx(ws, ToolsConfig(shell=ShellToolsConfig(sandbox=mode, **shell)))  # type: ignore[arg-type]


def test_risk_is_high_by_default_and_configurable() -> None:
    assert run_command.risk is Risk.HIGH
    cfg = ShellToolsConfig(sandbox="off", risk=Risk.MEDIUM, timeout_seconds=7)
    [configured] = shell_tools(ToolsConfig(shell=cfg))
    assert configured.risk is Risk.MEDIUM and configured.timeout_seconds == 12 and configured.assess is not None


def test_config_refuses_paths_in_allowlist() -> None:
    with pytest.raises(ValueError, match="bare executable name"):
        ShellToolsConfig(allow_commands=("/bin/sh",))


async def test_runs_in_workspace(ws: Path, mode: str) -> None:
    ctx = ctx_with(ws, mode)
    assert await call(run_command, ctx, command="cat a.txt") == "exit code: 0\nalpha\nbeta\n"
    where = "/workspace" if mode == "bwrap" else str(ws)
    assert await call(run_command, ctx, command="pwd") == f"exit code: 0\n{where}\n"
    assert await call(run_command, ctx, command="grep -c nothing a.txt") == "exit code: 1\n0\n"


async def test_no_shell_interpretation(ws: Path, mode: str) -> None:
    ctx = ctx_with(ws, mode)
    out = await call(run_command, ctx, command="echo $HOME; rm x | cat && `id` > out.txt *")
    assert out == "exit code: 0\n$HOME; rm x | cat && `id` > out.txt *\n"
    assert not (ws / "out.txt").exists()


async def test_minimal_environment(ws: Path, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "s3cr3t")
    monkeypatch.setenv("VISIBLE", "yes")
    ctx = ctx_with(ws, mode, allow_commands=("env",), pass_env=("VISIBLE",))
    out = await call(run_command, ctx, command="env")
    assert "s3cr3t" not in out
    assert "VISIBLE=yes" in out and "PATH=/usr/local/bin:/usr/bin:/bin" in out and "LC_ALL=C.UTF-8" in out


async def test_allowlist(ws: Path, mode: str) -> None:
    ctx = ctx_with(ws, mode, allow_commands=("ls", "cat"))
    with pytest.raises(ToolDenied, match=r"'rm' is not allowed; allowed commands: ls, cat"):
        await call(run_command, ctx, command="rm a.txt")
    with pytest.raises(ToolDenied, match="not allowed"):
        await call(run_command, ctx, command="/bin/ls")
    with pytest.raises(ToolFailed, match="empty command"):
        await call(run_command, ctx, command="   ")
    with pytest.raises(ToolFailed, match="cannot parse command"):
        await call(run_command, ctx, command="cat 'unterminated")
    assert (ws / "a.txt").exists()


async def test_output_cap(ws: Path, mode: str) -> None:
    (ws / "big.txt").write_text("x" * 100_000)
    ctx = ctx_with(ws, mode, max_output_bytes=100)
    out = await call(run_command, ctx, command="cat big.txt")
    assert out == "exit code: 0\n" + "x" * 100 + "\n[output truncated: first 100 of 100000 bytes shown]"


def _alive(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if marker in " ".join(proc.info["cmdline"] or ()) and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


async def _wait_none_alive(marker: str) -> None:
    """Killed processes take a moment to go: bounded, and polled because the kernel sends no event."""
    async with asyncio.timeout(5):
        while _alive(marker):  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_timeout_kills_every_process(ws: Path, mode: str) -> None:
    marker = f"29.{secrets.randbelow(10**6):06d}"
    ctx = ctx_with(ws, mode, allow_commands=("sh",), timeout_seconds=0.5)
    # The shell starts a background child; both must die when the command times out.
    script = f"sleep {marker} & sleep {marker}; wait"
    started = time.monotonic()
    with pytest.raises(ToolFailed, match=r"timed out after 0.5s and was killed"):
        await call(run_command, ctx, command=f"sh -c {shlex.quote(script)}")
    assert time.monotonic() - started < 5
    await _wait_none_alive(marker)


async def test_cancellation_kills_and_reaps_the_process(ws: Path, mode: str) -> None:
    """Killed, then waited for before the cancellation returns: not left for the child watcher
    and the garbage collector (its transport was once found unclosed after the loop ended)."""
    marker = f"28.{secrets.randbelow(10**6):06d}"
    ctx = ctx_with(ws, mode, allow_commands=("sh",), timeout_seconds=30)
    script = f"echo started > started.txt; sleep {marker}"
    task = asyncio.create_task(call(run_command, ctx, command=f"sh -c {shlex.quote(script)}"))
    async with asyncio.timeout(5):
        # The child writes the file; there is no event to await across the process boundary.
        while not (ws / "started.txt").exists() or not (ws / "started.txt").read_text().strip():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _wait_none_alive(marker)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    assert not [w for w in caught if "unclosed transport" in str(w.message)]


async def test_assess_shows_where_and_the_whole_argument_vector(ws: Path, mode: str) -> None:
    ctx = ctx_with(ws, mode)
    [configured] = shell_tools(ctx.config)
    assert configured.assess is not None
    words = [f"word{n:02d}-{'x' * 3}" for n in range(30)] + ["it's", "a b", "$HOME;|>"]
    command = "echo " + " ".join(shlex.quote(w) for w in words)
    tail = "y" * (408 - len(command) - 1)
    command += " " + tail
    assert len(command) == 408
    approval = configured.assess({"command": command}, ctx)
    assert approval is not None and approval.remember_as is None and approval.grantable
    where = "in the sandbox: only your workspace is writable, no network" if mode == "bwrap" else "WITHOUT a sandbox"
    assert where in approval.reason
    lines = approval.detail.splitlines()
    assert lines[1:] == [f"  {n}: {shlex.quote(arg)}" for n, arg in enumerate(["echo", *words, tail])]


async def test_assess_refuses_before_anyone_is_asked(ws: Path, mode: str) -> None:
    ctx = ctx_with(ws, mode, allow_commands=("cat", "no-such-program-here"))
    [configured] = shell_tools(ctx.config)
    assert configured.assess is not None
    with pytest.raises(ToolDenied, match="not allowed"):
        configured.assess({"command": "rm -rf ."}, ctx)
    with pytest.raises(ToolFailed, match="not installed"):
        configured.assess({"command": "no-such-program-here"}, ctx)
    with pytest.raises(ToolFailed, match="cannot parse"):
        configured.assess({"command": "cat 'x"}, ctx)


def test_low_risk_runs_without_asking_but_still_refuses(ws: Path) -> None:
    ctx = make_ctx(ws, ToolsConfig(shell=ShellToolsConfig(sandbox="off", risk=Risk.LOW)))
    [configured] = shell_tools(ctx.config)
    assert configured.assess is not None
    assert configured.assess({"command": "cat a.txt"}, ctx) is None
    with pytest.raises(ToolDenied):
        configured.assess({"command": "cat ../x"}, ctx)


def test_off_mode_logs_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="agents.tools.shell"):
        assert len(shell_tools(ToolsConfig(shell=ShellToolsConfig(sandbox="off")))) == 1
    [record] = caplog.records
    assert record.levelno == logging.WARNING and "WITHOUT a sandbox" in record.getMessage()


def test_sandbox_problem_names_the_fix_when_bwrap_is_missing(caplog: pytest.LogCaptureFixture) -> None:
    cfg = ToolsConfig()
    problem = sandbox.sandbox_problem(cfg.shell, bwrap="/nonexistent/bwrap")
    assert problem is not None and "apt-get install bubblewrap" in problem and 'sandbox = "off"' in problem
    with caplog.at_level(logging.WARNING, logger="agents.tools.shell"):
        assert shell_tools(cfg, bwrap="/nonexistent/bwrap") == []
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.getMessage().startswith("run_command is disabled: ")
    assert sandbox.sandbox_status(cfg.shell, bwrap="/nonexistent/bwrap")[0] == "DISABLED"


def test_too_old_bubblewrap_is_named(tmp_path: Path) -> None:
    fake = tmp_path / "old-bwrap"
    fake.write_text("#!/bin/sh\necho bubblewrap 0.6.1\n")
    fake.chmod(0o755)
    problem = sandbox.sandbox_problem(ShellToolsConfig(), bwrap=str(fake))
    assert problem is not None and "0.6.1 is too old" in problem
