"""``sandbox = "off"``: only declared arguments run; every spelling of the known attacks is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agents.tools._argspec import BUILTIN_PROGRAMS, check_arguments, declaration
from agents.tools._paths import DenyList
from agents.tools.base import ToolContext
from agents.tools.config import ProgramArgs, ShellToolsConfig, ToolsConfig
from agents.tools.shell import run_command, shell_tools
from hub.errors import ToolDenied, ToolFailed

from .conftest_tools import call, make_ctx


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "a.txt").write_text("alpha\nbeta\n")
    (workspace / "list").write_bytes(b"a.txt\0")
    (tmp_path / "config.toml").write_text('api_key = "sk-secret"\n')
    return workspace.resolve()


def off_ctx(ws: Path, **shell: object) -> ToolContext:
    return make_ctx(ws, ToolsConfig(shell=ShellToolsConfig(sandbox="off", **shell)))  # type: ignore[arg-type]


REFUSED = [
    "sort --compress-program=sh notes.txt",
    "sort --compress=sh a.txt",
    "sort -o/abs a.txt",
    "sort -o ../x a.txt",
    "sort -o../x a.txt",
    "sort -zo../x a.txt",
    "sort --output=x a.txt",
    "sort --files0-from=list",
    "sort --files0=list",
    "sort -T . a.txt",
    "sort --random-source=a.txt a.txt",
    "date -f../config.toml",
    "date --file=x",
    "date -r x",
    "date -s 2030-01-01",
    "date 010100002030",
    "grep -r beta .",
    "grep -R beta .",
    "grep -d recurse beta .",
    "grep -e beta /etc/passwd",
    "grep -f a.txt a.txt",
    "cat ../config.toml",
    "cat /etc/passwd",
    "head -n5 a.txt",
    "head -n five a.txt",
    "tail -f a.txt",
    "wc --files0-from=list",
    "du -L .",
    "diff -r . .",
    "sha256sum -c a.txt",
    "ls --color=always",
    "cat ---presume-input-pipe a.txt",
]


@pytest.mark.parametrize("command", REFUSED)
async def test_refused_before_anyone_is_asked(ws: Path, command: str) -> None:
    ctx = off_ctx(ws)
    [configured] = shell_tools(ctx.config)
    assert configured.assess is not None
    with pytest.raises(ToolDenied):
        configured.assess({"command": command}, ctx)
    with pytest.raises(ToolDenied):
        await call(run_command, ctx, command=command)


async def test_links_and_credentials_are_refused(ws: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("outside\n")
    os.link(outside, ws / "hard.txt")
    (ws / "soft-abs").symlink_to(outside)
    (ws / "soft-rel").symlink_to("../outside.txt")
    (ws / ".env").write_text("TOKEN=1\n")
    (ws / "keys").mkdir()
    (ws / "keys" / "id_rsa").write_text("key\n")
    ctx = off_ctx(ws)
    for command in (
        "cat hard.txt",
        "cat soft-abs",
        "cat soft-rel",
        "cat .env",
        "grep -n TOKEN .env",
        "cat keys/id_rsa",
    ):
        with pytest.raises(ToolDenied):
            await call(run_command, ctx, command=command)
    with pytest.raises(ToolFailed, match="does not exist"):
        await call(run_command, ctx, command="cat missing.txt")


async def test_ordinary_commands_still_work(ws: Path) -> None:
    ctx = off_ctx(ws)
    listing = await call(run_command, ctx, command="ls -la")
    assert listing.startswith("exit code: 0\n") and "a.txt" in listing
    assert await call(run_command, ctx, command="grep -n beta a.txt") == "exit code: 0\n2:beta\n"
    assert await call(run_command, ctx, command="head -n 1 a.txt") == "exit code: 0\nalpha\n"
    assert await call(run_command, ctx, command="wc -l a.txt") == "exit code: 0\n2 a.txt\n"
    assert await call(run_command, ctx, command="sort -r -- a.txt") == "exit code: 0\nbeta\nalpha\n"
    assert await call(run_command, ctx, command="tail --lines 1 a.txt") == "exit code: 0\nbeta\n"
    assert await call(run_command, ctx, command="pwd") == f"exit code: 0\n{ws}\n"
    assert (await call(run_command, ctx, command="date -u +%Y")).startswith("exit code: 0\n20")


async def test_undeclared_program_says_how_to_declare(ws: Path) -> None:
    ctx = off_ctx(ws)
    with pytest.raises(ToolDenied, match=r"\[tools\.shell\.programs\.python3\]"):
        await call(run_command, ctx, command="python3 -c 'print(1)'")


async def test_operator_declarations_override_the_builtins(ws: Path) -> None:
    narrow = {"sort": ProgramArgs(flags=("-r",)), "sha1sum": ProgramArgs()}
    ctx = off_ctx(ws, programs=narrow, allow_commands=("sort", "sha1sum"))
    with pytest.raises(ToolDenied, match="option -n"):
        await call(run_command, ctx, command="sort -n a.txt")
    assert await call(run_command, ctx, command="sort -r a.txt") == "exit code: 0\nbeta\nalpha\n"
    assert (await call(run_command, ctx, command="sha1sum a.txt")).startswith("exit code: 0\n")


def test_parsing_rules(ws: Path) -> None:
    deny = DenyList()
    grep = BUILTIN_PROGRAMS["grep"]
    check_arguments("grep", ["-nci", "beta", "a.txt"], grep, ws, deny)
    check_arguments("grep", ["-m", "3", "--", "-beta", "a.txt"], grep, ws, deny)
    check_arguments("grep", ["--max-count=3", "beta", "-"], grep, ws, deny)
    with pytest.raises(ToolDenied, match="attaches a value"):
        check_arguments("grep", ["-nm3", "beta", "a.txt"], grep, ws, deny)
    with pytest.raises(ToolDenied, match="whole number"):
        check_arguments("grep", ["--max-count=many", "beta", "a.txt"], grep, ws, deny)
    with pytest.raises(ToolFailed, match="needs a value"):
        check_arguments("grep", ["beta", "a.txt", "-m"], grep, ws, deny)
    with pytest.raises(ToolDenied, match="takes no value"):
        check_arguments("grep", ["--count=1", "beta", "a.txt"], grep, ws, deny)
    with pytest.raises(ToolDenied, match="abbreviations are refused"):
        check_arguments("grep", ["--cou", "beta", "a.txt"], grep, ws, deny)
    with pytest.raises(ToolDenied, match="no operands"):
        check_arguments("pwd", ["a.txt"], BUILTIN_PROGRAMS["pwd"], ws, deny)


def test_declaration_lookup() -> None:
    cfg = ShellToolsConfig(programs={"ls": ProgramArgs(operands=None)})
    assert declaration("ls", cfg) == ProgramArgs(operands=None)
    assert declaration("cat", cfg) is BUILTIN_PROGRAMS["cat"]
    assert declaration("python3", cfg) is None
    for spec in BUILTIN_PROGRAMS.values():
        for name in spec.flags:
            assert name not in spec.options
        for name in (*spec.flags, *spec.options):
            assert name.startswith("--") or len(name) == 2
