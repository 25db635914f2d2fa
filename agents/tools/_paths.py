"""The workspace jail: every path is opened beneath a descriptor of the workspace.

A path the model gives is never handed to the kernel whole. ``Workspace`` holds an
``O_DIRECTORY`` descriptor of the workspace and walks the path one component at a time with
``os.open(name, O_NOFOLLOW | O_DIRECTORY, dir_fd=parent)``; the final component is opened with
``O_NOFOLLOW`` too. Nothing is checked by name and then opened by name again, so a directory
swapped for a symlink between two steps is refused by the kernel instead of followed.

Why a walk and not ``openat2(RESOLVE_BENEATH)``: the walk is one code path on every POSIX
system Python runs on (openat2 is Linux 5.6+ and needs per-architecture syscall numbers
through ctypes), and only the walk sees each name, which the deny list and the symlink policy
below need. It costs one ``openat`` per directory level.

Rules, all enforced here:

- ``..`` never climbs above the workspace. The model's path is first normalised lexically
  (``a/../b`` is ``b``; a leading ``..`` is refused before touching the disk).
- Symbolic links: relative links are followed by resolving their target on the descriptor
  stack, at most ``MAX_LINKS`` per path, and refused if they lead above the workspace.
  Absolute links are refused: inside the shell sandbox the workspace has another absolute
  path, so an absolute link is either foreign or meaningless. Deleting a link removes the link.
- Regular files with more than one hard link are refused for reading and writing: the other
  name may be outside the workspace, and no lookup beneath the descriptor can tell.
- Names matching the deny list (``DenyList``) are refused on the way in, for every component,
  whether the model typed the name or a link led there.
- FIFOs and devices are opened ``O_NONBLOCK`` and refused after ``fstat``; they never block.

Paths shown to the model are workspace-relative with ``/`` (``.`` is the workspace itself) and
describe where a path led, after links. POSIX only (``dir_fd`` support is required).
"""

from __future__ import annotations

import errno
import fnmatch
import os
import posixpath
import re
import stat
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from hub.errors import ToolDenied, ToolFailed

from .base import ToolContext
from .config import DEFAULT_DENY_PATTERNS
from .workspace import ensure_workspace

T = TypeVar("T")

MAX_LINKS = 40
"""Symbolic links followed while resolving one path (Linux's own limit)."""

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FINAL_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
# What O_NOFOLLOW reports for a link: ELOOP (Linux, macOS), EMLINK (FreeBSD), and ENOTDIR on
# Linux when O_DIRECTORY is set too. readlink then tells a link from a plain error.
_LINK_ERRNOS = frozenset({errno.ELOOP, errno.EMLINK, errno.ENOTDIR})

READ = os.O_RDONLY
"""``open_file`` flags: read."""
WRITE = os.O_WRONLY | os.O_CREAT
"""``open_file`` flags: create or open for writing, not truncated (the caller truncates after
the checks)."""
APPEND = WRITE | os.O_APPEND


def not_found(user_path: str) -> ToolFailed:
    """The error for a path the workspace does not hold. It says where the tools look, so the
    model can tell the user why "read README.md" found nothing and how to see what is there."""
    return ToolFailed(
        f"{user_path!r} does not exist in the workspace (the user's own folder, the only files the tools "
        "can see; the user can list it with /workspace)"
    )


