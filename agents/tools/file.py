"""The ``file`` category: read, write, list and delete files inside the workspace.

Every operation runs in a worker thread on a ``_paths.Workspace``: paths are opened beneath
the workspace's descriptor, files are checked with ``fstat`` on the descriptor that is then
read or written (regular, one hard link), and the deny list is applied on the way in.
"""

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
from .decorator import tool


def _read_slice(workspace: Path, deny: _paths.DenyList, path: str, offset: int, limit: int) -> tuple[bytes, int]:
    with _paths.Workspace(workspace, deny) as ws:
        fd, _ = ws.open_file(path, _paths.READ)
    try:
        size = os.fstat(fd).st_size
        chunks: list[bytes] = []
        wanted = limit
        while wanted > 0 and (chunk := os.pread(fd, wanted, offset + limit - wanted)):
            chunks.append(chunk)
            wanted -= len(chunk)
        return b"".join(chunks), size
    finally:
        os.close(fd)


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
    limit = ctx.config.file.max_read_bytes
    deny = _paths.DenyList.from_context(ctx)
    data, size = await asyncio.to_thread(_read_slice, ctx.workspace, deny, path, offset, limit)
    if b"\x00" in data[:8192]:
        raise ToolFailed(f"{path!r} looks binary ({size} bytes); only text files can be read")
    text = data.decode("utf-8", errors="replace")
    end = offset + len(data)
    if end < size:
        text += f"\n[truncated: bytes {offset}-{end} of {size} shown; continue with offset={end}]"
    return text


def _write(workspace: Path, deny: _paths.DenyList, path: str, data: bytes, append: bool) -> str:
    with _paths.Workspace(workspace, deny) as ws:
        # Opened without O_TRUNC: a file is emptied only after fstat has passed it.
        fd, parts = ws.open_file(path, _paths.APPEND if append else _paths.WRITE)
    try:
        if not append:
            os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        raise ToolFailed(f"cannot write {path!r}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    return _paths.show(parts)


@tool(category="file", risk=Risk.MEDIUM, permissions=("fs.write",))
async def write_file(ctx: ToolContext, path: str, content: str, append: bool = False) -> str:
    """Write a text file in the workspace, creating missing directories.

    Args:
        path: file path relative to the workspace.
        content: the full text to write (UTF-8).
        append: add to the end instead of replacing the file.
    """
    data = content.encode("utf-8")
    cap = ctx.config.file.max_write_bytes
    if len(data) > cap:
        raise ToolFailed(f"content is {len(data)} bytes; the limit is {cap} bytes per write")
    deny = _paths.DenyList.from_context(ctx)
    shown = await asyncio.to_thread(_write, ctx.workspace, deny, path, data, append)
    verb = "appended" if append else "wrote"
    return f"{verb} {len(data)} bytes to {shown}"


def _entry_line(dir_fd: int, name: str, st: os.stat_result) -> str:
    if stat.S_ISLNK(st.st_mode):
        try:
            return f"{name} -> {os.readlink(name, dir_fd=dir_fd)}"
        except OSError:
            return f"{name} -> ?"
    if stat.S_ISDIR(st.st_mode):
        return f"{name}/"
    return f"{name}  {st.st_size}"


def _listing(workspace: Path, deny: _paths.DenyList, path: str, cap: int) -> str:
    # Names only: a deny-listed file may be listed, never opened.
    with _paths.Workspace(workspace, deny) as ws:
        fd, parts = ws.open_any(path)
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            raise ToolFailed(f"{path!r} is not a directory")
        entries = [(e.name, e.st) for e in _paths.walk(fd, parts, enter=lambda _: False)]
        lines = [_entry_line(fd, name, st) for name, st in entries[:cap]]
    finally:
        os.close(fd)
    if len(entries) > cap:
        lines.append(f"[{len(entries) - cap} more entries not shown]")
    return "\n".join([f"{_paths.show(parts)}: {len(entries)} entries", *lines])


@tool(category="file", risk=Risk.LOW, permissions=("fs.read",))
async def list_dir(ctx: ToolContext, path: str = ".") -> str:
    """List a directory of the workspace: names, sizes in bytes, directories end with /.

    Args:
        path: directory relative to the workspace.
    """
    deny = _paths.DenyList.from_context(ctx)
    return await asyncio.to_thread(_listing, ctx.workspace, deny, path, ctx.config.file.max_list_entries)


def _delete(workspace: Path, deny: _paths.DenyList, path: str) -> str:
    with _paths.Workspace(workspace, deny) as ws, ws.entry(path) as (dir_fd, name, parts):
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            raise _paths.not_found(path) from None
        if stat.S_ISDIR(st.st_mode):
            raise ToolFailed(f"{path!r} is a directory; only files can be deleted")
        try:
            # Relative to the parent's descriptor and never following: a link is removed itself.
            os.unlink(name, dir_fd=dir_fd)
        except OSError as exc:
            raise ToolFailed(f"cannot delete {path!r}: {exc.strerror or exc}") from None
    return _paths.show(parts)


@tool(category="file", risk=Risk.HIGH, permissions=("fs.delete",))
async def delete_file(ctx: ToolContext, path: str) -> str:
    """Delete one file (or symbolic link) from the workspace; directories are refused.

    Args:
        path: file path relative to the workspace.
    """
    deny = _paths.DenyList.from_context(ctx)
    return f"deleted {await asyncio.to_thread(_delete, ctx.workspace, deny, path)}"


def file_tools() -> list[Tool]:
    return [read_file, write_file, list_dir, delete_file]
