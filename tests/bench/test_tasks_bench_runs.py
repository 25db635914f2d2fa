"""``bench/tasks.py`` runs end to end at toy sizes and ends with its JSON line of figures.

Figures are not asserted (timing belongs in closing notes, not tests); this keeps the bench
from rotting as the task pool changes."""

from __future__ import annotations

from tests.bench import run_bench


def test_tasks_bench_prints_every_figure() -> None:
    figures, printed = run_bench(
        "bench/tasks.py",
        "--tasks",
        "200",
        "--pending",
        "200",
        "--background",
        "20",
        "--latency",
        "0.1",
        "--chats",
        "1",
        timeout=50,
    )
    for key in (
        "submit_p50_ms",
        "submit_p99_ms",
        "completed_tasks_per_s",
        "hub_start_s",
        "chat_idle_s",
        "chat_with_background_s",
        "chat_ratio",
    ):
        assert isinstance(figures[key], int | float), key
    assert "completed tasks/s" in printed and "pending tasks" in printed
