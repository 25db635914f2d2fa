"""The database's files as the operator sees them: private on disk, and their health for
``autohands doctor`` (``Store.health``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["StoreHealth", "private_database"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreHealth:
    """The database as ``autohands doctor`` sees it (``Store.health``)."""

    integrity: str
    """``ok``, or what SQLite's quick check found (``ok`` for a server database)."""
    size_bytes: int
    """The SQLite file and its WAL; 0 for a server database."""
    writable: bool
    messages: dict[str, int]
    """Messages by status."""


def private_database(path: Path) -> None:
    """The SQLite file readable by its owner only (0600), made so before SQLite opens it: its
    ``-wal`` and ``-shm`` files take the database file's mode. A file from before is tightened."""
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists() and file.stat().st_uid == os.getuid():
            file.chmod(0o600)
