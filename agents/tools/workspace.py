"""Where each call's workspace lives under the root, and the guard on the root itself.

``[tools] workspace_scope`` picks the directory (``workspace_path``):

    user           <root>/users/<channel>/<user id>      (default)
    conversation   <root>/conversations/<conversation key>
    shared         <root>

Platform ids become directory names with ``_safe_name``. An id that is already a short,
lowercase, portable name is used as it is; any other id becomes a readable slug, a ``+`` and a
hash of the exact id. ``+`` never appears in a name used as it is, so a user cannot pick an id
that lands in another user's hashed directory; names are lowercase so that ids differing only
in case stay apart on case-insensitive filesystems too.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import assert_never

from hub.errors import ConfigError
from hub.messages import ConversationRef, Sender

from .config import WorkspaceScope

_PLAIN = re.compile(r"[a-z0-9_-][a-z0-9._-]{0,63}")
_NOT_SLUG = re.compile(r"[^a-z0-9._-]+")
_SLUG_CHARS = 40
_HASH_CHARS = 16  # 64 bits: finding a second id for someone's directory is out of reach


def _safe_name(raw: str) -> str:
    """A single path component for ``raw``: never empty, ``.``, ``..``, nor holding ``/`` or NUL."""
    if _PLAIN.fullmatch(raw):
        return raw
    ascii_text = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode("ascii")
    slug = _NOT_SLUG.sub("-", ascii_text.lower()).strip("-._")[:_SLUG_CHARS].rstrip("-._") or "id"
    digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    return f"{slug}+{digest}"


def workspace_path(root: Path, scope: WorkspaceScope, conversation: ConversationRef, sender: Sender) -> Path:
    """The workspace of one call under ``root`` (not created; see ``ensure_workspace``).

    Args:
        root: the root of the workspaces (``ToolsConfig.workspace_root``).
        scope: ``[tools] workspace_scope``.
        conversation: where the call comes from.
        sender: who asked.
    """
    match scope:
        case "user":
            return root / "users" / _safe_name(conversation.channel) / _safe_name(sender.id)
        case "conversation":
            return root / "conversations" / _safe_name(conversation.key)
        case "shared":
            return root
        case _:
            assert_never(scope)


def ensure_workspace(path: Path) -> Path:
    """Create ``path`` and its missing parents (mode 0o700) and return its real path."""
    path = path.expanduser()
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for directory in reversed(missing):
        # os.makedirs gives only the leaf the mode; every level may name a user, so all get it.
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass
    return path.resolve(strict=True)


def check_workspace_root(root: Path, protected: Iterable[Path]) -> None:
    """Refuse a workspace root that is, or contains, one of the hub's own paths.

    Both sides are compared as real paths, so a symlink to the home directory is caught too.

    Args:
        root: the root of the workspaces.
        protected: the data directory, config file, database file, home directory.

    Raises:
        ConfigError: naming ``tools.workspace`` and how to fix it.
    """
    real_root = root.expanduser().resolve()
    for path in protected:
        real = path.expanduser().resolve()
        if real == real_root or real.is_relative_to(real_root):
            raise ConfigError(
                f"tools.workspace: {str(root)!r} would give the tools the hub's own files ({real} is "
                f"{'that folder' if real == real_root else 'inside it'}); point it at a folder that holds "
                f"only workspaces, e.g. {str(real_root / 'autohands-workspaces')!r}, or remove the setting "
                "to use <data_dir>/workspaces"
            )
