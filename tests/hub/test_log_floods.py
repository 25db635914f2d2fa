"""A repeated error cannot fill the disk: identical log lines are let through in a burst, then counted."""

from __future__ import annotations

import io
import logging

from hub.logs import RedactingFilter, RepeatFilter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def logger_to(stream: io.StringIO, clock: Clock) -> logging.Logger:
    handler = logging.StreamHandler(stream)
    handler.addFilter(RepeatFilter(burst=3, window=60, clock=clock))
    handler.addFilter(RedactingFilter())
    log = logging.getLogger(f"tests.floods.{id(stream)}")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.DEBUG)
    return log


def test_a_repeated_error_is_shown_a_few_times_then_counted() -> None:
    stream, clock = io.StringIO(), Clock()
    log = logger_to(stream, clock)
    for i in range(126):  # a full disk's 20 seconds at 6 lines a second
        clock.now = i / 6
        log.error("writing to the database failed: %s", f"disk full (attempt {i})")
    assert stream.getvalue().count("\n") == 3
    clock.now = 61
    log.error("writing to the database failed: %s", "disk full (attempt 999)")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4 and lines[-1].endswith("(and 123 more like it since, not shown)")


def test_other_kinds_and_lower_levels_are_not_held_back() -> None:
    stream, clock = io.StringIO(), Clock()
    log = logger_to(stream, clock)
    for i in range(10):
        log.error("one kind %d", i)
        log.warning("another kind %d", i)
        log.info("progress %d", i)
    lines = stream.getvalue().splitlines()
    assert sum(ln.startswith("one kind") for ln in lines) == 3
    assert sum(ln.startswith("another kind") for ln in lines) == 3
    assert sum(ln.startswith("progress") for ln in lines) == 10  # below WARNING: never held back
