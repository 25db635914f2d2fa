"""The bubblewrap sandbox of ``run_command``: attacks that worked unconfined stay inside it.

Each attack runs through the tool function, in-process, against a real workspace with real
files beside it (a config file holding a secret, a database, a directory for sentinels), and
the host is checked afterwards.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from agents.tools import sandbox
from agents.tools._paths import DenyList
from agents.tools.base import ToolContext
from agents.tools.config import ShellToolsConfig, ToolsConfig
from agents.tools.shell import run_command
from hub.errors import ToolFailed

from .conftest_tools import call, make_ctx

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

SECRET = "sk-live-" + "7" * 24


@dataclasses.dataclass
class Host:
    """A workspace and what lies beside it on the host."""

    ws: Path
    outside: Path
    config: Path
    database: Path


@pytest.fixture
def host(tmp_path: Path) -> Host:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("alpha\nbeta\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    config = tmp_path / "config.toml"
    config.write_text(f'[providers.main]\napi_key = "{SECRET}"\n')
    database = tmp_path / "autohands.db"
    database.write_text("message from another user: the launch code is 0000\n")
    return Host(ws.resolve(), outside.resolve(), config.resolve(), database.resolve())


def ctx_for(host: Host, **shell: object) -> ToolContext:
    ctx = make_ctx(host.ws, ToolsConfig(shell=ShellToolsConfig(**shell)))  # type: ignore[arg-type]
    return dataclasses.replace(ctx, protected=(host.config, host.database, host.config.parent))


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*"))


def hub_environment() -> list[str]:
    """Entries of this process's initial environment that a sandboxed command must never see."""
    ours = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PWD", "SHLVL", "_"}
    raw = Path(f"/proc/{os.getpid()}/environ").read_bytes().decode(errors="replace").split("\0")
    return [e for e in raw if "=" in e and e.split("=", 1)[0] not in ours and len(e.split("=", 1)[1]) >= 6]


async def test_sort_compress_program_runs_only_inside(host: Host) -> None:
    # Enough lines that sort spills to temporary files, each piped through "sh" (the payload).
    lines = [f"touch {host.outside}/SENTINEL", "touch ../escaped", "touch ran-inside"] * 300
    (host.ws / "notes.txt").write_text("\n".join(lines) + "\n")
    ctx = ctx_for(host)
    await call(run_command, ctx, command="sort --compress-program=sh -S 1 -T . notes.txt")
    assert (host.ws / "ran-inside").exists()  # the payload did run: in the sandbox
    assert not (host.outside / "SENTINEL").exists()
    assert not (host.ws.parent / "escaped").exists()


async def test_sort_output_cannot_leave_the_workspace(host: Host) -> None:
    ctx = ctx_for(host)
    before = files_under(host.ws.parent)
    for command in (f"sort -o{host.outside}/written a.txt", "sort -o../written a.txt", "sort -o /written a.txt"):
        out = await call(run_command, ctx, command=command)
        assert not out.startswith("exit code: 0"), out
    assert files_under(host.ws.parent) == before


async def test_date_cannot_read_the_config_file(host: Host) -> None:
    ctx = ctx_for(host)
    for command in ("date -f../config.toml", f"date -f{host.config}", f"cat {host.config}"):
        out = await call(run_command, ctx, command=command)
        assert SECRET not in out and "providers" not in out


