"""``bench/intent.py`` runs over its whole corpus and ends with its JSON line (the token figures
are not asserted; that requests widened, and were counted, is)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_intent_bench_prints_every_figure() -> None:
    proc = subprocess.run([sys.executable, "bench/intent.py"], cwd=ROOT, capture_output=True, text=True, timeout=50)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures["requests"] >= 40
    assert figures["widened"] >= 1
    for key in (
        "input_tokens_per_request_off",
        "input_tokens_per_request_auto",
        "input_tokens_saved_pct",
        "model_calls_per_request_auto",
        "tool_definition_tokens_per_call_auto",
    ):
        assert isinstance(figures[key], int | float), key
