"""``autohands chat`` as a subprocess with piped streams, the way the CLI tests start it."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


async def start_chat(home: Path, config: Path) -> asyncio.subprocess.Process:
    """``python -m hub.cli chat --config config`` with ``HOME=home`` and every stream piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hub.cli",
        "chat",
        "--config",
        str(config),
        cwd=ROOT,
        env={**os.environ, "HOME": str(home)},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
