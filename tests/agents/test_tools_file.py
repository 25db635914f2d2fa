"""The ``file`` tools: happy paths, size caps and the workspace jail."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agents.tools.base import Risk, ToolContext
from agents.tools.config import FileToolsConfig, ToolsConfig
from agents.tools.file import delete_file, list_dir, read_file, write_file
from hub.errors import ToolDenied, ToolFailed

from .conftest_tools import call, make_ctx


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    return workspace


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret_dir = tmp_path / "outside"
    secret_dir.mkdir()
    (secret_dir / "secret.txt").write_text("top secret")
    return secret_dir


@pytest.fixture
def ctx(ws: Path) -> ToolContext:
    cfg = ToolsConfig(file=FileToolsConfig(max_read_bytes=20, max_write_bytes=50, max_list_entries=3))
    return make_ctx(ws, cfg)


def test_risks_and_permissions() -> None:
    assert (read_file.risk, list_dir.risk) == (Risk.LOW, Risk.LOW)
    assert write_file.risk is Risk.MEDIUM
    assert delete_file.risk is Risk.HIGH
    assert write_file.permissions == ("fs.write",) and delete_file.permissions == ("fs.delete",)


async def test_write_read_list_delete(ctx: ToolContext, ws: Path) -> None:
    assert await call(write_file, ctx, path="notes/a.txt", content="hello") == "wrote 5 bytes to notes/a.txt"
    assert (ws / "notes" / "a.txt").read_text() == "hello"
    assert await call(write_file, ctx, path="notes/a.txt", content=" world", append=True) == (
        "appended 6 bytes to notes/a.txt"
    )
    assert await call(read_file, ctx, path="notes/a.txt") == "hello world"
    assert await call(read_file, ctx, path=str(ws / "notes" / "a.txt")) == "hello world"  # absolute, inside
    listing = await call(list_dir, ctx)
    assert listing.splitlines() == [".: 1 entries", "notes/"]
    assert "a.txt  11" in await call(list_dir, ctx, path="notes")
    assert await call(delete_file, ctx, path="notes/a.txt") == "deleted notes/a.txt"
    assert not (ws / "notes" / "a.txt").exists()


async def test_workspace_is_created(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path / "new" / "ws")
    assert await call(write_file, ctx, path="x.txt", content="1") == "wrote 1 bytes to x.txt"


async def test_read_cap_and_continuation(ctx: ToolContext, ws: Path) -> None:
    (ws / "long.txt").write_text("0123456789" * 5)
    first = await call(read_file, ctx, path="long.txt")
    assert first.startswith("01234567890123456789\n[truncated: bytes 0-20 of 50 shown; continue with offset=20]")
    last = await call(read_file, ctx, path="long.txt", offset=40)
    assert last == "0123456789"


async def test_write_cap(ctx: ToolContext, ws: Path) -> None:
    with pytest.raises(ToolFailed, match="60 bytes; the limit is 50"):
        await call(write_file, ctx, path="big.txt", content="x" * 60)
    assert not (ws / "big.txt").exists()


async def test_list_cap(ctx: ToolContext, ws: Path) -> None:
    for i in range(5):
        (ws / f"f{i}").write_text("")
    listing = await call(list_dir, ctx)
    assert listing.splitlines()[-1] == "[2 more entries not shown]"


async def test_errors_are_clear(ctx: ToolContext, ws: Path) -> None:
    (ws / "d").mkdir()
    (ws / "bin").write_bytes(b"\x00\x01\x02")
    with pytest.raises(ToolFailed, match=r"'missing\.txt' does not exist"):
        await call(read_file, ctx, path="missing.txt")
    with pytest.raises(ToolFailed, match="is not a file"):
        await call(read_file, ctx, path="d")
    with pytest.raises(ToolFailed, match="looks binary"):
        await call(read_file, ctx, path="bin")
    with pytest.raises(ToolFailed, match="only files can be deleted"):
        await call(delete_file, ctx, path="d")
    with pytest.raises(ToolFailed, match="is the workspace itself"):
        await call(write_file, ctx, path=".", content="x")


@pytest.mark.parametrize("path", ["../outside/secret.txt", "a/../../outside/secret.txt", "..", "/etc/passwd"])
async def test_escapes_are_refused(ctx: ToolContext, outside: Path, path: str) -> None:
    for tool_, args in (
        (read_file, {}),
        (list_dir, {}),
        (write_file, {"content": "pwned"}),
        (delete_file, {}),
    ):
        with pytest.raises(ToolDenied, match="outside the workspace"):
            await call(tool_, ctx, path=path, **args)
    assert (outside / "secret.txt").read_text() == "top secret"


async def test_absolute_path_outside_is_refused(ctx: ToolContext, outside: Path) -> None:
    with pytest.raises(ToolDenied, match="outside the workspace"):
        await call(read_file, ctx, path=str(outside / "secret.txt"))


async def test_symlink_escapes_are_refused(ctx: ToolContext, ws: Path, outside: Path) -> None:
    (ws / "link.txt").symlink_to(outside / "secret.txt")
    (ws / "linkdir").symlink_to(outside)
    with pytest.raises(ToolDenied):
        await call(read_file, ctx, path="link.txt")
    with pytest.raises(ToolDenied):
        await call(read_file, ctx, path="linkdir/secret.txt")
    with pytest.raises(ToolDenied):
        await call(list_dir, ctx, path="linkdir")
    # Writing through a link to outside, or into a linked directory (also a new file, new subdir).
    with pytest.raises(ToolDenied):
        await call(write_file, ctx, path="link.txt", content="pwned")
    with pytest.raises(ToolDenied):
        await call(write_file, ctx, path="linkdir/new.txt", content="pwned")
    with pytest.raises(ToolDenied):
        await call(write_file, ctx, path="linkdir/sub/new.txt", content="pwned")
    with pytest.raises(ToolDenied):
        await call(delete_file, ctx, path="linkdir/secret.txt")
    assert (outside / "secret.txt").read_text() == "top secret"
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    # Deleting the link itself is fine: the target outside is untouched.
    assert await call(delete_file, ctx, path="link.txt") == "deleted link.txt"
    assert (outside / "secret.txt").read_text() == "top secret"


async def test_relative_symlink_inside_the_workspace_works(ctx: ToolContext, ws: Path) -> None:
    (ws / "docs").mkdir()
    (ws / "real.txt").write_text("inside")
    (ws / "alias.txt").symlink_to("real.txt")
    (ws / "docs" / "up.txt").symlink_to("../real.txt")
    (ws / "docsdir").symlink_to("docs")
    assert await call(read_file, ctx, path="alias.txt") == "inside"
    assert await call(read_file, ctx, path="docs/up.txt") == "inside"
    assert await call(write_file, ctx, path="alias.txt", content="changed") == "wrote 7 bytes to real.txt"
    assert await call(write_file, ctx, path="docsdir/n.txt", content="n") == "wrote 1 bytes to docs/n.txt"
    assert (ws / "real.txt").read_text() == "changed"
    assert "alias.txt -> real.txt" in await call(list_dir, ctx)
    assert (await call(list_dir, ctx, path="docsdir")).startswith("docs: 2 entries")


async def test_absolute_symlinks_are_refused_even_inside(ctx: ToolContext, ws: Path) -> None:
    (ws / "real.txt").write_text("inside")
    (ws / "abs.txt").symlink_to(ws / "real.txt")
    with pytest.raises(ToolDenied, match=r"absolute path .*only relative links"):
        await call(read_file, ctx, path="abs.txt")
    with pytest.raises(ToolDenied, match="absolute path"):
        await call(write_file, ctx, path="abs.txt", content="x")
    assert (ws / "real.txt").read_text() == "inside"


async def test_relative_symlink_escapes_are_refused(ctx: ToolContext, ws: Path, outside: Path) -> None:
    (ws / "sub").mkdir()
    (ws / "up.txt").symlink_to("../outside/secret.txt")
    (ws / "sub" / "updir").symlink_to("../../outside")
    (ws / "sub" / "new.txt").symlink_to("../../outside/new.txt")  # dangling: write would create it
    for path in ("up.txt", "sub/updir/secret.txt"):
        with pytest.raises(ToolDenied, match="leads outside the workspace through a symbolic link"):
            await call(read_file, ctx, path=path)
        with pytest.raises(ToolDenied, match="outside the workspace"):
            await call(write_file, ctx, path=path, content="pwned")
    with pytest.raises(ToolDenied, match="outside the workspace"):
        await call(write_file, ctx, path="sub/new.txt", content="pwned")
    with pytest.raises(ToolDenied, match="outside the workspace"):
        await call(list_dir, ctx, path="sub/updir")
    assert (outside / "secret.txt").read_text() == "top secret"
    assert sorted(os.listdir(outside)) == ["secret.txt"]


async def test_symlink_loops_are_bounded(ctx: ToolContext, ws: Path) -> None:
    (ws / "a").symlink_to("b")
    (ws / "b").symlink_to("a")
    with pytest.raises(ToolFailed, match="too many symbolic links"):
        await call(read_file, ctx, path="a")


async def test_hardlink_to_outside_is_refused(ctx: ToolContext, ws: Path, outside: Path) -> None:
    os.link(outside / "secret.txt", ws / "hl.txt")
    with pytest.raises(ToolDenied, match="2 hard links"):
        await call(read_file, ctx, path="hl.txt")
    for append in (False, True):
        with pytest.raises(ToolDenied, match="hard links"):
            await call(write_file, ctx, path="hl.txt", content="pwned", append=append)
    assert (outside / "secret.txt").read_text() == "top secret"
    # Removing the name in the workspace is harmless: the file outside keeps its other name.
    assert await call(delete_file, ctx, path="hl.txt") == "deleted hl.txt"
    assert (outside / "secret.txt").read_text() == "top secret"


async def test_special_files_are_refused_without_blocking(ctx: ToolContext, ws: Path) -> None:
    os.mkfifo(ws / "pipe")
    with pytest.raises(ToolFailed, match="is not a file"):
        await call(read_file, ctx, path="pipe")
    with pytest.raises(ToolFailed, match="pipe"):
        await call(write_file, ctx, path="pipe", content="x")


@pytest.mark.parametrize(
    "path",
    [".env", "config/.env.local", "id_rsa", "server.pem", ".ssh/config", "home/.ssh/config", "keys.secret", ".ENV"],
)
async def test_credential_files_are_refused(ws: Path, path: str) -> None:
    ctx = make_ctx(ws, ToolsConfig(file=FileToolsConfig(deny_patterns=("*.secret",))))
    target = ws / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("API_KEY=hunter2")
    for tool_, args in ((read_file, {}), (write_file, {"content": "x"}), (delete_file, {})):
        with pytest.raises(ToolDenied, match=r"matches .*deny_patterns") as info:
            await call(tool_, ctx, path=path, **args)
        assert "hunter2" not in str(info.value)
    assert target.read_text() == "API_KEY=hunter2"
    # A new file under a refused name is not created either.
    with pytest.raises(ToolDenied):
        await call(write_file, ctx, path=str(Path(path).parent / "other.pem"), content="x")


async def test_refused_writes_leave_no_trace(ctx: ToolContext, ws: Path) -> None:
    with pytest.raises(ToolDenied, match="deny_patterns"):
        await call(write_file, ctx, path="new/.ssh/authorized_keys", content="ssh-ed25519 AAAA")
    with pytest.raises(ToolDenied, match="deny_patterns"):
        await call(read_file, ctx, path="missing/.env")  # refused, not "does not exist"
    assert os.listdir(ws) == []


async def test_deny_messages_say_where_rules_come_from(ws: Path) -> None:
    ctx = make_ctx(ws, ToolsConfig(file=FileToolsConfig(deny_patterns=("*.secret", "private/*"))))
    with pytest.raises(ToolDenied, match=r"'\.env', a built-in rule, which cannot be lifted"):
        await call(write_file, ctx, path=".env", content="x")
    with pytest.raises(ToolDenied, match=r"'\*\.secret', a rule from \[tools\.file\] deny_patterns"):
        await call(read_file, ctx, path="a.secret")
    with pytest.raises(ToolDenied, match="private/"):
        await call(write_file, ctx, path="private/notes.txt", content="x")


async def test_links_to_credential_files_are_refused(ctx: ToolContext, ws: Path) -> None:
    (ws / ".env").write_text("API_KEY=hunter2")
    (ws / "notes.txt").symlink_to(".env")
    with pytest.raises(ToolDenied, match=r"matches '\.env'"):
        await call(read_file, ctx, path="notes.txt")


async def test_list_dir_shows_but_does_not_read_credential_files(ctx: ToolContext, ws: Path) -> None:
    (ws / ".env").write_text("API_KEY=hunter2")
    listing = await call(list_dir, ctx)
    assert ".env  15" in listing and "hunter2" not in listing


async def test_write_replaces_only_after_the_checks(ctx: ToolContext, ws: Path) -> None:
    (ws / "a.txt").write_text("old content")
    assert await call(write_file, ctx, path="a.txt", content="new") == "wrote 3 bytes to a.txt"
    assert (ws / "a.txt").read_text() == "new"


async def test_workspace_itself_may_be_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real_ws"
    real.mkdir()
    (tmp_path / "ws_link").symlink_to(real)
    ctx = make_ctx(tmp_path / "ws_link")
    await call(write_file, ctx, path="a.txt", content="ok")
    assert (real / "a.txt").read_text() == "ok"