class FoundLink(Exception):
    """The entry opened is a symbolic link to ``target``; ``Workspace.resolve`` follows it."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


def show(parts: Sequence[str]) -> str:
    """A workspace-relative path as the model sees it."""
    return "/".join(parts) or "."


def outside(user_path: str, *, through_link: bool = False) -> ToolDenied:
    if through_link:
        return ToolDenied(f"path {user_path!r} leads outside the workspace through a symbolic link")
    return ToolDenied(f"path {user_path!r} is outside the workspace; use a path relative to the workspace")


@lru_cache(maxsize=32)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    """One case-insensitive regex for the name rules, one for the path rules (or None)."""

    def joined(group: list[str]) -> re.Pattern[str] | None:
        body = "|".join(f"(?:{fnmatch.translate(p)})" for p in group)
        return re.compile(body, re.IGNORECASE) if group else None

    return joined([p for p in patterns if "/" not in p]), joined([p for p in patterns if "/" in p])


@dataclass(frozen=True, slots=True)
class DenyList:
    """Credential-looking names the tools never read, write or delete.

    A rule without ``/`` is matched against a name; a rule with ``/`` against the workspace-
    relative path and each tail of it that starts at a component (``.ssh/*`` also refuses
    ``home/.ssh/config``). Matching ignores case: ``.ENV`` opens ``.env`` on macOS. The
    built-in rules (``DEFAULT_DENY_PATTERNS``) always apply; ``extra`` comes from
    ``[tools.file] deny_patterns``.
    """

    extra: tuple[str, ...] = ()

    @classmethod
    def from_context(cls, ctx: ToolContext) -> DenyList:
        return cls(ctx.config.file.deny_patterns)

    @property
    def patterns(self) -> tuple[str, ...]:
        return (*DEFAULT_DENY_PATTERNS, *self.extra)

    def rule(self, parts: Sequence[str]) -> str | None:
        """The rule refusing the last component of ``parts`` (its ancestors are not checked)."""
        by_name, by_path = _compiled(self.patterns)
        hit = by_name is not None and by_name.match(parts[-1]) is not None
        if not hit and by_path is not None:
            hit = any(by_path.match("/".join(parts[i:])) for i in range(len(parts) - 1))
        if not hit:
            return None
        return next(p for p in self.patterns if _one_rule_matches(p, parts))

    def check(self, parts: Sequence[str], user_path: str) -> None:
        """Raise ``ToolDenied`` naming the rule if the last component of ``parts`` is refused."""
        rule = self.rule(parts)
        if rule is None:
            return
        origin = (
            "a built-in rule, which cannot be lifted"
            if rule in DEFAULT_DENY_PATTERNS
            else "a rule from [tools.file] deny_patterns, where an operator can remove it"
        )
        raise ToolDenied(
            f"{user_path!r} is refused: {show(parts)!r} matches {rule!r}, {origin}. The tools never read "
            "or write files that look like credentials; operators add rules with [tools.file] deny_patterns"
        )


def _one_rule_matches(pattern: str, parts: Sequence[str]) -> bool:
    regex = re.compile(fnmatch.translate(pattern), re.IGNORECASE)
    if "/" not in pattern:
        return regex.match(parts[-1]) is not None
    return any(regex.match("/".join(parts[i:])) for i in range(len(parts) - 1))


def _readlink(dir_fd: int, name: str) -> str | None:
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError:
        return None


def open_entry(dir_fd: int, name: str, flags: int, mode: int = 0o644) -> int:
    """Open ``name`` in ``dir_fd`` without following it; raises ``FoundLink`` if it is a link."""
    try:
        return os.open(name, flags | _FINAL_FLAGS, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in _LINK_ERRNOS and (target := _readlink(dir_fd, name)) is not None:
            raise FoundLink(target) from None
        raise


def check_regular(fd: int, user_path: str, *, not_regular: str = "is not a file") -> os.stat_result:
    """The ``fstat`` of an open file, refused unless it is regular with a single hard link."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise ToolFailed(f"{user_path!r} {not_regular}")
    if st.st_nlink > 1:
        raise ToolDenied(
            f"{user_path!r} has {st.st_nlink} hard links; files with other names are refused because "
            "the other names may be outside the workspace (copy the file instead of linking it)"
        )
    return st


def _lexical_parts(user_path: str, bases: Callable[[], Sequence[str]]) -> list[str]:
    """The model's path as components, ``..`` collapsed; absolute paths must name the workspace."""
    if "\x00" in user_path:
        raise ToolFailed("path contains a NUL character")
    normal = posixpath.normpath(user_path or ".")
    if normal.startswith("/"):
        for base in bases():
            if normal == base or normal.startswith(base.rstrip("/") + "/"):
                normal = posixpath.relpath(normal, base)
                break
        else:
            raise outside(user_path)
    if normal == ".." or normal.startswith("../"):
        raise outside(user_path)
    return [p for p in normal.split("/") if p not in ("", ".")]


class Workspace:
    """An open workspace: resolves the model's paths beneath one directory descriptor.

    Use as a context manager (it closes the descriptor), in a worker thread: every method
    makes blocking system calls. The workspace directory is created if missing.

    Args:
        path: the workspace (``ToolContext.workspace``); links in it are the operator's and followed.
        deny: the deny list.
    """

    def __init__(self, path: Path, deny: DenyList) -> None:
        self.path = path.expanduser()
        self.deny = deny
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
        try:
            try:
                self.fd = os.open(self.path, flags)
            except FileNotFoundError:
                self.fd = os.open(ensure_workspace(self.path), flags)
        except OSError as exc:
            raise ToolFailed(f"the workspace cannot be opened: {exc.strerror or exc}") from None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _bases(self) -> Sequence[str]:
        return (str(self.path), os.path.realpath(self.path))

    def resolve(
        self,
        user_path: str,
        op: Callable[[int, str], T],
        *,
        create_dirs: bool = False,
        needs_name: bool = False,
    ) -> tuple[T, tuple[str, ...]]:
        """Walk ``user_path`` and run ``op(parent_fd, name)`` on its final component.

        ``op`` runs while ``parent_fd`` is open; raising ``FoundLink`` from it (``open_entry`` does)
        follows the link. A path that ends at a directory (``.``, ``a/..``) calls ``op`` with
        name ``"."`` unless ``needs_name``. Returns what ``op`` returned and the components of
        the path it led to.

        Raises:
            ToolDenied: outside the workspace, an absolute link, or a deny-listed name.
            ToolFailed: a missing or non-directory parent, too many links.
        """
        lexical = _lexical_parts(user_path, self._bases)
        for depth in range(1, len(lexical) + 1):  # refuse before touching the disk (no mkdir)
            self.deny.check(lexical[:depth], user_path)
        pending = deque(lexical)
        stack: list[int] = [self.fd]
        names: list[str] = []
        links = 0
        try:
            while True:
                while pending and pending[0] in ("", "."):
                    pending.popleft()
                if not pending:
                    return self._at_directory(user_path, op, stack[-1], names, needs_name)
                name = pending.popleft()
                if name == "..":
                    if len(stack) == 1:
                        raise outside(user_path, through_link=links > 0)
                    os.close(stack.pop())
                    names.pop()
                    continue
                if links:  # a link led here: these names were not among those checked above
                    self.deny.check([*names, name], user_path)
                try:
                    if any(p not in ("", ".") for p in pending):
                        stack.append(self._open_dir(stack[-1], name, user_path, create_dirs))
                        names.append(name)
                    else:
                        return op(stack[-1], name), (*names, name)
                except FoundLink as link:
                    links += 1
                    pending.extendleft(reversed(self._link_parts(link.target, links, user_path)))
        finally:
            for fd in stack[1:]:
                os.close(fd)

    @staticmethod
    def _at_directory(
        user_path: str, op: Callable[[int, str], T], dir_fd: int, names: list[str], needs_name: bool
    ) -> tuple[T, tuple[str, ...]]:
        if needs_name:
            what = "a directory" if names else "the workspace itself"
            raise ToolFailed(f"{user_path!r} is {what}, not a file")
        return op(dir_fd, "."), tuple(names)

    @staticmethod
    def _link_parts(target: str, links: int, user_path: str) -> list[str]:
        if links > MAX_LINKS:
            raise ToolFailed(f"too many symbolic links in {user_path!r} (more than {MAX_LINKS})")
        if not target or target.startswith("/"):
            raise ToolDenied(
                f"{user_path!r} goes through a symbolic link to the absolute path {target!r}, which may lead "
                "outside the workspace; only relative links that stay inside the workspace are followed"
            )
        return target.split("/")

    def _open_dir(self, dir_fd: int, name: str, user_path: str, create: bool) -> int:
        """A descriptor of the directory ``name`` in ``dir_fd``, made first if ``create``."""
        for _attempt in range(2):
            try:
                return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
            except FileNotFoundError:
                if not create:
                    raise not_found(user_path) from None
            except OSError as exc:
                if exc.errno in _LINK_ERRNOS and (target := _readlink(dir_fd, name)) is not None:
                    raise FoundLink(target) from None
                if exc.errno == errno.ENOTDIR:
                    raise ToolFailed(f"{user_path!r}: {name!r} is not a directory") from None
                raise ToolFailed(f"{user_path!r}: cannot open {name!r}: {exc.strerror or exc}") from None
            try:
                os.mkdir(name, dir_fd=dir_fd)
            except FileExistsError:
                pass  # made meanwhile (or a link now): the second open decides
        raise ToolFailed(f"{user_path!r}: cannot create directory {name!r}")

    def open_file(self, user_path: str, flags: int = READ) -> tuple[int, tuple[str, ...]]:
        """An open descriptor of a regular, singly linked file, and the path it led to.

        ``flags`` is ``READ``, ``WRITE`` (missing directories are made) or ``APPEND``. The
        caller closes the descriptor.
        """
        writing = bool(flags & (os.O_WRONLY | os.O_RDWR))
        not_regular = "exists and is not a regular file" if writing else "is not a file"

        def op(dir_fd: int, name: str) -> int:
            try:
                fd = open_entry(dir_fd, name, flags)
            except FileNotFoundError:
                raise not_found(user_path) from None
            except IsADirectoryError:
                raise ToolFailed(f"{user_path!r} {not_regular}") from None
            except OSError as exc:
                raise ToolFailed(f"cannot open {user_path!r}: {exc.strerror or exc}") from None
            try:
                check_regular(fd, user_path, not_regular=not_regular)
            except BaseException:
                os.close(fd)
                raise
            return fd

        return self.resolve(user_path, op, create_dirs=writing, needs_name=writing)

    def open_any(self, user_path: str) -> tuple[int, tuple[str, ...]]:
        """An open descriptor (file or directory, links followed inside) for ``fstat`` to sort."""

        def op(dir_fd: int, name: str) -> int:
            try:
                return open_entry(dir_fd, name, os.O_RDONLY)
            except FileNotFoundError:
                raise not_found(user_path) from None
            except OSError as exc:
                raise ToolFailed(f"cannot open {user_path!r}: {exc.strerror or exc}") from None

        return self.resolve(user_path, op)

    def stat(self, user_path: str) -> tuple[os.stat_result, tuple[str, ...]]:
        """The status of what ``user_path`` leads to (relative links followed inside)."""

        def op(dir_fd: int, name: str) -> os.stat_result:
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                raise not_found(user_path) from None
            if stat.S_ISLNK(st.st_mode) and (target := _readlink(dir_fd, name)) is not None:
                raise FoundLink(target)
            return st

        return self.resolve(user_path, op)

    @contextmanager
    def entry(self, user_path: str) -> Iterator[tuple[int, str, tuple[str, ...]]]:
        """The open parent directory of ``user_path`` and its final name, which is not followed."""

        def op(dir_fd: int, name: str) -> tuple[int, str]:
            return os.dup(dir_fd), name

        (fd, name), parts = self.resolve(user_path, op, needs_name=True)
        try:
            yield fd, name, parts
        finally:
            os.close(fd)


@dataclass(frozen=True, slots=True)
class Entry:
    """One directory entry met by ``walk``; ``dir_fd`` is valid only until the walk moves on."""

    parts: tuple[str, ...]
    dir_fd: int
    st: os.stat_result
    """From ``lstat``: a link is reported as a link."""

    @property
    def name(self) -> str:
        return self.parts[-1]


def walk(dir_fd: int, parts: tuple[str, ...], enter: Callable[[Entry], bool], max_depth: int = 64) -> Iterator[Entry]:
    """Entries under ``dir_fd`` in sorted, depth-first order; links are listed, never entered.

    Directories are opened ``O_NOFOLLOW`` relative to their parent, so a directory swapped for
    a link while walking is skipped. ``enter`` decides whether to descend into a directory;
    deeper than ``max_depth`` levels nothing is entered.
    """
    for name, st in _listing(dir_fd):
        entry = Entry((*parts, name), dir_fd, st)
        yield entry
        if not stat.S_ISDIR(st.st_mode) or max_depth <= 0 or not enter(entry):
            continue
        try:
            sub = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except OSError:
            continue
        try:
            yield from walk(sub, entry.parts, enter, max_depth - 1)
        finally:
            os.close(sub)


def _listing(dir_fd: int) -> list[tuple[str, os.stat_result]]:
    """The names in ``dir_fd`` with their ``lstat``, sorted; entries that vanish are left out."""
    found: list[tuple[str, os.stat_result]] = []
    try:
        with os.scandir(dir_fd) as listing:
            for item in listing:
                try:
                    found.append((item.name, item.stat(follow_symlinks=False)))
                except OSError:
                    continue
    except OSError:
        return []
    return sorted(found, key=lambda pair: pair[0])


def workspace_root(ctx: ToolContext) -> Path:
    """The real path of the workspace, created if missing (for tools that need a path: shell)."""
    return ensure_workspace(Path(ctx.workspace))
