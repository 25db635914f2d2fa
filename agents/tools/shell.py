"""The ``shell`` category: run one allowlisted command, without a shell, in the workspace.

The command line is split with ``shlex`` and executed directly, so pipes, redirections,
``;``, ``$(…)`` and globs are plain arguments, never interpreted. The child runs in its own
session (process group) with a minimal environment and ``cwd`` = workspace; on timeout the
whole group is killed. Arguments that name a path outside the workspace are refused as a
second line of defence; the real guard is the allowlist plus the user's approval (high risk).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import shutil
import signal
from pathlib import Path

from hub.errors import ToolDenied, ToolFailed

from . import _paths
from .base import Risk, Tool, ToolContext
from .config import ShellToolsConfig, ToolsConfig
from .decorator import configure, tool

logger = logging.getLogger(__name__)

_SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
REAP_TIMEOUT_SECONDS = 5.0


def _settings(ctx: ToolContext) -> ShellToolsConfig:
    cfg = ctx.config
    return cfg.shell if isinstance(cfg, ToolsConfig) else ShellToolsConfig()


def _check_argument(root: Path, arg: str) -> None:
    """Refuse arguments that point outside the workspace (``/etc/passwd``, ``--file=../x``)."""
    value = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
    if not value or "\x00" in value:
        return
    lexical_escape = value.startswith(("/", "~")) or ".." in Path(value).parts
    # An existing name may be a symlink inside the workspace that points outside.
    if not (lexical_escape or os.path.lexists(root / value)):
        return
    if value.startswith("~"):
        raise ToolDenied(f"argument {arg!r} refers to a home directory; use workspace paths")
    resolved = Path(os.path.normpath(root / value)).resolve()
    if not (resolved == root or resolved.is_relative_to(root)):
        raise ToolDenied(f"argument {arg!r} points outside the workspace")


def _environment(cfg: ShellToolsConfig, root: Path) -> dict[str, str]:
    env = {"PATH": _SAFE_PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": str(root)}
    env.update({name: os.environ[name] for name in cfg.pass_env if name in os.environ})
    return env


async def _collect(stream: asyncio.StreamReader, cap: int) -> tuple[bytes, int]:
    """Keep the first ``cap`` bytes, drain (and count) the rest so the child never blocks."""
    kept = bytearray()
    total = 0
    while chunk := await stream.read(65536):
        total += len(chunk)
        if len(kept) < cap:
            kept += chunk[: cap - len(kept)]
    return bytes(kept), total


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def _reap(proc: asyncio.subprocess.Process) -> None:
    """Wait for a killed command: read its pipe to the end and collect its exit status, so the
    transport closes now (left to the garbage collector, it may outlive the event loop).
    SIGKILL makes this quick; the bound only guards against a process stuck in the kernel."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(REAP_TIMEOUT_SECONDS):
            await proc.communicate()


@tool(category="shell", risk=Risk.HIGH, permissions=("shell.exec",), timeout_seconds=3600)
async def run_command(ctx: ToolContext, command: str) -> str:
    """Run one allowlisted command in the workspace, without a shell (no pipes, redirects or globs).

    Args:
        command: the command line, e.g. "ls -la docs".
    """
    cfg = _settings(ctx)
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ToolFailed(f"cannot parse command: {exc}") from None
    if not argv:
        raise ToolFailed("empty command")
    allowed = ", ".join(cfg.allow_commands) or "(none)"
    if argv[0] not in cfg.allow_commands:
        raise ToolDenied(f"command {argv[0]!r} is not allowed; allowed commands: {allowed}")
    executable = shutil.which(argv[0], path=_SAFE_PATH)
    if executable is None:
        raise ToolFailed(f"command {argv[0]!r} is allowed but not installed")
    root = _paths.workspace_root(ctx)
    for arg in argv[1:]:
        _check_argument(root, arg)
    proc = await asyncio.create_subprocess_exec(
        executable,
        *argv[1:],
        cwd=root,
        env=_environment(cfg, root),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(cfg.timeout_seconds):
            output, total = await _collect(proc.stdout, cfg.max_output_bytes)
            code = await proc.wait()
    except TimeoutError:
        _kill_group(proc)
        await _reap(proc)
        raise ToolFailed(f"command timed out after {cfg.timeout_seconds:g}s and was killed") from None
    except BaseException:
        # Cancelled (e.g. /stop): never leave the process group running.
        _kill_group(proc)
        await _reap(proc)
        raise
    # Children that outlived the leader (daemonised or backgrounded) go too.
    _kill_group(proc)
    logger.debug("command %s exited with %s (%d output bytes)", argv[0], code, total)
    text = output.decode("utf-8", errors="replace")
    note = f"\n[output truncated: first {len(output)} of {total} bytes shown]" if total > len(output) else ""
    return f"exit code: {code}\n{text}{note}"


def shell_tools(config: ToolsConfig) -> list[Tool]:
    """The shell tool, with its risk and outer timeout from config."""
    cfg = config.shell
    # The outer guard is a little longer than the command's own timeout, which kills cleanly.
    return [configure(run_command, risk=cfg.risk, timeout_seconds=cfg.timeout_seconds + 5)]
