"""``bench/tools.py`` runs at toy sizes and ends with its JSON line (figures are not asserted)."""

from __future__ import annotations

from tests.bench import run_bench


def test_tools_bench_prints_every_figure() -> None:
    figures, _printed = run_bench("bench/tools.py", "--commands", "3", "--files", "20", timeout=50)
    for key in (
        "command_off_p50_ms",
        "read_file_p99_ms",
        "write_file_p99_ms",
        "walk_open_p50_ms",
        "walk_over_plain_open_p50_ratio",
    ):
        assert isinstance(figures[key], int | float), key