async def test_hub_environment_never_reaches_a_command(host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_SENTINEL_TOKEN", "sentinel-" + secrets.token_hex(8))
    (host.ws / "list").write_bytes(f"/proc/{os.getpid()}/environ\0/proc/1/environ\0".encode())
    ctx = ctx_for(host, allow_commands=("sort", "date", "cat", "python3"))
    outputs = [
        await call(run_command, ctx, command="date -f/proc/self/stat"),
        await call(run_command, ctx, command="sort -z --files0-from=list"),
        await call(run_command, ctx, command=f"cat /proc/{os.getpid()}/environ /proc/1/environ /proc/self/environ"),
        await call(run_command, ctx, command="python3 -c 'import os; print(dict(os.environ))'"),
    ]
    leaked = [*hub_environment(), os.environ["HUB_SENTINEL_TOKEN"]]
    for out in outputs:
        assert not [e for e in leaked if e in out], out


async def test_database_cannot_be_dumped(host: Host) -> None:
    (host.ws / "list").write_bytes(b"../autohands.db\0" + str(host.database).encode() + b"\0")
    ctx = ctx_for(host)
    out = await call(run_command, ctx, command="sort -o dump.txt --files0-from=list")
    assert "launch code" not in out
    dump = host.ws / "dump.txt"
    assert not dump.exists() or "launch code" not in dump.read_text()


async def test_only_the_workspace_and_tmp_are_writable(host: Host) -> None:
    ctx = ctx_for(host, allow_commands=("touch", "mkdir", "ls"))
    assert (await call(run_command, ctx, command="touch /workspace/ok /tmp/ok")).startswith("exit code: 0")
    assert (host.ws / "ok").exists()
    for target in ("/usr/x", "/etc/x", "/x", "/proc/x", "/dev/x"):
        out = await call(run_command, ctx, command=f"touch {target}")
        assert not out.startswith("exit code: 0"), (target, out)
    listing = set((await call(run_command, ctx, command="ls /")).splitlines()[1:])
    system = {"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "proc", "dev", "tmp", "workspace"}
    assert listing <= system and {"usr", "etc", "tmp", "workspace"} <= listing


async def test_minimal_etc(host: Host) -> None:
    ctx = ctx_for(host)
    listing = (await call(run_command, ctx, command="ls /etc")).splitlines()[1:]
    assert "passwd" in listing and "shadow" not in listing and "ssl" not in listing
    assert "autohands" not in (await call(run_command, ctx, command="cat /etc/passwd"))
    with_network = ctx_for(host, network=True)
    assert "ssl" in (await call(run_command, with_network, command="ls /etc")).splitlines()[1:]


async def test_credential_files_and_hub_files_are_hidden(host: Host) -> None:
    (host.ws / ".env").write_text(f"TOKEN={SECRET}\n")
    (host.ws / "deploy.pem").write_text(SECRET)
    (host.ws / ".ssh").mkdir()
    (host.ws / ".ssh" / "config").write_text(SECRET)
    (host.ws / "credentials").mkdir()
    (host.ws / "credentials" / "notes.txt").write_text(SECRET)
    os.link(host.config, host.ws / "innocent.txt")  # the hub's config under another name
    (host.ws / "link-out").symlink_to(host.config)  # absolute: means nothing inside
    ctx = ctx_for(host, allow_commands=("cat", "grep", "ls"))
    out = await call(run_command, ctx, command="grep -r sk-live .")
    assert SECRET not in out
    for name in (".env", "deploy.pem", ".ssh/config", "credentials/notes.txt", "innocent.txt", "link-out"):
        out = await call(run_command, ctx, command=f"cat {name}")
        assert SECRET not in out and not out.startswith("exit code: 0\nTOKEN"), name
    assert (await call(run_command, ctx, command="cat a.txt")) == "exit code: 0\nalpha\nbeta\n"


async def test_protected_path_inside_the_workspace_is_hidden(host: Host) -> None:
    inner = host.ws / "data"
    inner.mkdir()
    (inner / "state.db").write_text(SECRET)
    ctx = dataclasses.replace(ctx_for(host), protected=(inner,))
    out = await call(run_command, ctx, command="ls -la data")
    assert "state.db" not in out
    assert SECRET not in await call(run_command, ctx, command="cat data/state.db")


async def test_protected_paths_under_system_directories_are_hidden(host: Host) -> None:
    shown = [p for p in (Path("/usr/share/doc"), Path("/etc/nsswitch.conf")) if p.exists()]
    if not shown:
        pytest.skip("no /usr/share/doc or /etc/nsswitch.conf on this host")
    ctx = dataclasses.replace(ctx_for(host, allow_commands=("ls", "cat")), protected=tuple(shown))
    for path in shown:
        command = f"ls -A {path}" if path.is_dir() else f"cat {path}"
        out = await call(run_command, ctx, command=command)
        assert out.split("\n", 1)[1] in ("", f"cat: {path}: Permission denied\n"), out


def test_scan_is_bounded(tmp_path: Path) -> None:
    for n in range(30):
        (tmp_path / f"f{n}").write_text("x")
    assert sandbox.hidden_paths(tmp_path, DenyList(), max_entries=30) == []
    with pytest.raises(ToolFailed, match="more than 29 files"):
        sandbox.hidden_paths(tmp_path, DenyList(), max_entries=29)


def _sleepers(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if marker in " ".join(proc.info["cmdline"] or ()) and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


async def test_setsid_child_dies_with_the_call(host: Host) -> None:
    marker = f"299.{secrets.randbelow(10**6):06d}"
    script = (
        "import subprocess; "
        f"subprocess.Popen(['setsid', 'sleep', '{marker}'], start_new_session=True, "
        "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print('started')"
    )
    ctx = ctx_for(host)
    out = await call(run_command, ctx, command=f'python3 -c "{script}"')
    assert out == "exit code: 0\nstarted\n"
    assert _sleepers(marker) == []


async def test_limits_are_applied(host: Host) -> None:
    ctx = ctx_for(host, max_processes=20, max_memory_mb=300, max_cpu_seconds=7, max_file_mb=3, max_open_files=50)
    out = await call(run_command, ctx, command="cat /proc/self/limits")
    rows = {line[:26].strip(): line[26:].split() for line in out.splitlines()[2:]}
    assert rows["Max processes"][:2] == ["21", "21"]  # + bwrap's PID 1
    assert rows["Max address space"][:2] == [str(300 * 2**20)] * 2
    assert rows["Max cpu time"][:2] == ["7", "7"]
    assert rows["Max file size"][:2] == [str(3 * 2**20)] * 2
    assert rows["Max open files"][:2] == ["50", "50"]
    assert rows["Max core file size"][:2] == ["0", "0"]


async def test_fork_bomb_stops_at_max_processes(host: Host) -> None:
    script = """
import os, time
children = []
try:
    for _ in range(200):
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        children.append(pid)
except OSError as exc:
    print("refused after", len(children), exc.errno)
for pid in children:
    os.kill(pid, 9)
"""
    ctx = ctx_for(host, max_processes=8)
    out = await call(run_command, ctx, command=f"python3 -c '{script}'")
    assert "refused after 7 11" in out  # the python process and 7 children: 8 (EAGAIN)


async def test_true_fork_bomb_is_contained(host: Host) -> None:
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    ctx = ctx_for(host, max_processes=16, timeout_seconds=1)
    with pytest.raises(ToolFailed, match="timed out"):
        await call(run_command, ctx, command=f"python3 -c '{bomb}'")
    # And the sandbox still works afterwards.
    assert (await call(run_command, ctx, command="cat a.txt")).startswith("exit code: 0")


async def test_file_size_limit(host: Host) -> None:
    ctx = ctx_for(host, max_file_mb=1)
    script = "open('big', 'wb').write(bytes(2 * 1024 * 1024))"
    out = await call(run_command, ctx, command=f'python3 -c "{script}"')
    assert not out.startswith("exit code: 0") and "File too large" in out
    assert (host.ws / "big").stat().st_size <= 1024 * 1024


@pytest.fixture
async def listener() -> AsyncIterator[tuple[int, asyncio.Event]]:
    connected = asyncio.Event()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1], connected


async def test_no_network(host: Host, listener: tuple[int, asyncio.Event]) -> None:
    port, connected = listener
    script = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=5); print('connected')"
    out = await call(run_command, ctx_for(host), command=f'python3 -c "{script}"')
    assert "ConnectionRefusedError" in out and "connected\n" not in out
    assert not connected.is_set()
    allowed = await call(run_command, ctx_for(host, network=True), command=f'python3 -c "{script}"')
    assert allowed == "exit code: 0\nconnected\n"
    async with asyncio.timeout(5):
        await connected.wait()


def test_sandbox_status_row() -> None:
    status, detail = sandbox.sandbox_status(ShellToolsConfig())
    assert sandbox.sandbox_problem(ShellToolsConfig()) is None
    assert status == "ok" and "no network" in detail and "64 processes" in detail
    assert sandbox.sandbox_status(ShellToolsConfig(sandbox="off"))[0] == "off"
