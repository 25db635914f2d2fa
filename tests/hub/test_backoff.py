"""``Backoff``: the pause after N failures, its cap, its jitter, drawn from an injected source."""

from __future__ import annotations

import random

import pytest

from hub.backoff import EQUAL_JITTER, NO_JITTER, TENTH_LONGER, Backoff


def test_steps_grow_by_the_factor_up_to_the_cap() -> None:
    backoff = Backoff(first=1.0, cap=30.0)
    assert [backoff.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.delay(10_000) == 30  # no overflow however long the outage
    assert Backoff(first=0.5, cap=10.0, factor=3.0).step(3) == 4.5
    assert Backoff(first=5.0, cap=5.0, factor=1.0).delay(50) == 5  # a fixed interval


def test_jitter_is_drawn_from_the_injected_source() -> None:
    lowest = Backoff(first=4.0, cap=60.0, jitter=EQUAL_JITTER, random=lambda: 0.0)
    highest = Backoff(first=4.0, cap=60.0, jitter=EQUAL_JITTER, random=lambda: 1.0)
    assert (lowest.delay(1), highest.delay(1)) == (2.0, 4.0)  # between half and all of the step
    longer = Backoff(first=10.0, cap=60.0, jitter=TENTH_LONGER, random=lambda: 0.5)
    assert longer.delay(1) == pytest.approx(10.5)
    seeded = [Backoff(first=1.0, cap=8.0, jitter=TENTH_LONGER, random=random.Random(7).random) for _ in range(2)]
    assert [seeded[0].delay(n) for n in range(1, 5)] == [seeded[1].delay(n) for n in range(1, 5)]


def test_at_least_keeps_a_platforms_retry_after_and_stretches_it() -> None:
    backoff = Backoff(first=1.0, cap=60.0, jitter=TENTH_LONGER, random=lambda: 1.0)
    assert backoff.delay(1, at_least=30.0) == pytest.approx(33.0)
    assert backoff.delay(3, at_least=0.5) == pytest.approx(4.4)
    assert Backoff(first=1.0, cap=60.0, jitter=NO_JITTER).delay(1, at_least=30.0) == 30.0


def test_nonsense_numbers_are_refused() -> None:
    for make in (
        lambda: Backoff(first=-1.0, cap=1.0),
        lambda: Backoff(first=1.0, cap=1.0, factor=0.5),
        lambda: Backoff(first=1.0, cap=1.0, jitter=(1.1, 1.0)),
    ):
        with pytest.raises(ValueError, match="a back-off needs"):
            make()
