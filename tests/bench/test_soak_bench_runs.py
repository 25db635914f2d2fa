"""``bench/soak.py`` runs end to end at toy size (kills, an outage) and ends with its JSON line.

Figures are not asserted beyond the bench completing: the soak's goal (nothing lost) is
reported in closing notes from full-size runs."""

from __future__ import annotations

import pytest

from tests.bench import run_bench


@pytest.mark.timeout(150)
def test_soak_bench_prints_every_figure() -> None:
    figures, _printed = run_bench(
        "bench/soak.py",
        "--messages",
        "30",
        "--chats",
        "10",  # 3 messages each, within Telegram's burst: the answers do not queue for its 1/s per chat
        "--rate",
        "10",
        "--kills",
        "2",
        "--outage",
        "2",
        "--latency",
        "0.05",
        "--drain",
        "60",
        timeout=140,
    )
    for key in (
        "messages_sent",
        "answered",
        "lost",
        "duplicated",
        "duplicated_in_send_to_record_window",
        "quarantined",
        "restarts",
    ):
        assert isinstance(figures[key], int), key
    assert figures["messages_sent"] == 30 and figures["restarts"] == 2
