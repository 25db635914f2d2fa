"""The ``file`` category: read, write, list and delete files inside the workspace."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Annotated

from pydantic import Field

from hub.errors import ToolFailed

from . import _paths
from .base import Risk, Tool, ToolContext
from .config import FileToolsConfig, ToolsConfig
from .decorator import tool


def _settings(ctx: ToolContext) -> FileToolsConfig:
    cfg = ctx.config
    return cfg.file if isinstance(cfg, ToolsConfig) else FileToolsConfig()


def _read_slice(path: Path, offset: int, limit: int) -> tuple[bytes, int]:
    with path.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        fh.seek(offset)
        return fh.read(limit), size


@tool(category="file", risk=Risk.LOW, permissions=("fs.read",))
async def read_file(
    ctx: ToolContext,
    path: str,
    offset: Annotated[int, Field(ge=0)] = 0,
) -> str:
    """Read a text file from the workspace.

    Args:
        path: file path relative to the workspace.
        offset: byte offset to start from, to continue a truncated read.
    """
    root = _paths.workspace_root(ctx)
    real = _paths.resolve_existing(root, path)
    if not real.is_file():
        raise ToolFailed(f"{path!r} is not a file")
    limit = _settings(ctx).max_read_bytes
    data, size = await asyncio.to_thread(_read_slice, real, offset, limit)
    if b"\x00" in data[:8192]:
        raise ToolFailed(f"{path!r} looks binary ({size} bytes); only text files can be read")
    text = data.decode("utf-8", errors="replace")
    end = offset + len(data)
    if end < size:
        text += f"\n[truncated: bytes {offset}-{end} of {size} shown; continue with offset={end}]"
    return text


def _write(path: Path, data: bytes, append: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    # O_NOFOLLOW: a link swapped in after the checks is refused instead of written through.
    fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(fd, "ab" if append else "wb") as fh:
        fh.write(data)


@tool(category="file", risk=Risk.MEDIUM, permissions=("fs.write",))
async def write_file(ctx: ToolContext, path: str, content: str, append: bool = False) -> str:
    """Write a text file in the workspace, creating missing directories.

    Args:
        path: file path relative to the workspace.
        content: the full text to write (UTF-8).
        append: add to the end instead of replacing the file.
    """
    data = content.encode("utf-8")
    cap = _settings(ctx).max_write_bytes
    if len(data) > cap:
        raise ToolFailed(f"content is {len(data)} bytes; the limit is {cap} bytes per write")
    root = _paths.workspace_root(ctx)
    target = _paths.resolve_for_write(root, path)
    if target.exists() and not target.is_file():
        raise ToolFailed(f"{path!r} exists and is not a regular file")
    try:
        await asyncio.to_thread(_write, target, data, append)
    except OSError as exc:
        raise ToolFailed(f"cannot write {path!r}: {exc.strerror or exc}") from None
    verb = "appended" if append else "wrote"
    return f"{verb} {len(data)} bytes to {_paths.display(root, target)}"


def _listing(root: Path, real: Path, cap: int) -> str:
    entries = sorted(os.scandir(real), key=lambda e: e.name)
    lines = []
    for entry in entries[:cap]:
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            lines.append(f"{entry.name} -> {os.readlink(entry.path)}")
        elif stat.S_ISDIR(st.st_mode):
            lines.append(f"{entry.name}/")
        else:
            lines.append(f"{entry.name}  {st.st_size}")
    if len(entries) > cap:
        lines.append(f"[{len(entries) - cap} more entries not shown]")
    header = f"{_paths.display(root, real)}: {len(entries)} entries"
    return "\n".join([header, *lines])


@tool(category="file", risk=Risk.LOW, permissions=("fs.read",))
async def list_dir(ctx: ToolContext, path: str = ".") -> str:
    """List a directory of the workspace: names, sizes in bytes, directories end with /.

    Args:
        path: directory relative to the workspace.
    """
    root = _paths.workspace_root(ctx)
    real = _paths.resolve_existing(root, path)
    if not real.is_dir():
        raise ToolFailed(f"{path!r} is not a directory")
    return await asyncio.to_thread(_listing, root, real, _settings(ctx).max_list_entries)


@tool(category="file", risk=Risk.HIGH, permissions=("fs.delete",))
async def delete_file(ctx: ToolContext, path: str) -> str:
    """Delete one file (or symbolic link) from the workspace; directories are refused.

    Args:
        path: file path relative to the workspace.
    """
    root = _paths.workspace_root(ctx)
    entry = _paths.resolve_parent(root, path)
    try:
        st = entry.lstat()
    except FileNotFoundError:
        raise ToolFailed(f"{path!r} does not exist") from None
    if stat.S_ISDIR(st.st_mode):
        raise ToolFailed(f"{path!r} is a directory; only files can be deleted")
    # unlink never follows a link: deleting a link that points outside removes only the link.
    await asyncio.to_thread(entry.unlink)
    return f"deleted {_paths.display(root, entry)}"


def file_tools() -> list[Tool]:
    return [read_file, write_file, list_dir, delete_file]
