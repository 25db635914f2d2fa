"""The ``search`` category: ``grep`` file contents and ``glob`` file names in the workspace.

Both walk the real file tree in a thread and keep to the workspace: symbolic links are
reported only when their target is inside it, and directories are not entered through links.
"""

from __future__ import annotations

import asyncio
import fnmatch
import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Annotated

from pydantic import Field

from hub.errors import ToolDenied, ToolFailed

from . import _paths
from .base import Risk, Tool, ToolContext
from .config import SearchToolsConfig, ToolsConfig
from .decorator import tool

_SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv"})
_MAX_LINE = 200


def _settings(ctx: ToolContext) -> SearchToolsConfig:
    cfg = ctx.config
    return cfg.search if isinstance(cfg, ToolsConfig) else SearchToolsConfig()


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _walk(start: Path) -> Iterator[Path]:
    """Files under ``start`` in a stable order; linked directories are listed, not entered."""
    if start.is_file():
        yield start
        return
    for dirpath, dirnames, filenames in os.walk(start):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            yield Path(dirpath) / name


def _files(root: Path, start: Path, name_glob: str | None, max_bytes: int) -> Iterator[tuple[Path, str]]:
    """Regular files under ``start`` worth reading: (real path, path shown to the model)."""
    for path in _walk(start):
        shown = _paths.display(root, path)
        if name_glob and not (fnmatch.fnmatch(path.name, name_glob) or fnmatch.fnmatch(shown, name_glob)):
            continue
        try:
            real = path.resolve(strict=True)
            if not _inside(real, root) or not real.is_file() or real.stat().st_size > max_bytes:
                continue
        except (OSError, RuntimeError):
            continue
        yield real, shown


def _grep(
    root: Path, start: Path, regex: re.Pattern[str], name_glob: str | None, cap: int, max_bytes: int
) -> str:
    hits: list[str] = []
    files = 0
    for real, shown in _files(root, start, name_glob, max_bytes):
        try:
            data = real.read_bytes()
        except OSError:
            continue
        if b"\x00" in data[:8192]:
            continue
        files += 1
        for lineno, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            if regex.search(line):
                text = line.strip()
                text = text[:_MAX_LINE] + "…" if len(text) > _MAX_LINE else text
                hits.append(f"{shown}:{lineno}:{text}")
                if len(hits) >= cap:
                    return "\n".join([*hits, f"[stopped at {cap} matches; narrow the pattern or path]"])
    if not hits:
        return f"no matches in {files} files"
    return "\n".join(hits)


@tool(category="search", risk=Risk.LOW, permissions=("fs.read",))
async def grep(
    ctx: ToolContext,
    pattern: Annotated[str, Field(min_length=1, max_length=500)],
    path: str = ".",
    glob: str | None = None,
    ignore_case: bool = False,
) -> str:
    """Search text files in the workspace for a regular expression; returns file:line:text.

    Args:
        pattern: Python regular expression.
        path: file or directory to search, relative to the workspace.
        glob: only files whose name or path matches, e.g. "*.py".
        ignore_case: match case-insensitively.
    """
    try:
        regex = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        raise ToolFailed(f"invalid regular expression {pattern!r}: {exc}") from None
    cfg = _settings(ctx)
    root = _paths.workspace_root(ctx)
    start = _paths.resolve_existing(root, path)
    return await asyncio.to_thread(_grep, root, start, regex, glob, cfg.max_results, cfg.max_file_bytes)


def _glob(root: Path, pattern: str, cap: int) -> str:
    found: list[str] = []
    more = False
    matches = root.glob(pattern)
    for path in itertools.islice(matches, cap * 4):
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        if not _inside(real, root):
            continue
        if len(found) >= cap:
            more = True
            break
        shown = _paths.display(root, path)
        found.append(shown + "/" if real.is_dir() else shown)
    if not found:
        return "no matches"
    found.sort()
    return "\n".join([*found, f"[more than {cap} matches; narrow the pattern]"] if more else found)


@tool(category="search", risk=Risk.LOW, permissions=("fs.read",))
async def glob(ctx: ToolContext, pattern: Annotated[str, Field(min_length=1, max_length=300)]) -> str:
    """Find workspace paths matching a glob pattern, e.g. "**/*.md"; directories end with /.

    Args:
        pattern: glob relative to the workspace; ** matches any depth.
    """
    pure = PurePosixPath(pattern)
    if pure.is_absolute() or pattern.startswith("~") or ".." in pure.parts:
        raise ToolDenied(f"pattern {pattern!r} must stay inside the workspace (relative, no '..')")
    root = _paths.workspace_root(ctx)
    try:
        return await asyncio.to_thread(_glob, root, pattern, _settings(ctx).max_results)
    except ValueError as exc:
        raise ToolFailed(f"invalid glob pattern {pattern!r}: {exc}") from None


def search_tools() -> list[Tool]:
    return [grep, glob]
