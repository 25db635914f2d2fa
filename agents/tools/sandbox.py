"""The bubblewrap sandbox that ``run_command`` runs each command in.

What a command sees (``bwrap_options``):

- ``/usr`` read-only, and ``/bin``, ``/lib``, ``/lib64``, ``/sbin``… as the host has them
  (symlinks, or read-only binds);
- a minimal ``/etc``: the dynamic linker's files, ``alternatives``, ``localtime``,
  ``nsswitch.conf``, and a ``passwd``, ``group`` and ``hosts`` of its own; the host's
  ``/etc/ssl``, ``resolv.conf`` and ``hosts`` only when ``network = true``;
- the workspace, read-write, at ``/workspace`` (also the working directory and ``HOME``): the
  only writable place besides a private ``/tmp`` and ``/dev/shm``, each capped at ``max_file_mb``;
- its own ``/proc`` (a new PID namespace) and a minimal ``/dev``; new user, mount, IPC, UTS,
  cgroup and network namespaces (the host's network only with ``network = true``); uid 1000, no
  capabilities, no further user namespaces, a new session; an empty environment but ``PATH``,
  ``HOME``, ``LANG``, ``LC_ALL``, ``TMPDIR`` and ``pass_env``. Nothing else of the host:
  no ``/home``, ``/root``, ``/var``, ``/opt``, ``/srv``, ``/mnt``, ``/media``, rest of ``/etc``.

Hidden under a read-only empty directory or ``/dev/null``: the hub's own paths
(``ToolContext.protected``) wherever a bind would show them, files in the workspace that are
one of them under another name (same inode: a hard link), and names the deny list refuses
(``[tools.file]``). The workspace is scanned for those before every command, at most
``MAX_SCAN_ENTRIES`` entries and ``MAX_SCAN_DEPTH`` levels; a bigger workspace is refused
rather than shown unchecked.

Lifetime: bwrap's PID 1 exits when the command does, and the kernel then kills whatever is
left in the PID namespace — a child that called ``setsid`` too. Killing bwrap (timeout,
cancellation) ends the namespace the same way (``--die-with-parent``).

Limits: ``prlimit`` sets RLIMIT_NPROC, AS, CPU, FSIZE, NOFILE and CORE=0 on the command. The
user namespace is new for every command, so RLIMIT_NPROC counts only this command's processes
(and bwrap's PID 1). But the kernel never applies RLIMIT_NPROC to processes whose real uid is
the host's root, user namespace or not (``kernel/fork.c``: ``INIT_USER`` is exempt), so a hub
running as root also puts each sandbox in a pids cgroup of its own when it can make one
(cgroup v1, or v2 with the pids controller available below the hub's cgroup). Where it cannot,
the number of processes is not limited and ``sandbox_status`` says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import os
import re
import resource
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from hub.errors import ToolFailed

from . import _paths
from .config import ShellToolsConfig

logger = logging.getLogger(__name__)

WORKSPACE = "/workspace"
"""Where the workspace appears inside the sandbox."""
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
"""``PATH`` of every command, in the sandbox and out of it."""
SANDBOX_UID = 1000
"""The uid (and gid) commands run as inside; not 0, so that tar, cp -a or pip do not try to
act as root (and fail on ownership they cannot set)."""
MAX_SCAN_ENTRIES = 20_000
"""Workspace entries checked for hidden names before a command; beyond this it is refused."""
MAX_SCAN_DEPTH = 64
PROBE_TIMEOUT_SECONDS = 20.0

_SYSTEM_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "nsswitch.conf")
_ETC_NETWORK = ("ssl", "ca-certificates", "pki", "resolv.conf", "hosts", "host.conf", "gai.conf")
_PASSWD = (
    f"root:x:0:0:root:/root:/usr/sbin/nologin\nsandbox:x:{SANDBOX_UID}:{SANDBOX_UID}:sandbox:{WORKSPACE}:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
)
_GROUP = f"root:x:0:\nsandbox:x:{SANDBOX_UID}:\nnogroup:x:65534:\n"
_HOSTS = "127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n"
_JOIN_CGROUP = 'echo "$$" > "$0" && exec "$@"'  # the shell enters the cgroup, then becomes bwrap
_NAMESPACE_REFUSED = ("namespace", "uid map", "setgroups")


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Resource limits of one command (see ``ShellToolsConfig``)."""

    processes: int
    memory_bytes: int
    cpu_seconds: int
    file_bytes: int
    open_files: int

    @classmethod
    def from_config(cls, cfg: ShellToolsConfig) -> Limits:
        mib = 1024 * 1024
        return cls(
            processes=cfg.max_processes,
            memory_bytes=cfg.max_memory_mb * mib,
            cpu_seconds=cfg.max_cpu_seconds,
            file_bytes=cfg.max_file_mb * mib,
            open_files=cfg.max_open_files,
        )

    def prlimit(self, argv: Sequence[str], *, nproc: bool, prlimit: str = "/usr/bin/prlimit") -> list[str]:
        """``argv`` under ``prlimit`` with these limits (``nproc``: RLIMIT_NPROC too).

        RLIMIT_NPROC is one more than ``processes``: bwrap's PID 1 is counted with the command.
        Each value is lowered to the hub's own hard limit, which an unprivileged process
        cannot raise.
        """
        values = [
            ("as", resource.RLIMIT_AS, self.memory_bytes),
            ("cpu", resource.RLIMIT_CPU, self.cpu_seconds),
            ("fsize", resource.RLIMIT_FSIZE, self.file_bytes),
            ("nofile", resource.RLIMIT_NOFILE, self.open_files),
        ]
        if nproc:
            values.append(("nproc", resource.RLIMIT_NPROC, self.processes + 1))
        options = [f"--{name}={_below_hard(limit, value)}" for name, limit, value in values]
        return [prlimit, *options, "--core=0", "--", *argv]


