"""``bench/intent.py`` runs over its whole corpus and ends with its JSON line (the token figures
are not asserted; that requests widened, and were counted, is)."""

from __future__ import annotations

from tests.bench import run_bench


def test_intent_bench_prints_every_figure() -> None:
    figures, _printed = run_bench("bench/intent.py", timeout=50)
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
