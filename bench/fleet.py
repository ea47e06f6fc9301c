"""Runs that follow each other, and many containers in one run: time to result, and the helper's
peak memory and open files."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from common import BASE, LABEL, BenchError, Watched, cgroup2_mount, cgroup_of, log, quiesce, sh, tried
from methods import WINDOW_S, Tools, spy_argv, time_to_result

GAP_S = 12.0  # the second back-to-back gap: inside a perf helper's close (10 to 25 s after a result)
PERF_MAX = 20  # perf holds ~1,434 files per container: 64 would need ~92,000


def back_to_back(method: str, container: str, tools: Tools) -> dict[str, float]:
    """Time to result of a 2 s window: after quiet, then 0 s after that result, then 12 s after."""
    quiesce(tools.run)
    first, _, _ = time_to_result(method, container, tools)
    at_once, _, end = time_to_result(method, container, tools)
    time.sleep(max(0.0, GAP_S - (time.monotonic() - end)))
    later, _, _ = time_to_result(method, container, tools)
    return {"after quiet, s": first, "0 s after, s": at_once, f"{GAP_S:g} s after, s": later}


def memory_files(pid: int) -> tuple[Path, Path]:
    """(the file with the cgroup's peak memory, its cgroup.procs): v1's memory controller where
    the host has one (this hybrid host), else cgroup2's memory.peak."""
    try:
        directory = Path("/sys/fs/cgroup/memory") / cgroup_of(pid, "memory").lstrip("/")
        return directory / "memory.max_usage_in_bytes", directory / "cgroup.procs"
    except BenchError:
        directory = cgroup2_mount() / cgroup_of(pid).lstrip("/")
        return directory / "memory.peak", directory / "cgroup.procs"


class HelperWatch:
    """The peak memory and open files of the helper that a docker spy names in its debug log,
    polled from the helper's cgroup until the helper is gone (that also waits out its close)."""

    def __init__(self, spy: Watched, interval: float = 0.1) -> None:
        self.memory = 0
        self.fds = 0
        self.error = ""
        self.thread = threading.Thread(target=self._watch, args=(spy, interval), daemon=True)
        self.thread.start()

    def _watch(self, spy: Watched, interval: float) -> None:
        try:
            _, found = spy.wait_for(r"helper created\s.*container=(\S+)", timeout=120)
            pid = self._pid(found.group(1))
            peak, procs = memory_files(pid)
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline:
                try:
                    self.memory = max(self.memory, int(peak.read_text()))
                    pids = procs.read_text().split()
                except OSError:
                    return  # the cgroup went with the helper
                self.fds = max(self.fds, sum(_open_files(p) for p in pids))
                time.sleep(interval)
        except (BenchError, OSError, ValueError) as e:
            self.error = str(e)

    @staticmethod
    def _pid(name: str) -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pid = int(sh("docker", "inspect", "-f", "{{.State.Pid}}", name, check=False) or 0)
            if pid:
                return pid
            time.sleep(0.1)
        raise BenchError(f"the helper {name} never ran")

    def result(self) -> dict[str, float]:
        self.thread.join(180)
        if self.error:
            log(f"the helper's memory and files were not measured: {self.error}")
        return {"helper peak memory, MiB": self.memory / (1 << 20), "helper open files": float(self.fds)}


def _open_files(pid: str) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def watched_window(method: str, targets: list[str], tools: Tools) -> dict[str, float]:
    """One docker spy run with a 2 s window: its time to result, the helper's memory and files."""
    t0 = time.monotonic()
    proc = Watched(spy_argv(tools.run, method, *targets, window=WINDOW_S), group=True, stdout=True)
    helper = HelperWatch(proc)
    proc.finish()
    if proc.proc.returncode:
        said = proc.stderr().strip().splitlines() or ["nothing"]
        raise BenchError(f"docker spy exited {proc.proc.returncode}: {said[-1][:300]}")
    return {"time to result, s": time.monotonic() - t0, **helper.result()}


def many_containers(tools: Tools, sizes: list[int], reps: int,
                    problems: list[str]) -> dict[str, dict[str, list[float]]]:
    """Quiet containers (each wakes every 0.1 s: a container that never runs in the window
    would hide perf's print cost, see plugin/helper/shards.py) picked by one --filter, the set
    growing to each size in turn; per "method|size", each figure's values over the reps."""
    run = tools.run
    group = f"{LABEL}.many={run.id}"
    names: list[str] = []
    results: dict[str, dict[str, list[float]]] = {}
    try:
        for size in sizes:
            log(f"many containers: starting {size - len(names)} more quiet containers")
            while len(names) < size:
                names.append(f"bench-{run.id}-quiet-{len(names)}")
                sh("docker", "run", "-d", "--name", names[-1], *run.label(), "--label", group, BASE,
                   "sh", "-c", "while :; do sleep 0.1; done")
            for rep in range(reps):
                for method in ("spy bpf", "spy perf"):
                    if method == "spy perf" and size > PERF_MAX:
                        continue
                    log(f"rep {rep + 1}/{reps}: {method}, {size} containers")
                    quiesce(run)
                    figures = tried(problems, f"{method}, {size} containers", watched_window, method,
                                    ["--filter", f"label={group}"], tools)
                    for key, value in figures.items():
                        results.setdefault(f"{method}|{size}", {}).setdefault(key, []).append(value)
    finally:
        if names:
            sh("docker", "rm", "-f", *names, check=False)
    return results
