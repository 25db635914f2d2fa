"""``grep`` and ``glob`` in the workspace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agents.tools.base import ToolContext
from agents.tools.config import FileToolsConfig, SearchToolsConfig, ToolsConfig
from agents.tools.search import glob, grep
from hub.errors import ToolDenied, ToolFailed

from .conftest_tools import call, make_ctx


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    workspace = tmp_path / "ws"
    (workspace / "src" / "pkg").mkdir(parents=True)
    (workspace / "src" / "main.py").write_text("import os\n\ndef main():\n    return TODO_later\n")
    (workspace / "src" / "pkg" / "util.py").write_text("# todo: tidy\nx = 1\n")
    (workspace / "README.md").write_text("Project\nTODO write docs\n")
    (workspace / "image.bin").write_bytes(b"\x00TODO\x00binary")
    (workspace / ".git").mkdir()
    (workspace / ".git" / "config").write_text("TODO in git internals\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("TODO secret\n")
    (workspace / "leak.txt").symlink_to(outside / "secret.txt")
    (workspace / "leakdir").symlink_to(outside)
    return workspace


@pytest.fixture
def ctx(ws: Path) -> ToolContext:
    return make_ctx(ws)


async def test_grep_reports_file_line_text(ctx: ToolContext) -> None:
    out = await call(grep, ctx, pattern="TODO")
    assert out.splitlines() == ["README.md:2:TODO write docs", "src/main.py:4:return TODO_later"]


async def test_grep_options(ctx: ToolContext) -> None:
    out = await call(grep, ctx, pattern=r"^#?\s*todo", ignore_case=True, path="src")
    assert out == "src/pkg/util.py:1:# todo: tidy"
    assert await call(grep, ctx, pattern="TODO", glob="*.md") == "README.md:2:TODO write docs"
    assert await call(grep, ctx, pattern="import", path="src/main.py") == "src/main.py:1:import os"
    assert await call(grep, ctx, pattern="nothing-here") == "no matches in 3 files"


async def test_grep_caps_results(ws: Path) -> None:
    (ws / "many.txt").write_text("hit\n" * 50)
    ctx = make_ctx(ws, ToolsConfig(search=SearchToolsConfig(max_results=5)))
    lines = (await call(grep, ctx, pattern="hit", path="many.txt")).splitlines()
    assert lines[:5] == [f"many.txt:{i}:hit" for i in range(1, 6)]
    assert lines[5] == "[stopped at 5 matches; narrow the pattern or path]"


async def test_grep_skips_large_files(ws: Path) -> None:
    (ws / "large.txt").write_text("TODO\n" + "x" * 5000)
    ctx = make_ctx(ws, ToolsConfig(search=SearchToolsConfig(max_file_bytes=1000)))
    assert "large.txt" not in await call(grep, ctx, pattern="TODO")


async def test_grep_refusals(ctx: ToolContext) -> None:
    with pytest.raises(ToolFailed, match="invalid regular expression"):
        await call(grep, ctx, pattern="(unclosed")
    with pytest.raises(ToolDenied, match="outside the workspace"):
        await call(grep, ctx, pattern="TODO", path="..")
    with pytest.raises(ToolDenied, match="outside the workspace"):
        await call(grep, ctx, pattern="TODO", path="leakdir")
    with pytest.raises(ToolDenied, match="outside the workspace"):
        await call(grep, ctx, pattern="TODO", path="leak.txt")
    with pytest.raises(ToolFailed, match="pattern: String should have at least 1 character"):
        await call(grep, ctx, pattern="")


async def test_glob(ctx: ToolContext) -> None:
    assert (await call(glob, ctx, pattern="**/*.py")).splitlines() == ["src/main.py", "src/pkg/util.py"]
    assert (await call(glob, ctx, pattern="src/*")).splitlines() == ["src/main.py", "src/pkg/"]
    assert await call(glob, ctx, pattern="*.nothing") == "no matches"


async def test_glob_stays_inside(ctx: ToolContext) -> None:
    # Links whose targets are outside are not reported, nor is anything reached through them.
    out = await call(glob, ctx, pattern="*")
    assert "leak.txt" not in out and "leakdir" not in out
    assert await call(glob, ctx, pattern="leakdir/*") == "no matches"
    for pattern in ("../*", "/etc/*", "src/../../*", "~/x"):
        with pytest.raises(ToolDenied, match="must stay inside the workspace"):
            await call(glob, ctx, pattern=pattern)


async def test_glob_caps_results(ws: Path) -> None:
    for i in range(10):
        (ws / f"n{i}.log").write_text("")
    ctx = make_ctx(ws, ToolsConfig(search=SearchToolsConfig(max_results=3)))
    lines = (await call(glob, ctx, pattern="*.log")).splitlines()
    assert len(lines) == 4 and lines[-1] == "[more than 3 matches; narrow the pattern]"


async def test_grep_never_reads_outside(ws: Path, tmp_path: Path) -> None:
    (ws / "rel_leak.txt").symlink_to("../outside/secret.txt")
    (ws / "src" / "rel_leakdir").symlink_to("../../outside")
    os.link(tmp_path / "outside" / "secret.txt", ws / "hardlink.txt")
    ctx = make_ctx(ws)
    out = await call(grep, ctx, pattern="secret")
    assert "secret" not in out.replace("skipped", "")
    assert out.splitlines() == ["no matches in 3 files", "[skipped without reading: 1 with more than one hard link]"]
    with pytest.raises(ToolDenied, match="hard links"):
        await call(grep, ctx, pattern="TODO", path="hardlink.txt")
    with pytest.raises(ToolDenied, match="outside the workspace"):
        await call(grep, ctx, pattern="TODO", path="src/rel_leakdir")


async def test_grep_skips_credential_files(ws: Path) -> None:
    for path in (".env", "config/.env.local", "id_rsa", "server.pem", ".ssh/config", "notes.secret"):
        (ws / path).parent.mkdir(parents=True, exist_ok=True)
        (ws / path).write_text("TODO API_KEY=hunter2\n")
    ctx = make_ctx(ws, ToolsConfig(file=FileToolsConfig(deny_patterns=("*.secret",))))
    out = await call(grep, ctx, pattern="TODO")
    assert "hunter2" not in out
    assert out.splitlines()[-1] == (
        "[skipped without reading: 6 matching the credential deny list ([tools.file] deny_patterns)]"
    )
    with pytest.raises(ToolDenied, match=r"matches '\.env'"):
        await call(grep, ctx, pattern="TODO", path=".env")


async def test_grep_follows_relative_links_inside(ws: Path) -> None:
    (ws / "srclink").symlink_to("src")
    ctx = make_ctx(ws)
    assert await call(grep, ctx, pattern="import", path="srclink") == "src/main.py:1:import os"


async def test_glob_reports_relative_links_inside(ws: Path) -> None:
    (ws / "alias.md").symlink_to("README.md")
    (ws / "srclink").symlink_to("src")
    (ws / "rel_leak.txt").symlink_to("../outside/secret.txt")
    out = (await call(glob, ctx=make_ctx(ws), pattern="*")).splitlines()
    assert "alias.md" in out and "srclink/" in out and "rel_leak.txt" not in out
    assert await call(glob, make_ctx(ws), pattern="srclink/*") == "no matches"  # links are not entered


async def test_glob_double_star(ws: Path) -> None:
    ctx = make_ctx(ws)
    assert (await call(glob, ctx, pattern="**/util.py")) == "src/pkg/util.py"
    assert (await call(glob, ctx, pattern="src/**")).splitlines() == [
        "src/",
        "src/main.py",
        "src/pkg/",
        "src/pkg/util.py",
    ]
    assert (await call(glob, ctx, pattern="*.md")) == "README.md"
    with pytest.raises(ToolFailed, match="invalid glob pattern"):
        await call(glob, ctx, pattern="src/**.py")
