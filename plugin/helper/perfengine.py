"""The perf engine: `perf stat` on the syscall tracepoints, per cgroup (perf.py, perfrun.py,
shards.py), behind the engine interface. It counts where the BPF engine cannot: on cgroup v1
hosts, and on kernels that refuse the BPF program.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time

from . import perf
from .engine import Counts, Tick
from .shards import Shards, plan

PRINT_GRACE_S = 30.0


def perf_version() -> str:
    try:
        out = subprocess.run(["perf", "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip().removeprefix("perf version ") or "unknown"


class PerfEngine:
    name = "perf"

    def __init__(self, cgroups: list[str], events: list[str], nofile: int, duration_s: float,
                 interval_s: float) -> None:
        counters = perf.plan(events, events)
        self.syscalls = sorted({c.syscall for c in counters})
        self.duration_s, self.interval_s = duration_s, interval_s
        sizes = plan(len(cgroups), len(counters) * (os.cpu_count() or 1), nofile)
        self.shards = Shards(counters, cgroups, int(round(interval_s * 1000)), sizes)
        self.finished = self.shards.finished
        self.version = f"perf {perf_version()}"  # asked while perf opens its events

    def start(self) -> float:
        started = self.shards.wait_started()
        if self.interval_s < self.duration_s:
            # perf's ticks drift (each waits for the previous print): the window ends on time.
            timer = threading.Timer(self.duration_s - (time.monotonic() - started), self.shards.end_window)
            timer.daemon = True
            timer.start()
        return started

    def tick(self) -> Tick | None:
        tick = self.shards.tick(self.interval_s + PRINT_GRACE_S, self.duration_s)
        if tick is None or tick.final:
            self.shards.read_all()  # the last tick is read: from now on nothing stops the window
        return tick

    def stop(self) -> None:
        self.shards.stop()

    def cost(self) -> dict[str, int] | None:
        return None  # perf cannot tell what its events cost

    def totals(self) -> list[Counts] | None:
        return None  # its ticks add up to the window

    def uncounted(self) -> int:
        return 0

    def process_ids(self) -> list[tuple[int, int]]:
        return []

    def processes(self, whole: bool = True) -> None:
        return None  # perf counts per cgroup, never per process

    def close(self) -> None:
        self.shards.finish()  # closing the events is slow; the container goes when perf does