def _below_hard(which: int, value: int) -> int:
    hard = resource.getrlimit(which)[1]
    return value if hard == resource.RLIM_INFINITY else min(value, hard)


@dataclass(frozen=True, slots=True)
class Hidden:
    """A path inside the sandbox covered before the command starts."""

    path: str
    directory: bool


@dataclass(frozen=True, slots=True)
class Launch:
    """How to start one sandboxed command: the argument vector and the descriptors it reads."""

    argv: list[str]
    pass_fds: tuple[int, ...]
    env: dict[str, str]


def _inside(path: str, root: str) -> str | None:
    """``path`` relative to ``root`` ("" for root itself), or None if it is not inside."""
    if path == root:
        return ""
    prefix = root.rstrip("/") + "/"
    return path[len(prefix) :] if path.startswith(prefix) else None


@functools.lru_cache(maxsize=4)
def _system_mounts(network: bool) -> tuple[tuple[str, str, str], ...]:
    """(option, host source, sandbox path) for the read-only system; the host layout is fixed."""
    mounts = [("--ro-bind", "/usr", "/usr")]
    for name in _SYSTEM_DIRS:
        host = f"/{name}"
        if os.path.islink(host):
            mounts.append(("--symlink", os.readlink(host), host))
        elif os.path.isdir(host):
            mounts.append(("--ro-bind", host, host))
    for name in (*_ETC, *(_ETC_NETWORK if network else ())):
        host = f"/etc/{name}"
        if os.path.exists(host):
            # A link (resolv.conf -> /run/...) may lead where the sandbox has nothing: bind its target.
            mounts.append(("--ro-bind", os.path.realpath(host), host))
    return tuple(mounts)


def visible_in_sandbox(path: str) -> bool:
    """Whether a host file (after links) is one the sandbox shows, e.g. an executable."""
    real = os.path.realpath(path)
    return any(
        option == "--ro-bind" and _inside(real, os.path.realpath(source)) is not None
        for option, source, _dest in _system_mounts(False)
    )


def _hidden_system_paths(protected: Sequence[Path], network: bool) -> list[Hidden]:
    """The hub's own paths that a system bind would show (a config file under /usr/local…)."""
    found: list[Hidden] = []
    for path in protected:
        real = os.path.realpath(path)
        for option, source, dest in _system_mounts(network):
            rel = _inside(real, os.path.realpath(source)) if option == "--ro-bind" else None
            if rel is not None:
                found.append(Hidden(os.path.join(dest, rel) if rel else dest, os.path.isdir(real)))
    return found


