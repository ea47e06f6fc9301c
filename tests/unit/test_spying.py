"""The pipeline's parts that need no engine: what a slow start says, and when."""

from __future__ import annotations

from plugin.spying import SLOW_START_S, WAITING, SlowStart


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_slow_start_says_what_it_waits_for_once_each() -> None:
    clock, said = Clock(), []
    slow = SlowStart(said.append, clock)
    slow.tell()
    slow.now_waiting_for(WAITING["started"])
    assert said == []  # under 2 s: a start as usual says nothing
    clock.now = SLOW_START_S + 0.1
    slow.tell()
    slow.tell()
    assert said == ["waiting for the helper to start counting..."]
    slow.now_waiting_for("another docker spy helper's perf to close its events (about 15 s)")
    assert said[-1] == "waiting for another docker spy helper's perf to close its events (about 15 s)..."
    slow.done.set()
    slow.now_waiting_for("something else")
    assert len(said) == 2  # counting began: nothing more


def test_a_start_waits_first_for_the_engine() -> None:
    clock, said = Clock(), []
    slow = SlowStart(said.append, clock)
    clock.now = 5.0
    slow.tell()
    assert said == ["waiting for the engine to start the helper container..."]
