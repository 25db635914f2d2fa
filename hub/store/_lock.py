"""One hub per database: an OS file lock for SQLite, a heartbeat lease row for other databases.

A kernel lock is released when its process dies, so a SIGKILLed hub never blocks its restart;
a lease is stale after 30 s without a heartbeat.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from pathlib import Path
from typing import IO

from sqlalchemy import Engine, delete as sa_delete, insert, select

from ..errors import HubLockedError
from ..messages import utcnow
from ._rows import utc
from .tables import HUB_LOCK as _lock

LEASE_STALE_SECONDS = 30


def take_file_lock(db_path: Path) -> IO[str]:
    """Lock ``<db>.lock`` for this process; the returned file holds the lock until closed."""
    import fcntl

    lock_path = db_path.with_name(db_path.name + ".lock")
    # 0600 like the database beside it: the holder's pid and host are nobody else's business.
    f = os.fdopen(os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600), "a+")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "unknown"
        f.close()
        raise HubLockedError(
            f"another AutoHands hub ({holder}) is already running on {db_path}; stop it first, "
            "or give this one its own [store] url",
            holder=holder,
        ) from None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()} on {socket.gethostname()}")
    f.flush()
    return f


def take_lease(engine: Engine, owner: str) -> None:
    now = utcnow()
    with engine.begin() as conn:
        row = conn.execute(select(_lock)).first()
        if row is not None and row.owner != owner:
            if utc(row.heartbeat_at) > now - timedelta(seconds=LEASE_STALE_SECONDS):
                holder = f"pid {row.pid} on {row.host}"
                raise HubLockedError(
                    f"another AutoHands hub ({holder}) is already running on this database; stop it first",
                    holder=holder,
                )
        conn.execute(sa_delete(_lock))
        conn.execute(
            insert(_lock).values(id=1, owner=owner, pid=os.getpid(), host=socket.gethostname(), heartbeat_at=now)
        )


def release_lease(engine: Engine, owner: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa_delete(_lock).where(_lock.c.owner == owner))
