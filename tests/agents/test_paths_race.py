"""The swap race: a directory or file replaced by a link between two steps of a path lookup.

The old code resolved a path and then opened it by name; a directory swapped for a symlink in
between won. Now every component is opened beneath the previous one's descriptor with
``O_NOFOLLOW``, so there is no "between". The deterministic tests swap at the exact moment
(inside ``os.open``); the stress tests swap in a tight loop from a thread while the tools run.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.tools import _paths
from agents.tools.base import ToolContext
from agents.tools.file import read_file, write_file
from agents.tools.search import grep
from hub.errors import ToolDenied, ToolFailed

from .conftest_tools import call, make_ctx

SENTINEL = "SENTINEL-outside-must-not-leak"
ROUNDS = 300


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    out = tmp_path / "outside"
    out.mkdir()
    (out / "f").write_text(SENTINEL)
    return out


@pytest.fixture(params=["absolute", "relative"])
def ws(tmp_path: Path, outside: Path, request: pytest.FixtureRequest) -> Path:
    workspace = tmp_path / "ws"
    (workspace / "d").mkdir(parents=True)
    (workspace / "d" / "f").write_text("inside")
    (workspace / "d.lnk").symlink_to(outside if request.param == "absolute" else "../outside")
    return workspace


@pytest.fixture
def ctx(ws: Path) -> ToolContext:
    return make_ctx(ws)


def _exchanger() -> Callable[[Path, Path], None] | None:
    """Atomic exchange of two names (Linux ``renameat2(RENAME_EXCHANGE)``), or None."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return None
    at_fdcwd, rename_exchange = -100, 2

    def exchange(a: Path, b: Path) -> None:
        if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    return exchange


EXCHANGE = _exchanger()


def swap_in(ws: Path) -> None:
    """``d`` becomes the link to outside; the real directory waits as ``d.dir``."""
    os.rename(ws / "d", ws / "d.dir")
    os.rename(ws / "d.lnk", ws / "d")


def swap_back(ws: Path) -> None:
    os.rename(ws / "d", ws / "d.lnk")
    os.rename(ws / "d.dir", ws / "d")


def assert_outside_untouched(outside: Path) -> None:
    assert sorted(os.listdir(outside)) == ["f"]
    assert (outside / "f").read_text() == SENTINEL


@pytest.fixture
def on_open(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, Callable[[], None]], None]:
    """Run an action once, just before ``os.open`` is called for a given name relative to a dir_fd."""

    def install(name: str, action: Callable[[], None]) -> None:
        real_open = os.open
        done = False

        def hooked(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
            nonlocal done
            if not done and dir_fd is not None and path == name:
                done = True
                action()
            return real_open(path, flags, mode, dir_fd=dir_fd)

        monkeypatch.setattr(os, "open", hooked)

    return install


async def test_directory_swapped_before_it_is_opened(ctx: ToolContext, ws: Path, outside: Path, on_open: Any) -> None:
    on_open("d", lambda: swap_in(ws))
    with pytest.raises(ToolDenied, match="outside the workspace"):
        await call(write_file, ctx, path="d/f", content="pwned")
    with pytest.raises(ToolDenied, match="outside the workspace"):
        await call(read_file, ctx, path="d/f")
    assert_outside_untouched(outside)


async def test_directory_swapped_after_it_is_opened(ctx: ToolContext, ws: Path, outside: Path, on_open: Any) -> None:
    # The walk holds the real directory's descriptor: the write lands in it, under its new name.
    on_open("f", lambda: swap_in(ws))
    assert await call(write_file, ctx, path="d/f", content="safe") == "wrote 4 bytes to d/f"
    assert (ws / "d.dir" / "f").read_text() == "safe"
    assert_outside_untouched(outside)


async def test_file_swapped_for_a_link_before_it_is_opened(
    ctx: ToolContext, ws: Path, outside: Path, on_open: Any
) -> None:
    def swap_file() -> None:
        (ws / "d" / "f").unlink()
        (ws / "d" / "f").symlink_to(outside / "f")

    on_open("f", swap_file)
    with pytest.raises(ToolDenied, match="absolute path"):
        await call(write_file, ctx, path="d/f", content="pwned")
    assert_outside_untouched(outside)


async def test_file_swapped_for_a_hardlink_before_it_is_opened(
    ctx: ToolContext, ws: Path, outside: Path, on_open: Any
) -> None:
    def swap_file() -> None:
        (ws / "d" / "f").unlink()
        os.link(outside / "f", ws / "d" / "f")

    on_open("f", swap_file)
    with pytest.raises(ToolDenied, match="hard links"):
        await call(write_file, ctx, path="d/f", content="pwned")
    assert_outside_untouched(outside)


@pytest.fixture
def swapper(ws: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """A thread swapping ``d`` and the link in a tight loop until the test ends.

    The exchange is atomic, so ``d`` always exists: as the real directory or as the link.
    """
    if EXCHANGE is None:
        pytest.skip("needs renameat2(RENAME_EXCHANGE) (Linux)")
    exchange = EXCHANGE
    monkeypatch.setattr(sys, "getswitchinterval", sys.getswitchinterval)
    sys.setswitchinterval(1e-6)  # hand the GIL over often, so the threads interleave finely
    stop = threading.Event()
    swaps: Counter[str] = Counter()

    def run() -> None:
        while not stop.is_set():
            exchange(ws / "d", ws / "d.lnk")
            swaps["swaps"] += 1

    thread = threading.Thread(target=run, name="swapper", daemon=True)
    thread.start()
    try:
        yield swaps
    finally:
        stop.set()
        thread.join(timeout=10)
        sys.setswitchinterval(0.005)
        assert not thread.is_alive()


async def test_tools_under_a_swapping_directory(ctx: ToolContext, outside: Path, swapper: Counter[str]) -> None:
    outcomes: Counter[str] = Counter()
    for i in range(ROUNDS):
        for tool_, args in (
            (write_file, {"path": "d/f", "content": f"round {i}"}),
            (write_file, {"path": "d/f", "content": "+", "append": True}),
            (read_file, {"path": "d/f"}),
            (grep, {"pattern": "SENTINEL|round", "path": "d"}),
        ):
            try:
                result = await call(tool_, ctx, **args)
            except (ToolDenied, ToolFailed) as exc:
                assert SENTINEL not in str(exc)
                outcomes[type(exc).__name__] += 1
            else:
                assert SENTINEL not in result
                outcomes["ok"] += 1
    assert sum(outcomes.values()) == ROUNDS * 4 and swapper["swaps"] > 0
    assert_outside_untouched(outside)


def test_open_file_under_a_swapping_directory(ws: Path, outside: Path, swapper: Counter[str]) -> None:
    outcomes: Counter[str] = Counter()
    with _paths.Workspace(ws, _paths.DenyList()) as workspace:
        for i in range(ROUNDS * 10):
            try:
                fd, parts = workspace.open_file("d/f", _paths.WRITE if i % 2 else _paths.READ)
            except (ToolDenied, ToolFailed):
                outcomes["refused"] += 1
                continue
            try:
                assert parts == ("d", "f")
                if i % 2:
                    os.pwrite(fd, b"x", 0)
                else:
                    assert SENTINEL.encode() not in os.pread(fd, 100, 0)
            finally:
                os.close(fd)
            outcomes["opened"] += 1
    assert sum(outcomes.values()) == ROUNDS * 10 and swapper["swaps"] > 0
    assert_outside_untouched(outside)
