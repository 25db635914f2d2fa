"""What the tools' guards cost: the command sandbox per command, the descriptor walk per file call.

    python bench/tools.py [--commands 200] [--files 2000]

- ``run_command "true"`` through ``agents.tools.shell.execute``, with bubblewrap and with
  ``sandbox = "off"`` (both under ``prlimit``), measured in the same run; the ratio is the
  sandbox's cost over a bare start. With the hub running as root, each sandboxed command also
  gets a pids cgroup (see ``agents/tools/sandbox.py``): run as an ordinary user to see bwrap
  without it.
- ``read_file`` and ``write_file`` on a small file three directories deep, awaiting the tool's
  ``invoke`` as the agent does (argument validation, the thread hop, the walk from the
  workspace's descriptor); the bare walk (``Workspace.open_file``) alone, and against it, in
  the same run, one plain ``open`` of the same path.

The last line of output is one JSON object of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path[0] = str(Path(__file__).resolve().parents[1])

from agents.tools import _paths, sandbox, shell
from agents.tools.base import ToolContext
from agents.tools.config import ShellToolsConfig, ToolsConfig
from agents.tools.file import read_file, write_file
from bench._common import emit, latency_figures
from hub.messages import ConversationRef, Sender


async def timed(n: int, call: Callable[[], Awaitable[Any]], *, warmup: int = 10) -> list[float]:
    for _ in range(warmup):
        await call()
    out: list[float] = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        out.append(time.perf_counter() - start)
    return out


async def bench_commands(root: Path, n: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for mode in ("bwrap", "off"):
        cfg = ShellToolsConfig.model_validate({"sandbox": mode})
        if mode == "bwrap" and sandbox.sandbox_problem(cfg) is not None:
            print(f"bwrap: skipped ({sandbox.sandbox_problem(cfg)})")
            continue

        async def once(cfg: ShellToolsConfig = cfg) -> None:
            done = await shell.execute(["true"], root=root, config=cfg)
            assert done.code == 0, done.output

        seconds = await timed(n, once)
        figures.update(latency_figures(f"command_{mode}_", seconds))
        print(
            f"run_command true, sandbox={mode}: p50 {figures[f'command_{mode}_p50_ms']:.2f} ms, "
            f"p99 {figures[f'command_{mode}_p99_ms']:.2f} ms"
        )
    if "command_bwrap_p50_ms" in figures:
        ratio = figures["command_bwrap_p50_ms"] / figures["command_off_p50_ms"]
        figures["sandbox_over_off_p50_ratio"] = round(ratio, 2)
        figures["sandbox_process_limit"] = sandbox.process_limit() or "none"
    return figures


async def bench_files(root: Path, n: int) -> dict[str, float]:
    ctx = ToolContext(
        conversation=ConversationRef(channel="bench", chat="c"),
        sender=Sender(id="u"),
        workspace=root,
        config=ToolsConfig(),
    )
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "a" / "b" / "c" / "f.txt").write_text("hello\n" * 20)
    figures: dict[str, float] = {}
    read = await timed(n, lambda: read_file.invoke({"path": "a/b/c/f.txt"}, ctx), warmup=200)
    write = await timed(n, lambda: write_file.invoke({"path": "a/b/c/g.txt", "content": "x" * 120}, ctx), warmup=200)

    def walk_only() -> None:
        with _paths.Workspace(root, _paths.DenyList()) as ws:
            fd, _parts = ws.open_file("a/b/c/f.txt", _paths.READ)
            os.close(fd)

    async def walk() -> None:
        walk_only()

    async def plain() -> None:  # the baseline: one open by path, as a tool without the walk would
        os.close(os.open(root / "a" / "b" / "c" / "f.txt", os.O_RDONLY | os.O_CLOEXEC))

    walked = await timed(n, walk, warmup=200)
    opened = await timed(n, plain, warmup=200)
    for name, seconds in (
        ("read_file_", read),
        ("write_file_", write),
        ("walk_open_", walked),
        ("plain_open_", opened),
    ):
        figures.update(latency_figures(name, seconds))
        print(
            f"{name.rstrip('_')}: p50 {figures[f'{name}p50_ms'] * 1000:.0f} µs, "
            f"p99 {figures[f'{name}p99_ms'] * 1000:.0f} µs"
        )
    figures["walk_over_plain_open_p50_ratio"] = round(figures["walk_open_p50_ms"] / figures["plain_open_p50_ms"], 2)
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=200, help="commands per sandbox mode")
    parser.add_argument("--files", type=int, default=2000, help="calls per file tool")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="autohands-bench-") as tmp:
        commands_root = Path(tmp) / "commands"
        commands_root.mkdir()
        files_root = Path(tmp) / "files"
        files_root.mkdir()
        figures = await bench_commands(commands_root.resolve(), args.commands)
        figures.update(await bench_files(files_root.resolve(), args.files))
    emit(figures)


if __name__ == "__main__":
    asyncio.run(main())
