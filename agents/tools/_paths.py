"""The workspace jail: resolve a path the model gave against the workspace, or refuse it.

Every check is made on real paths (symlinks resolved), because a lexical check alone is
defeated by a link inside the workspace that points outside. What remains is the usual
check-then-use race with someone who can create symlinks in the workspace concurrently; the
writers narrow it with ``O_NOFOLLOW`` on the final component.
"""

from __future__ import annotations

import os
from pathlib import Path

from hub.errors import ToolDenied, ToolFailed

from .base import ToolContext


def workspace_root(ctx: ToolContext) -> Path:
    """The real path of the workspace, created if missing."""
    ws = Path(ctx.workspace).expanduser()
    ws.mkdir(parents=True, exist_ok=True)
    return ws.resolve(strict=True)


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _denied(user_path: str) -> ToolDenied:
    return ToolDenied(f"path {user_path!r} is outside the workspace; use a path relative to the workspace")


def _joined(root: Path, user_path: str) -> Path:
    """Join lexically and refuse ``..`` escapes and foreign absolute paths before touching disk."""
    if "\x00" in user_path:
        raise ToolFailed("path contains a NUL character")
    candidate = Path(os.path.normpath(root / user_path))  # an absolute user_path replaces root
    if not _inside(candidate, root):
        raise _denied(user_path)
    return candidate


def resolve_existing(root: Path, user_path: str) -> Path:
    """The real path of an existing file or directory inside the workspace."""
    candidate = _joined(root, user_path)
    try:
        real = candidate.resolve(strict=True)
    except FileNotFoundError:
        raise ToolFailed(f"{user_path!r} does not exist") from None
    except (OSError, RuntimeError) as exc:  # RuntimeError: symlink loop
        raise ToolFailed(f"cannot resolve {user_path!r}: {exc}") from None
    if not _inside(real, root):
        raise _denied(user_path)
    return real


def resolve_parent(root: Path, user_path: str, *, create: bool = False) -> Path:
    """The path of an entry whose parent is a real directory inside the workspace.

    The final component is not followed (the caller decides: write follows only links that
    stay inside, delete removes the link itself). With ``create``, missing parent directories
    are made, after checking that their nearest existing ancestor is inside.
    """
    candidate = _joined(root, user_path)
    if candidate == root:
        raise ToolFailed(f"{user_path!r} is the workspace itself, not a file")
    parent = candidate.parent
    existing = parent
    while not existing.exists() and not existing.is_symlink():
        existing = existing.parent
    real_existing = existing.resolve(strict=True) if existing.exists() else None
    if real_existing is None or not _inside(real_existing, root):
        raise _denied(user_path)
    if not real_existing.is_dir():
        raise ToolFailed(f"{os.path.relpath(existing, root)!r} is not a directory")
    if existing != parent:
        if not create:
            raise ToolFailed(f"directory of {user_path!r} does not exist")
        real_parent = real_existing / parent.relative_to(existing)
        real_parent.mkdir(parents=True, exist_ok=True)
    real_parent = parent.resolve(strict=True)
    if not _inside(real_parent, root):
        raise _denied(user_path)
    return real_parent / candidate.name


def resolve_for_write(root: Path, user_path: str, *, create_dirs: bool = True) -> Path:
    """A path that is safe to open for writing: links are followed only if they stay inside."""
    entry = resolve_parent(root, user_path, create=create_dirs)
    if entry.is_symlink():
        target = entry.resolve()
        if not _inside(target, root):
            raise _denied(user_path)
        return target
    return entry


def display(root: Path, path: Path) -> str:
    """A path as the model should see it: relative to the workspace, ``/`` separated."""
    rel = os.path.relpath(path, root)
    return "." if rel == "." else Path(rel).as_posix()
