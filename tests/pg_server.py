"""A throwaway PostgreSQL server for tests: Debian's server binaries, a temp data directory,
a Unix socket only (no TCP port to collide on), ``fsync=off``.

PostgreSQL refuses to run as root, so under root the server runs as the ``postgres`` system
user (else ``nobody``) in a directory under ``/tmp`` chowned to it (pytest's own temp folders
are private to root). ``.ci/run`` installs the binaries when they are missing.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

__all__ = ["PgServer", "pg_bin_dir", "pg_server"]

_SUPERUSER = "autohands"
_START_TIMEOUT = 20.0
_SETTINGS = {
    "listen_addresses": "",  # the Unix socket only
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "50",
}


def pg_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb`` and ``postgres``."""
    found = [
        path.parent
        for path in Path("/usr/lib/postgresql").glob("*/bin/initdb")
        if (path.parent / "postgres").exists() and path.parent.parent.name.isdigit()
    ]
    return max(found, key=lambda path: int(path.parent.name), default=None)


@dataclass(frozen=True, slots=True)
class PgServer:
    """A running server reached on ``socket_dir``; ``url(db)`` is an SQLAlchemy URL."""

    socket_dir: Path

    def conninfo(self, dbname: str = "postgres") -> str:
        return f"host={self.socket_dir} user={_SUPERUSER} dbname={dbname}"

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://{_SUPERUSER}@/{dbname}?host={self.socket_dir}"

    def create_database(self, dbname: str) -> str:
        """A new empty database (from ``template0``); its SQLAlchemy URL."""
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}" TEMPLATE template0')
        return self.url(dbname)

    def empty(self, dbname: str) -> str:
        """``dbname`` emptied (its ``public`` schema dropped and made again): ten times quicker
        than a new database; its SQLAlchemy URL."""
        with psycopg.connect(self.conninfo(dbname), autocommit=True) as conn:
            conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
            conn.execute("CREATE SCHEMA public")
        return self.url(dbname)


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged account to run the server as, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and there is neither a postgres nor a nobody user to run PostgreSQL as")


@contextlib.contextmanager
def pg_server(bin_dir: Path) -> Iterator[PgServer]:
    """Start a server from ``bin_dir``, yield it, stop it and delete its files."""
    account = _run_as()
    root = Path(tempfile.mkdtemp(prefix="ah-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    user: dict[str, Any] = {}  # Popen's user, group and extra_groups keywords
    if account is not None:
        user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        for path in (root, sock):
            os.chown(path, account.pw_uid, account.pw_gid)
    try:
        initdb = ["-D", str(data), "-U", _SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"]
        subprocess.run([bin_dir / "initdb", *initdb], check=True, capture_output=True, cwd=root, **user)
        settings = [f"{name}={value}" for name, value in _SETTINGS.items()]
        with (root / "server.log").open("wb") as log:
            server = subprocess.Popen(
                [bin_dir / "postgres", "-D", data, "-k", sock, *(arg for s in settings for arg in ("-c", s))],
                stdout=subprocess.DEVNULL,
                stderr=log,
                cwd=root,
                **user,
            )
        try:
            running = PgServer(socket_dir=sock)
            _wait_ready(running, server, root / "server.log")
            yield running
        finally:
            server.send_signal(signal.SIGINT)  # "fast" shutdown: ends open sessions too
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(server: PgServer, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"PostgreSQL exited at start-up: {log.read_text(errors='replace')[-2000:]}")
        try:
            psycopg.connect(server.conninfo(), connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # start-up has no event to await; this polls the socket