def hidden_paths(
    root: Path, deny: _paths.DenyList, protected: Sequence[Path] = (), *, max_entries: int = MAX_SCAN_ENTRIES
) -> list[Hidden]:
    """What to cover in the workspace: deny-listed names and the hub's own files (by inode).

    Blocking (it walks the workspace): call it in a worker thread. Links are not followed nor
    hidden: inside the sandbox they can only lead to what the sandbox shows anyway.

    Raises:
        ToolFailed: the workspace is one of the hub's own paths, or has more than
            ``max_entries`` entries or ``MAX_SCAN_DEPTH`` levels (it is refused, not shown unchecked).
    """
    own: set[tuple[int, int]] = set()
    for path in protected:
        with contextlib.suppress(OSError):
            st = os.stat(path)
            own.add((st.st_dev, st.st_ino))
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        top = os.fstat(fd)
        if (top.st_dev, top.st_ino) in own:
            raise ToolFailed("the workspace is one of the hub's own directories; set [tools] workspace elsewhere")
        found: list[Hidden] = []
        covered: set[tuple[str, ...]] = set()

        def enter(entry: _paths.Entry) -> bool:
            if len(entry.parts) >= MAX_SCAN_DEPTH:
                raise ToolFailed(f"the workspace is nested deeper than {MAX_SCAN_DEPTH} levels; run_command refuses it")
            return entry.parts not in covered

        for count, entry in enumerate(_paths.walk(fd, (), enter, MAX_SCAN_DEPTH), start=1):
            if count > max_entries:
                raise ToolFailed(
                    f"the workspace has more than {max_entries} files and directories; run_command checks each "
                    "name against the deny list before a command runs, and refuses larger workspaces: remove files"
                )
            if stat.S_ISLNK(entry.st.st_mode):
                continue
            if (entry.st.st_dev, entry.st.st_ino) in own or deny.rule(entry.parts) is not None:
                covered.add(entry.parts)
                found.append(Hidden(f"{WORKSPACE}/{'/'.join(entry.parts)}", stat.S_ISDIR(entry.st.st_mode)))
        return found
    finally:
        os.close(fd)


