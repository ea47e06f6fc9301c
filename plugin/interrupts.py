"""Ctrl-C, SIGTERM and the docker CLI closing its socket: when each one is the first interrupt
(stop counting, still show the report) and when a second (quit at once).

How they reach the plugin (docker/cli cmd/docker/docker.go, tryPluginRun): a terminal's Ctrl-C
goes to the whole foreground process group, the CLI and the plugin. A CLI whose output is not
a terminal also closes the socket it names in DOCKER_CLI_PLUGIN_SOCKET for each signal it gets
(`timeout -s INT`, a supervisor, `kill` of the CLI alone), and kills the plugin at the third.
So one Ctrl-C can arrive twice: a signal and, any time later, the socket's end.

The rules:
- the first interrupt, signal or socket, ends the window;
- the socket's end after a signal is that signal's interrupt, however late it comes;
- a signal after the socket's end is the same interrupt if it follows within SAME_S (the
  terminal's copy of the Ctrl-C that made the CLI close the socket), else a second one;
- any later signal quits at once.

Process-directed signals go to the main thread only (other threads block them), and the main
thread waits on `wakeup` beside whatever it reads, so that an interrupt never waits for data.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .errors import Terminated

SAME_S = 0.5
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def interrupt_for(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


class Interrupts:
    """The interrupts of one run; `handle` is the signal handler, `socket_closed` is called by
    the thread that watches the docker CLI's socket."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.first: KeyboardInterrupt | None = None
        self.first_at = 0.0
        self.by_socket = False
        self.raised = False  # the first has reached the main thread
        self.deferring = 0  # inside deferred(): interrupts wait for its end
        self._lock = threading.Lock()
        self.wakeup_r, self.wakeup_w = os.pipe()
        for fd in (self.wakeup_r, self.wakeup_w):
            os.set_blocking(fd, False)

    def handle(self, signum: int, frame: object = None) -> None:
        """A signal, in the main thread: raise the first interrupt, or a second one."""
        now = self.clock()
        with self._lock:
            if self.first is None:
                self.first, self.first_at = interrupt_for(signum), now
            elif self.raised and not (self.by_socket and now - self.first_at < SAME_S):
                raise interrupt_for(signum)  # a second interrupt: quit at once
            elif self.by_socket:
                # The signal that made the docker CLI close its socket, reaching the plugin
                # itself: the same interrupt, and its kind (SIGTERM exits 143) is the signal's.
                self.first, self.by_socket = interrupt_for(signum), False
            if self.deferring:
                return
        self.check()

    @contextmanager
    def deferred(self, then: bool = True) -> Iterator[None]:
        """A step that must not be cut in two (the engine creating the helper: cut there,
        the container would exist with no one to remove it); its interrupt comes after it,
        or, with then=False, at the next check (a step that returns what it read)."""
        with self._lock:
            self.deferring += 1
        try:
            yield
        finally:
            with self._lock:
                self.deferring -= 1
        if then:
            self.check()

    def socket_closed(self) -> None:
        """The docker CLI closed its socket (any thread): an interrupt, unless one came first."""
        with self._lock:
            if self.first is not None:
                return
            self.first, self.first_at, self.by_socket = KeyboardInterrupt(), self.clock(), True
        self.wake()

    def wake(self) -> None:
        try:
            os.write(self.wakeup_w, b"!")
        except OSError:
            pass  # full: the main thread is awake already

    def check(self) -> None:
        """In the main thread, where it waits: raise the first interrupt once it is there."""
        with self._lock:
            if self.first is None or self.raised or self.deferring:
                return
            self.raised = True
        self.drain()
        raise self.first

    def drain(self) -> None:
        """Empty the wakeup pipe: what woke the main thread is taken."""
        try:
            while os.read(self.wakeup_r, 4096):
                pass
        except BlockingIOError:
            pass

    def install(self) -> Callable[[], None]:
        """Handle SIGINT and SIGTERM, and wake `wakeup_r` on every signal even if another
        thread took it; returns what puts the previous handlers back."""
        previous = {sig: signal.signal(sig, self.handle) for sig in SIGNALS}
        old_fd = signal.set_wakeup_fd(self.wakeup_w, warn_on_full_buffer=False)

        def restore() -> None:
            signal.set_wakeup_fd(old_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return restore


def in_background(target: Callable[[], None], name: str) -> threading.Thread:
    """A daemon thread that blocks SIGINT and SIGTERM, so that the kernel delivers them to the
    main thread, the one that handles them."""
    def run() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        target()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread
