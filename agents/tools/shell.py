"""The ``shell`` category: ``run_command`` runs one allowlisted program, without a shell.

The command line is split with ``shlex`` and executed directly, so pipes, redirections, ``;``,
``$(…)`` and globs are plain arguments, never interpreted. Where it runs is ``[tools.shell]
sandbox``:

- ``bwrap`` (the default): in the bubblewrap sandbox of ``agents.tools.sandbox``. Only the
  workspace is writable, the hub's files and credentials are out of sight, there is no network
  unless allowed, resources are limited and nothing outlives the call. Any argument may be
  given: the sandbox, not a check of the arguments, is the guard. Where bwrap cannot run,
  ``shell_tools`` leaves the tool out and logs why in one line.
- ``off``: unconfined, an operator's explicit choice for hosts without user namespaces. Only
  programs whose arguments are declared run, and only with those (``_argspec``). prlimit sets
  the same limits except the number of processes: RLIMIT_NPROC counts every process of the
  hub's real uid (the hub's own included; root is exempt), so no value would bound one command
  without starving the hub. The command gets a session of its own, killed as a group; a child
  that calls ``setsid`` would escape that, which is why no declared program starts children.

Before anyone is asked, ``assess_command`` refuses what cannot run (not on the allowlist, not
declared, not installed, arguments refused) and says what will: where, and the exact argument
vector, one argument per line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import shutil
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.errors import ToolDenied, ToolFailed

from . import _argspec, _paths, sandbox
from .base import Approval, Risk, Tool, ToolContext, needs_approval
from .config import ShellToolsConfig, ToolsConfig
from .decorator import configure, tool

logger = logging.getLogger(__name__)

REAP_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Completed:
    """A command that ran to its end."""

    code: int
    """Its exit status (in the sandbox, 128 + N when a signal N ended it)."""
    output: bytes
    """Standard output and error, interleaved, cut at ``max_output_bytes``."""
    total: int
    """How many bytes it wrote in all."""


@dataclass(frozen=True, slots=True)
class Planned:
    """A command that may run: its arguments as parsed, and the program's absolute path."""

    argv: list[str]
    executable: str


def parse_command(command: str) -> list[str]:
    """The argument vector of ``command`` (shell quoting rules, nothing expanded)."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ToolFailed(f"cannot parse command: {exc}") from None
    if not argv:
        raise ToolFailed("empty command")
    return argv


def _executable(program: str, *, sandboxed: bool) -> str:
    found = shutil.which(program, path=sandbox.SANDBOX_PATH)
    if found is None:
        raise ToolFailed(f"command {program!r} is allowed but not installed")
    if sandboxed and not sandbox.visible_in_sandbox(found):
        raise ToolFailed(
            f"command {program!r} is installed at {os.path.realpath(found)}, outside the system directories the "
            "sandbox shows (/usr and its links)"
        )
    return found


def plan_command(command: str, cfg: ShellToolsConfig, root: Path, deny: _paths.DenyList) -> Planned:
    """Parse ``command`` and refuse it unless it may run under ``cfg``.

    Blocking in ``off`` mode (path arguments are looked up in the workspace).

    Raises:
        ToolDenied: the program is not on the allowlist, or (``off``) not declared, or its
            arguments are refused.
        ToolFailed: the command cannot be parsed, or the program is not installed.
    """
    argv = parse_command(command)
    program = argv[0]
    if program not in cfg.allow_commands:
        allowed = ", ".join(cfg.allow_commands) or "(none)"
        raise ToolDenied(f"command {program!r} is not allowed; allowed commands: {allowed}")
    executable = _executable(program, sandboxed=cfg.sandbox == "bwrap")
    if cfg.sandbox == "bwrap":
        return Planned(argv, executable)
    spec = _argspec.declaration(program, cfg)
    if spec is None:
        raise _argspec.undeclared(program)
    _argspec.check_arguments(program, argv[1:], spec, root, deny)
    return Planned(argv, executable)


def where_it_runs(cfg: ShellToolsConfig) -> str:
    """One sentence for the approval question: where the command will run."""
    if cfg.sandbox == "off":
        return 'it runs WITHOUT a sandbox (sandbox = "off"), as the hub\'s own user, with only its arguments checked'
    network = "it may use the network" if cfg.network else "no network"
    return f"it runs in the sandbox: only your workspace is writable, {network}"


def describe(planned: Planned) -> str:
    """The exact argument vector, numbered, one argument per line, each quoted as a shell would."""
    lines = [f"exact command ({len(planned.argv)} arguments; the program is {shlex.quote(planned.executable)}):"]
    lines.extend(f"  {n}: {shlex.quote(arg)}" for n, arg in enumerate(planned.argv))
    return "\n".join(lines)


def assess_command(args: dict[str, Any], ctx: ToolContext) -> Approval | None:
    """``run_command``'s approval rule: refuse what cannot run, else show what will run where."""
    command = args.get("command")
    if not isinstance(command, str):
        raise ToolFailed("invalid arguments for tool 'run_command': command must be a string")
    tools = ctx.config
    cfg = tools.shell
    root = _paths.workspace_root(ctx) if cfg.sandbox == "off" else Path(ctx.workspace)
    planned = plan_command(command, cfg, root, _paths.DenyList.from_context(ctx))
    if not needs_approval(cfg.risk, approve_medium=tools.approve_medium):
        return None  # the operator lowered [tools.shell] risk: nobody is asked
    return Approval(reason=where_it_runs(cfg), remember_as=None, grantable=True, detail=describe(planned))


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


async def _run(
    argv: Sequence[str], cfg: ShellToolsConfig, *, cwd: Path, env: dict[str, str], pass_fds: Sequence[int] = ()
) -> Completed:
    """Start ``argv`` in a session of its own; kill the session on timeout or cancellation."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        pass_fds=tuple(pass_fds),
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
        # Cancelled (e.g. /stop): never leave the command running. In the sandbox, bwrap's death
        # ends its PID namespace and everything in it.
        _kill_group(proc)
        await _reap(proc)
        raise
    # Unconfined, children that outlived the leader (backgrounded) go too.
    _kill_group(proc)
    return Completed(code, output, total)


def _unconfined_environment(cfg: ShellToolsConfig, root: Path) -> dict[str, str]:
    env = {"PATH": sandbox.SANDBOX_PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": str(root)}
    env.update({name: os.environ[name] for name in cfg.pass_env if name in os.environ})
    return env


async def execute(
    argv: Sequence[str],
    *,
    root: Path,
    config: ShellToolsConfig,
    deny: _paths.DenyList | None = None,
    protected: Sequence[Path] = (),
) -> Completed:
    """Run ``argv`` as ``config.sandbox`` says, in ``root``; ``argv[0]`` is looked up on ``SANDBOX_PATH``.

    No allowlist or argument check here: that is ``plan_command``'s (``run_command`` calls both).

    Args:
        argv: the program and its arguments.
        root: the workspace (real path).
        config: the ``[tools.shell]`` settings.
        deny: names hidden in the sandbox (default: the built-in deny list).
        protected: the hub's own paths, hidden in the sandbox.

    Raises:
        ToolFailed: the command timed out (it was killed), or cannot be started.
    """
    if config.sandbox == "off":
        prlimit = shutil.which("prlimit", path=sandbox.SANDBOX_PATH)
        if prlimit is None:
            raise ToolFailed("prlimit (util-linux) is not installed; commands do not run without their limits")
        command = sandbox.Limits.from_config(config).prlimit(argv, nproc=False, prlimit=prlimit)
        return await _run(command, config, cwd=root, env=_unconfined_environment(config, root))
    deny = deny if deny is not None else _paths.DenyList()
    hidden = await asyncio.to_thread(sandbox.hidden_paths, root, deny, protected)
    async with sandbox.launch(argv, root=root, config=config, hidden=hidden, protected=protected) as spawn:
        return await _run(spawn.argv, config, cwd=root, env=spawn.env, pass_fds=spawn.pass_fds)


@tool(category="shell", risk=Risk.HIGH, permissions=("shell.exec",), timeout_seconds=3600)
async def run_command(ctx: ToolContext, command: str) -> str:
    """Run one allowlisted command in the workspace, without a shell (no pipes, redirects or globs).

    Args:
        command: the command line, e.g. "ls -la docs".
    """
    cfg = ctx.config.shell
    if cfg.sandbox == "bwrap" and (problem := sandbox.sandbox_problem(cfg)) is not None:
        raise ToolFailed(f"run_command is disabled: {problem}")
    root = _paths.workspace_root(ctx)
    deny = _paths.DenyList.from_context(ctx)
    planned = await asyncio.to_thread(plan_command, command, cfg, root, deny)
    done = await execute(planned.argv, root=root, config=cfg, deny=deny, protected=ctx.protected)
    logger.debug("command %s exited with %s (%d output bytes)", planned.argv[0], done.code, done.total)
    text = done.output.decode("utf-8", errors="replace")
    shown = len(done.output)
    note = f"\n[output truncated: first {shown} of {done.total} bytes shown]" if done.total > shown else ""
    return f"exit code: {done.code}\n{text}{note}"


def shell_tools(config: ToolsConfig, *, bwrap: str = "bwrap") -> list[Tool]:
    """The shell tool, configured from ``[tools.shell]``; none where its sandbox cannot run.

    Args:
        config: the ``[tools]`` settings.
        bwrap: the bwrap executable to probe (tests name a missing one).
    """
    cfg = config.shell
    if cfg.sandbox == "bwrap":
        problem = sandbox.sandbox_problem(cfg, bwrap=bwrap)
        if problem is not None:
            logger.error("run_command is disabled: %s", problem)
            return []
        if not sandbox.process_limit():
            logger.warning("run_command: %s", sandbox.sandbox_status(cfg, bwrap=bwrap)[1])
    else:
        logger.warning(
            'run_command runs commands WITHOUT a sandbox ([tools.shell] sandbox = "off"): only programs with '
            "declared arguments, and only those arguments"
        )
    # The outer guard is a little longer than the command's own timeout, which kills cleanly.
    return [configure(run_command, risk=cfg.risk, timeout_seconds=cfg.timeout_seconds + 5, assess=assess_command)]