def bwrap_options(
    root: Path, cfg: ShellToolsConfig, hidden: Sequence[Hidden], protected: Sequence[Path] = ()
) -> tuple[list[str], dict[str, str]]:
    """bwrap's options for one command, and the synthetic files they name (sandbox path → text).

    Each ``@<path>`` placeholder after ``--ro-bind-data`` stands for a descriptor holding that
    file's text (``launch`` makes them).
    """
    size = str(cfg.max_file_mb * 1024 * 1024)
    opts = ["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session"]
    opts += ["--cap-drop", "ALL", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "sandbox"]
    if cfg.network:
        opts.append("--share-net")
    for option, source, dest in _system_mounts(cfg.network):
        opts += [option, source, dest]
    files = {"/etc/passwd": _PASSWD, "/etc/group": _GROUP}
    if not cfg.network:
        files["/etc/hosts"] = _HOSTS
    for dest in files:
        opts += ["--ro-bind-data", f"@{dest}", dest]
    opts += ["--proc", "/proc", "--dev", "/dev", "--size", size, "--tmpfs", "/dev/shm", "--remount-ro", "/dev"]
    opts += ["--size", size, "--tmpfs", "/tmp", "--bind", str(root), WORKSPACE]
    for item in (*_hidden_system_paths(protected, cfg.network), *hidden):
        if item.directory:
            opts += ["--tmpfs", item.path, "--remount-ro", item.path]
        else:
            opts += ["--ro-bind", "/dev/null", item.path]
    opts += ["--remount-ro", "/", "--chdir", WORKSPACE, "--clearenv"]
    env = {"PATH": SANDBOX_PATH, "HOME": WORKSPACE, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TMPDIR": "/tmp"}
    env.update({name: os.environ[name] for name in cfg.pass_env if name in os.environ})
    for name, value in env.items():
        opts += ["--setenv", name, value]
    return opts, files


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


@contextlib.contextmanager
def _option_fds(opts: Sequence[str], files: dict[str, str]) -> Iterator[tuple[int, tuple[int, ...]]]:
    """Memory files for bwrap: its options (``--args``) and the synthetic files they name.

    Options travel this way so that the workspace's host path and ``pass_env`` values stay out
    of the command line ``ps`` shows. Yields the ``--args`` descriptor and all descriptors.
    """
    filled = list(opts)
    with contextlib.ExitStack() as stack:
        fds: list[int] = []
        for dest, text in files.items():
            fd = _memfd("autohands-etc", text.encode())
            stack.callback(os.close, fd)
            fds.append(fd)
            filled[filled.index(f"@{dest}")] = str(fd)
        args_fd = _memfd("autohands-bwrap", b"".join(o.encode() + b"\0" for o in filled))
        stack.callback(os.close, args_fd)
        yield args_fd, (*fds, args_fd)


@contextlib.asynccontextmanager
async def launch(
    argv: Sequence[str],
    *,
    root: Path,
    config: ShellToolsConfig,
    hidden: Sequence[Hidden] = (),
    protected: Sequence[Path] = (),
    bwrap: str = "bwrap",
) -> AsyncIterator[Launch]:
    """How to start ``argv`` (an executable the sandbox shows, and its arguments) in the sandbox.

    Leave the context only once the process has ended: the descriptors are closed then and
    the pids cgroup, if any, removed.
    """
    limits = Limits.from_config(config)
    opts, files = bwrap_options(root, config, hidden, protected)
    command = limits.prlimit(argv, nproc=True, prlimit=_prlimit() or "/usr/bin/prlimit")
    env = {"PATH": SANDBOX_PATH}  # bwrap's PID 1 keeps this environment, readable in /proc/1/environ
    with _option_fds(opts, files) as (args_fd, fds):
        full = [_bwrap(bwrap) or bwrap, "--args", str(args_fd), "--", *command]
        parent = _cgroup_parent()
        if parent is None:
            yield Launch(full, fds, env)
            return
        async with _pids_cgroup(parent, limits.processes + 2) as procs:  # + bwrap and its PID 1
            yield Launch(["/bin/sh", "-c", _JOIN_CGROUP, str(procs), *full], fds, env)


def _bwrap(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=SANDBOX_PATH)


def _prlimit() -> str | None:
    found = shutil.which("prlimit", path=SANDBOX_PATH)
    return found if found is not None and visible_in_sandbox(found) else None


@functools.lru_cache(maxsize=1)
def _cgroup_parent() -> Path | None:
    """Where a hub running as root makes a pids cgroup per command; None: not root, or no way."""
    if os.getuid() != 0:
        return None
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _id, controllers, path = line.split(":", 2)
        if "pids" in controllers.split(","):
            base = Path("/sys/fs/cgroup/pids") / path.lstrip("/")
        elif controllers == "" and os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            base = Path("/sys/fs/cgroup") / path.lstrip("/")
        else:
            continue
        probe = base / f"autohands-probe-{os.getpid()}"
        try:
            probe.mkdir()
        except OSError:
            continue
        usable = (probe / "pids.max").exists()
        with contextlib.suppress(OSError):
            probe.rmdir()
        if usable:
            return base
    return None


@contextlib.asynccontextmanager
async def _pids_cgroup(parent: Path, limit: int) -> AsyncIterator[Path]:
    """A new pids cgroup allowing ``limit`` tasks; yields its ``cgroup.procs``."""
    group = parent / f"autohands-{os.getpid()}-{secrets.token_hex(6)}"
    try:
        group.mkdir()
        (group / "pids.max").write_text(str(limit))
    except OSError as exc:
        with contextlib.suppress(OSError):
            group.rmdir()
        raise ToolFailed(f"cannot make a pids cgroup for the command: {exc.strerror or exc}") from None
    try:
        yield group / "cgroup.procs"
    finally:
        await _remove_cgroup(group)


async def _remove_cgroup(group: Path) -> None:
    """Kill what is left in ``group`` and remove it. After a kill, the PID namespace is torn
    down just after bwrap has gone, so the group may take a moment to empty. (cgroupfs lives in
    memory: its calls do not block on a disk.)"""
    for attempt in range(100):
        try:
            os.rmdir(group)
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                break
        with contextlib.suppress(OSError, ValueError):
            for pid in (group / "cgroup.procs").read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
        await asyncio.sleep(min(0.01, 0.0005 * 2**attempt))  # usually empty within a millisecond
    logger.warning("could not remove the pids cgroup %s", group)


def sandbox_problem(config: ShellToolsConfig, *, bwrap: str = "bwrap") -> str | None:
    """Why commands cannot run in the sandbox here, in one line; None when they can.

    Runs bwrap once with the real options (per process, per ``bwrap`` and ``network``).

    Args:
        config: the ``[tools.shell]`` settings.
        bwrap: the bwrap executable to try (a name on ``PATH`` or a path).
    """
    return _probe(bwrap, config.network)


_OFF = 'or set [tools.shell] sandbox = "off"'
_MIN_VERSION = (0, 8)  # --disable-userns and --size came with 0.8


@functools.lru_cache(maxsize=8)
def _probe(bwrap: str, network: bool) -> str | None:
    executable = _bwrap(bwrap)
    if executable is None:
        return f"bubblewrap is not installed: install the bubblewrap package (apt-get install bubblewrap) {_OFF}"
    prlimit = _prlimit()
    if prlimit is None:
        return f"prlimit is not installed in /usr: install util-linux {_OFF}"
    try:
        said = subprocess.run(
            [executable, "--version"], capture_output=True, timeout=PROBE_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap cannot be run ({exc}) {_OFF}"
    found = re.search(rb"(\d+)\.(\d+)[.\d]*", said.stdout)
    if found is not None and (int(found[1]), int(found[2])) < _MIN_VERSION:
        return f"bubblewrap {found[0].decode()} is too old: install 0.8 or later {_OFF}"
    return _try_sandbox(executable, prlimit, network)


def _try_sandbox(executable: str, prlimit: str, network: bool) -> str | None:
    """Run ``true`` in a sandbox with the real options; None if it worked, else why not."""
    true = shutil.which("true", path=SANDBOX_PATH) or "/bin/true"
    with tempfile.TemporaryDirectory(prefix="autohands-probe-") as tmp:
        opts, files = bwrap_options(Path(tmp), ShellToolsConfig(network=network), ())
        try:
            with _option_fds(opts, files) as (args_fd, fds):
                done = subprocess.run(
                    [executable, "--args", str(args_fd), "--", prlimit, "--core=0", "--", true],
                    capture_output=True,
                    env={"PATH": SANDBOX_PATH},
                    pass_fds=fds,
                    timeout=PROBE_TIMEOUT_SECONDS,
                    check=False,
                )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bwrap cannot be run ({exc}) {_OFF}"
    if done.returncode == 0:
        return None
    said = (done.stderr.decode(errors="replace").strip().splitlines() or [f"exit code {done.returncode}"])[-1]
    if any(word in said for word in _NAMESPACE_REFUSED):
        return (
            f"user namespaces are refused here (bwrap: {said}): allow them (sysctl "
            "kernel.unprivileged_userns_clone=1; on Ubuntu 24.04 kernel.apparmor_restrict_unprivileged_userns=0; "
            f"in a container, a seccomp profile that permits unshare) {_OFF}"
        )
    return f"bwrap cannot start a sandbox here (bwrap: {said}) {_OFF}"


def process_limit() -> str:
    """How the number of a sandboxed command's processes is bounded, in a few words."""
    if os.getuid() != 0:
        return "RLIMIT_NPROC"
    if _cgroup_parent() is not None:
        return "a pids cgroup"
    return ""


def sandbox_status(config: ShellToolsConfig, *, bwrap: str = "bwrap") -> tuple[str, str]:
    """One row for ``autohands doctor``: a status (ok, WARNING, DISABLED, off) and its detail."""
    if config.sandbox == "off":
        return "off", 'sandbox = "off": commands run unconfined, with declared arguments only'
    problem = sandbox_problem(config, bwrap=bwrap)
    if problem is not None:
        return "DISABLED", f"run_command is disabled: {problem}"
    network = "network allowed" if config.network else "no network"
    bound = process_limit()
    if not bound:
        return "WARNING", (
            f"bubblewrap, {network}; processes NOT limited: the hub runs as root, where RLIMIT_NPROC does not "
            "apply, and cannot make a pids cgroup (run the hub as an ordinary user)"
        )
    return "ok", f"bubblewrap, {network}; at most {config.max_processes} processes ({bound})"
