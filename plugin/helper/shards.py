"""The targets split over a few perf processes ("shards"), started together, stopped
together, their ticks merged target by target.

Two things bound how many targets one perf may count:
- Open files. perf holds one file descriptor per event and CPU: (calls + failure counters)
  x CPUs per target, 1,434 on 2 CPUs. A process may hold RLIMIT_NOFILE of them, and an
  engine that cannot raise that limit (it lacks CAP_SYS_RESOURCE; 20,000 here) caps one
  perf at 13 targets.
- The cost of a print. For each line it prints, perf (6.12, util/stat-shadow.c find_stat)
  walks every event it holds, so one print costs lines x events: quadratic in the targets
  of one perf. Measured here on an otherwise idle machine, with targets that ran during the
  window (a target that never ran prints `<not counted>`, which skips the walk), a print
  took 0.07 to 0.08 s per target in shards of 1 to 4, 0.08 in shards of 6, and 2.0 to 19 s
  for a shard of 13, as the walk outgrows the CPU's cache. A print that slow made a 10 s
  window of 20 busy containers miss its deadline. So a perf counts at most MAX_TARGETS
  targets, and the targets are spread evenly over the fewest such perfs.
"""

from __future__ import annotations

import threading
import time

from . import perf
from .engine import Counts, HelperFailure, Tick
from .peers import CLOSING, COUNTING, LINGERING, set_process_name
from .perfrun import LINGER_S, PerfRun

RESERVED_FDS = 1024  # perf's own files, pipes, libraries
MAX_TARGETS = 4  # per perf: a margin below where a print's cost jumped (between 6 and 13, above)


def shard_size(per_target_fds: int, limit: int) -> int:
    """How many targets one perf can count within `limit` open files."""
    size = (limit - RESERVED_FDS) // per_target_fds
    if size < 1:
        raise HelperFailure(
            "limits",
            f"perf needs about {per_target_fds + RESERVED_FDS} open files for one container and "
            f"the helper may open {limit} (raise the engine's nofile limit)",
        )
    return size


def plan(n_targets: int, per_target_fds: int, limit: int) -> list[int]:
    """How many targets each perf counts: the fewest perfs that stay within the open files
    and MAX_TARGETS, their loads as even as can be (they print at the same moment, and the
    slowest print decides when the report comes)."""
    size = min(MAX_TARGETS, shard_size(per_target_fds, limit))
    shards = -(-n_targets // size)
    return [n_targets // shards + (i < n_targets % shards) for i in range(shards)]


def is_tick(stamp: float, last: float, window_s: float) -> bool:
    """perf's ticks come about one window apart. Any other print answers a stop: the SIGINT
    print (stamped when perf caught the signal), or, when the SIGINT did not land in perf's
    wait, its print on the way out (the counts since its last tick, under a stamp that
    means nothing)."""
    return stamp >= last + window_s / 2


def window_end(stamp: float, last: float, zero: float, ended_at: float | None,
               duration_s: float) -> tuple[float, bool]:
    """(the window's end so far, since counting started; whether this print is the last).
    `last` is the last tick's stamp (this one's, if it is a tick), `zero` perf's time 0 on
    the monotonic clock, `ended_at` when a stop or end_window ended the window early."""
    if ended_at is not None and (stamp != last or zero + stamp >= ended_at):
        # The window ended at ended_at; a tick after it is stamped later than that.
        end = ended_at - zero
        return round(min(stamp, end) if stamp == last else end, 9), True
    return stamp, stamp >= duration_s * 0.999


class Shard:
    """One perf process and the targets it counts."""

    def __init__(self, counters: list[perf.Counter], names: list[str], window_ms: int) -> None:
        self.counters = counters
        self.names = names
        self.window_s = window_ms / 1000
        self.run = PerfRun(counters, names, window_ms)
        self.zero = float("inf")  # perf's time 0 on our clock: a print is read after it is made
        self.last = 0.0  # the stamp of perf's last tick
        self.done = False

    def tick(self, timeout_s: float, duration_s: float) -> tuple[list[perf.Counts], float] | None:
        """The next interval's counts and end, or None once perf has nothing more to print."""
        lines = self.run.read_interval(len(self.counters) * len(self.names), timeout_s)
        if not lines:
            self.done = True
            return None
        try:
            counts = perf.parse_interval(lines, self.counters, self.names)
        except perf.PerfOutputError as e:
            raise HelperFailure("perf", str(e)) from None
        stamp = counts[0].seconds
        if is_tick(stamp, self.last, self.window_s):
            self.last = stamp
            self.zero = min(self.zero, time.monotonic() - stamp)
        seconds, self.done = window_end(stamp, self.last, self.zero, self.run.ended_at, duration_s)
        return counts, seconds


class Shards:
    """Every target's perf, started, read, stopped and closed together."""

    def __init__(self, counters: list[perf.Counter], names: list[str], window_ms: int,
                 sizes: list[int]) -> None:
        self.shards: list[Shard] = []
        try:
            start = 0
            for n in sizes:
                self.shards.append(Shard(counters, names[start:start + n], window_ms))
                start += n
        except BaseException:
            self.kill()
            raise
        self.finished = threading.Event()  # the last tick is read: nothing can stop it now

    @property
    def runs(self) -> list[PerfRun]:
        return [s.run for s in self.shards]

    def kill(self) -> None:
        for shard in self.shards:
            if shard.run.proc.poll() is None:
                shard.run.proc.kill()

    def wait_started(self) -> float:
        """Block until every perf counts; returns that moment (monotonic)."""
        try:
            for run in self.runs:
                run.wait_started()
        except BaseException:
            self.kill()
            raise
        set_process_name(COUNTING)  # from the main thread: the process's name is its name
        now = time.monotonic()
        for shard in self.shards:
            shard.zero = now
        return now

    def stop(self) -> None:
        for run in self.runs:
            run.stop()

    def end_window(self) -> None:
        for run in self.runs:
            run.end_window()

    def tick(self, timeout_s: float, duration_s: float) -> Tick | None:
        """The next interval of every target; a shard that has ended adds zeros. None when
        every shard has ended."""
        if all(s.done for s in self.shards):
            return None
        counts: list[Counts] = []
        seconds, printed = 0.0, False
        for shard in self.shards:
            got = None if shard.done else shard.tick(timeout_s, duration_s)
            if got is None:
                counts += [Counts({}, {}) for _ in shard.names]
                continue
            counts += [Counts(c.calls, c.errors) for c in got[0]]
            seconds, printed = max(seconds, got[1]), True
        if not printed:
            return None
        return Tick(counts, seconds, all(s.done for s in self.shards))

    def read_all(self) -> None:
        """The last tick is read: from now on nothing stops the window or is reported."""
        self.finished.set()
        for run in self.runs:
            run.printed.set()

    def finish(self, linger_s: float = LINGER_S) -> None:
        """After the report: keep the events open but disabled until another helper counts or
        linger_s passes (a perf that was stopped is closing already), then let every perf
        close. The process's name says which, for the other helpers (peers.py)."""
        self.read_all()
        for run in self.runs:
            run.drain()
        if not any(run.stopping.is_set() for run in self.runs):
            set_process_name(LINGERING)
            for run in self.runs:
                run.linger()
            deadline = time.monotonic() + linger_s
            while time.monotonic() < deadline and not PerfRun.another_counts() \
                    and all(run.proc.poll() is None for run in self.runs):
                time.sleep(0.05)
        set_process_name(CLOSING)
        threads = [threading.Thread(target=run.close) for run in self.runs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
