"""``bench/tools.py`` runs at toy sizes and ends with its JSON line (figures are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_tools_bench_prints_every_figure() -> None:
    proc = subprocess.run(
        [sys.executable, "bench/tools.py", "--commands", "3", "--files", "20"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in (
        "command_off_p50_ms",
        "read_file_p99_ms",
        "write_file_p99_ms",
        "walk_open_p50_ms",
        "walk_over_plain_open_p50_ratio",
    ):
        assert isinstance(figures[key], int | float), key
