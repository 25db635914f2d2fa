"""The ``search`` category: ``grep`` file contents and ``glob`` file names in the workspace.

Both walk the tree in a thread with descriptors (``_paths.walk``): directories are opened
beneath their parent without following links, so nothing outside the workspace is listed or
read, and linked directories are never entered. ``grep`` reads only regular files with one
hard link whose names pass the deny list, and says in one line how many it skipped and why.
``glob`` lists names (deny-listed ones too, as ``list_dir`` does); a link is reported only
when it leads to something inside the workspace.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import re
import stat
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Annotated

from pydantic import Field

from hub.errors import ToolDenied, ToolFailed

from . import _paths
from .base import Risk, Tool, ToolContext
from .decorator import tool

_SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv"})
_MAX_LINE = 200
_DENIED = "matching the credential deny list ([tools.file] deny_patterns)"
_LINKED = "with more than one hard link"


@dataclass(slots=True)
class _Grep:
    """One search: its limits, and what it found and skipped so far."""

    regex: re.Pattern[str]
    name_glob: str | None
    cap: int
    max_bytes: int
    deny: _paths.DenyList
    hits: list[str] = field(default_factory=list)
    files: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def wanted(self, parts: tuple[str, ...], st: os.stat_result) -> bool:
        """Whether a file met by the walk is worth opening; counts the refused ones."""
        if not stat.S_ISREG(st.st_mode) or st.st_size > self.max_bytes or not self._named(parts):
            return False
        if self.deny.rule(parts) is not None:
            self.skipped[_DENIED] += 1
            return False
        if st.st_nlink > 1:
            self.skipped[_LINKED] += 1
            return False
        return True

    def _named(self, parts: tuple[str, ...]) -> bool:
        glob = self.name_glob
        return glob is None or fnmatch.fnmatch(parts[-1], glob) or fnmatch.fnmatch(_paths.show(parts), glob)

    def search(self, fd: int, shown: str) -> bool:
        """Search one open file; False once the cap is reached."""
        try:
            st = _paths.check_regular(fd, shown)
        except ToolDenied:
            self.skipped[_LINKED] += 1
            return True
        except ToolFailed:
            return True
        if st.st_size > self.max_bytes:
            return True
        data = _read_all(fd, self.max_bytes)
        if b"\x00" in data[:8192]:
            return True
        self.files += 1
        for lineno, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            if self.regex.search(line):
                text = line.strip()
                text = text[:_MAX_LINE] + "…" if len(text) > _MAX_LINE else text
                self.hits.append(f"{shown}:{lineno}:{text}")
                if len(self.hits) >= self.cap:
                    return False
        return True

    def report(self, complete: bool) -> str:
        lines = list(self.hits) if self.hits else [f"no matches in {self.files} files"]
        if not complete:
            lines.append(f"[stopped at {self.cap} matches; narrow the pattern or path]")
        if self.skipped:
            why = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))
            lines.append(f"[skipped without reading: {why}]")
        return "\n".join(lines)


def _read_all(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while total <= limit and (chunk := os.read(fd, min(1 << 20, limit + 1 - total))):
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _grep_tree(job: _Grep, dir_fd: int, parts: tuple[str, ...]) -> bool:
    """Search every wanted file under an open directory; False once the cap is reached."""

    def enter(entry: _paths.Entry) -> bool:
        if entry.name in _SKIP_DIRS:
            return False
        if job.deny.rule(entry.parts) is not None:
            job.skipped[_DENIED] += 1
            return False
        return True

    for entry in _paths.walk(dir_fd, parts, enter):
        if not job.wanted(entry.parts, entry.st):
            continue
        try:
            fd = _paths.open_entry(entry.dir_fd, entry.name, os.O_RDONLY)
        except (OSError, _paths.FoundLink):
            continue  # gone, or swapped for a link since it was listed
        try:
            if not job.search(fd, _paths.show(entry.parts)):
                return False
        finally:
            os.close(fd)
    return True


def _grep(workspace: Path, path: str, job: _Grep) -> str:
    with _paths.Workspace(workspace, job.deny) as ws:
        fd, parts = ws.open_any(path)
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            complete = _grep_tree(job, fd, parts)
        else:
            _paths.check_regular(fd, path)  # a single file asked for by name: refuse, don't skip
            complete = job.search(fd, _paths.show(parts))
    finally:
        os.close(fd)
    return job.report(complete)


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
    cfg = ctx.config.search
    job = _Grep(regex, glob, cfg.max_results, cfg.max_file_bytes, _paths.DenyList.from_context(ctx))
    return await asyncio.to_thread(_grep, ctx.workspace, path, job)


def _matches(pattern: Sequence[str], parts: Sequence[str]) -> bool:
    """Whether ``parts`` match glob segments; ``**`` spans any number of components."""
    # reach[j]: the first i segments match parts[:j] (dynamic programming, linear in both).
    reach = [True] + [False] * len(parts)
    for segment in pattern:
        if segment == "**":
            for j in range(1, len(reach)):
                reach[j] = reach[j] or reach[j - 1]
        else:
            reach = [False] + [reach[j] and fnmatch.fnmatchcase(parts[j], segment) for j in range(len(parts))]
    return reach[-1]


def _may_lead_to_match(pattern: Sequence[str], parts: Sequence[str]) -> bool:
    """Whether something under the directory ``parts`` could still match (prunes the walk)."""
    for depth, name in enumerate(parts):
        if depth >= len(pattern) - 1:
            return "**" in pattern[: depth + 1]
        if pattern[depth] == "**":
            return True
        if not fnmatch.fnmatchcase(name, pattern[depth]):
            return False
    return True


def _glob(workspace: Path, deny: _paths.DenyList, pattern: Sequence[str], cap: int) -> str:
    found: list[str] = []
    more = False
    with _paths.Workspace(workspace, deny) as ws:
        for entry in _paths.walk(ws.fd, (), lambda e: _may_lead_to_match(pattern, e.parts)):
            if not _matches(pattern, entry.parts):
                continue
            st = entry.st
            if stat.S_ISLNK(st.st_mode):
                try:
                    st, _ = ws.stat(_paths.show(entry.parts))
                except (ToolDenied, ToolFailed):
                    continue  # leads outside, nowhere, or to a refused name
            if len(found) >= cap:
                more = True
                break
            found.append(_paths.show(entry.parts) + ("/" if stat.S_ISDIR(st.st_mode) else ""))
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
    segments = [s for s in pattern.split("/") if s not in ("", ".")]
    if not segments or any("**" in s and s != "**" for s in segments) or "\x00" in pattern:
        raise ToolFailed(f"invalid glob pattern {pattern!r}: '**' can only be a whole path component")
    deny = _paths.DenyList.from_context(ctx)
    return await asyncio.to_thread(_glob, ctx.workspace, deny, segments, ctx.config.search.max_results)


def search_tools() -> list[Tool]:
    return [grep, glob]
