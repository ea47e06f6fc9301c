"""When an interrupt is the first (stop, still report) and when a second (quit at once): the
rules of plugin/interrupts.py on a clock the test turns, and signals for real in this process."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from plugin.errors import Terminated
from plugin.interrupts import SAME_S, Interrupts, in_background


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_signal_is_the_first_interrupt(clock: Clock) -> None:
    ints = Interrupts(clock)
    with pytest.raises(KeyboardInterrupt) as first:
        ints.handle(signal.SIGINT)
    assert type(first.value) is KeyboardInterrupt and ints.raised
    with pytest.raises(Terminated):
        Interrupts(clock).handle(signal.SIGTERM)


def test_the_socket_closing_after_a_signal_is_the_same_interrupt_however_late(clock: Clock) -> None:
    ints = Interrupts(clock)
    with pytest.raises(KeyboardInterrupt):
        ints.handle(signal.SIGINT)
    clock.now += 30.0  # timeout(1) signalled the group; the docker CLI closed its socket later
    ints.socket_closed()
    ints.check()  # nothing more to raise


def test_a_second_signal_quits(clock: Clock) -> None:
    ints = Interrupts(clock)
    with pytest.raises(KeyboardInterrupt):
        ints.handle(signal.SIGINT)
    clock.now += 0.1  # even a quick one: the user pressed twice
    with pytest.raises(KeyboardInterrupt):
        ints.handle(signal.SIGINT)


def test_the_terminals_copy_after_the_socket_is_the_same_interrupt(clock: Clock) -> None:
    ints = Interrupts(clock)
    ints.socket_closed()
    with pytest.raises(KeyboardInterrupt):
        ints.check()  # the main thread, woken, takes the socket's interrupt
    clock.now += SAME_S / 2
    ints.handle(signal.SIGINT)  # the same Ctrl-C, reaching the plugin itself: nothing
    clock.now += SAME_S
    with pytest.raises(KeyboardInterrupt):
        ints.handle(signal.SIGINT)  # a new Ctrl-C: quit


def test_the_socket_wakes_the_main_thread(clock: Clock) -> None:
    ints = Interrupts(clock)
    thread = threading.Thread(target=ints.socket_closed)
    thread.start()
    thread.join()
    assert os.read(ints.wakeup_r, 16) == b"!"
    with pytest.raises(KeyboardInterrupt):
        ints.check()
    ints.check()  # raised once only


def test_an_interrupt_waits_for_a_step_that_must_not_be_cut(clock: Clock) -> None:
    ints = Interrupts(clock)
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with ints.deferred():
            ints.handle(signal.SIGINT)  # the engine is creating the helper
            steps.append("created")
    assert steps == ["created"]


def test_real_signals_reach_the_main_thread_and_its_wakeup_pipe() -> None:
    before = signal.getsignal(signal.SIGINT)  # Python's default, or SIG_IGN under mutmut's fork server
    ints = Interrupts()
    restore = ints.install()
    got = threading.Event()
    try:
        # A background thread that blocks the signals, as the plugin's do: a signal sent to the
        # process is the main thread's, which raises it here.
        in_background(got.wait, "test-blocked")
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            signal.sigtimedwait([], 0.5)  # a point where the handler runs
            for _ in range(1000):
                pass
        with pytest.raises(BlockingIOError):
            os.read(ints.wakeup_r, 16)  # what set_wakeup_fd wrote was taken with it
    finally:
        got.set()
        restore()
    assert signal.getsignal(signal.SIGINT) is before


def test_the_signal_behind_a_socket_close_sets_the_kind(clock: Clock) -> None:
    # SIGTERM to the group: the docker CLI closes its socket at once, the plugin's own SIGTERM
    # lands after; one interrupt, and a SIGTERM one (exit 143).
    ints = Interrupts(clock)
    ints.socket_closed()
    clock.now += 0.01
    with pytest.raises(Terminated):
        ints.handle(signal.SIGTERM)
    assert isinstance(ints.first, Terminated)


def test_a_step_that_returns_what_it_read_keeps_its_interrupt_for_later(clock: Clock) -> None:
    ints = Interrupts(clock)

    def read() -> str:
        with ints.deferred(then=False):
            ints.handle(signal.SIGINT)  # lands as the report's line is taken
            return "the report"

    assert read() == "the report"
    with pytest.raises(KeyboardInterrupt):
        ints.check()  # the next place that looks
