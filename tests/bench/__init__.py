"""Each benchmark runs end to end at toy sizes (``run_bench``); figures are not asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_bench(script: str, *args: str, timeout: float = 50) -> tuple[dict[str, Any], str]:
    """Run ``script`` (a path under the repository) with ``args``; its figures (the last line's
    JSON object) and everything it printed. A failed run fails with the end of its stderr."""
    proc = subprocess.run([sys.executable, script, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return figures, proc.stdout
