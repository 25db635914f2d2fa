"""``bench/skills.py`` runs at toy sizes and ends with its JSON line (figures not asserted; that
the listed prompt is smaller than the inlined one, and that every edit was seen, is)."""

from __future__ import annotations

from tests.bench import run_bench


def test_skills_bench_prints_every_figure() -> None:
    figures, printed = run_bench("bench/skills.py", "--skills", "8", "--turns", "50", "--reloads", "2")
    assert figures["skills"] == 8
    assert figures["prompt_bytes_listed"] < figures["prompt_bytes_inlined"]
    for key in ("catalogue_cpu_ms_per_turn", "uncached_parse_ms_per_turn", "reload_p50_ms", "reload_p99_ms"):
        assert isinstance(figures[key], int | float), key
    assert "next message sees it" in printed
