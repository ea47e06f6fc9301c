"""The helper: find the targets' cgroups, count their syscalls with one perf, print JSON.

Runs inside the helper container (host PID and cgroup namespaces, the host's cgroup mounts,
CAP_SYS_ADMIN). stdout carries JSON lines: with --interval, an `interval` document after each
interval (that interval's counts), and always, last, one `report` or `error` document; stderr
carries JSON lines about progress (`{"event": "counting", ...}`) for the plugin.
With --stop-on-stdin, a line `stop` or the end of stdin (the plugin went away) ends the window
early; the counts so far are reported and marked partial.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

from . import cgroup, perf
from .perfrun import HelperFailure, libc
from .shards import Shards, shard_size

SCHEMA = 2
TRACEFS_CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
MS_RDONLY, MS_REMOUNT, MS_BIND = 1, 32, 4096
PRINT_GRACE_S = 30.0


def emit_status(event: str, **fields: object) -> None:
    sys.stderr.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stderr.flush()


def read_text(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        raise HelperFailure("target", f"{what} is gone ({path} does not exist)") from None
    except OSError as e:
        raise HelperFailure("permission", f"cannot read {path}: {e.strerror}") from None


def _mount_tracefs(where: str) -> bool:
    return libc().mount(b"nodev", where.encode(), b"tracefs", 0, None) == 0


def seal_cgroup_mounts(mounts: list[cgroup.Mount]) -> None:
    """Make every cgroup mount read-only in the helper's mount namespace. A read-only bind
    is not recursive on engines before Docker 25, so the controllers under /sys/fs/cgroup
    came in writable; the helper only reads them. The host's mounts are not touched."""
    for mount in mounts:
        flags = MS_RDONLY | MS_REMOUNT | MS_BIND
        if libc().mount(None, mount.mount_point.encode(), None, flags, None) != 0:
            emit_status("warning", message=f"could not make {mount.mount_point} read-only: "
                                           f"{os.strerror(ctypes.get_errno())}")


def find_tracefs() -> str:
    """A tracefs with the syscall events: bound from the host, or mounted here."""
    for root in TRACEFS_CANDIDATES:
        if os.path.isdir(os.path.join(root, "events", "syscalls")):
            return root
    root = TRACEFS_CANDIDATES[0]
    if os.path.isdir(root) and _mount_tracefs(root):
        if os.path.isdir(os.path.join(root, "events", "syscalls")):
            return root
        raise HelperFailure(
            "tracepoints", "this kernel has no syscall tracepoints (CONFIG_FTRACE_SYSCALLS is off)"
        )
    err = os.strerror(ctypes.get_errno())
    raise HelperFailure(
        "tracefs",
        f"tracefs is not mounted on the host and the helper cannot mount it ({err}); "
        "mount it on the host: mount -t tracefs nodev /sys/kernel/tracing",
    )


def list_events(tracefs: str) -> list[str]:
    return sorted(os.listdir(os.path.join(tracefs, "events", "syscalls")))


def raise_nofile() -> int:
    """Raise the soft open-files limit to the hard one; returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def perf_version() -> str:
    try:
        out = subprocess.run(["perf", "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip().removeprefix("perf version ") or "unknown"


class Stop:
    """Why the window ended early, if it did: the first reason wins."""

    def __init__(self, shards: Shards) -> None:
        self.shards = shards
        self.reason: str | None = None
        self._lock = threading.Lock()

    def __call__(self, reason: str) -> None:
        with self._lock:
            if self.reason is None and not self.shards.finished.is_set():
                self.reason = reason
        self.shards.stop()


def watch_stdin(stop: Stop) -> None:
    for line in sys.stdin.buffer:
        if line.strip() == b"stop":
            break
    stop("interrupted")


class Targets:
    """The targets' PIDs, and when each went away: a target's init exiting is its container
    stopping (or restarting, which makes a new cgroup). Counting goes on while any is left."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.exited: dict[int, float] = {}

    def watch(self, stop: Stop, started: float) -> None:
        while not stop.shards.finished.wait(0.1):
            for pid in self.pids:
                if pid not in self.exited and not os.path.exists(f"/proc/{pid}"):
                    self.exited[pid] = time.monotonic() - started
            if len(self.exited) == len(self.pids):
                stop("target-exited")
                return


def resolve_targets(pids: list[int], mountinfo: str) -> list[cgroup.PerfCgroup]:
    targets = []
    for pid in pids:
        proc_cgroup = read_text(f"/proc/{pid}/cgroup", f"process {pid}")
        try:
            target = cgroup.resolve(proc_cgroup, mountinfo)
        except cgroup.CgroupError as e:
            raise HelperFailure("cgroup", str(e)) from None
        if not os.path.isdir(target.directory):
            raise HelperFailure(
                "cgroup", f"{target.directory} does not exist here (is the host's cgroupfs mounted?)"
            )
        if any(t.name == target.name for t in targets):
            raise HelperFailure("cgroup", f"two targets are in one cgroup ({target.path})")
        targets.append(target)
    return targets


def rows(calls: dict[str, int], errors: dict[str, int]) -> list[dict]:
    """The syscalls that were called or failed, by name; the others are implied zeros."""
    return [{"name": name, "calls": n, "errors": errors.get(name, 0)}
            for name, n in sorted(calls.items()) if n or errors.get(name, 0)]


def write_line(doc: dict) -> None:
    sys.stdout.write(json.dumps(doc, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def count(args: argparse.Namespace) -> tuple[dict, Shards]:
    mountinfo = read_text("/proc/self/mountinfo", "mountinfo")
    seal_cgroup_mounts(cgroup.parse_mountinfo(mountinfo))
    targets = resolve_targets(args.pid, mountinfo)
    tracefs = find_tracefs()
    events = list_events(tracefs)
    counters = perf.plan(events, events)
    size = shard_size(len(counters) * (os.cpu_count() or 1), raise_nofile())
    interval = min(args.interval or args.duration, args.duration)
    shards = Shards(counters, [t.name for t in targets], int(round(interval * 1000)), size)
    # Asked while perf opens its events, not after the window: the report waits on nothing.
    host = {"kernel": platform.release(), "arch": platform.machine(), "cpus": os.cpu_count() or 1,
            "cgroup_version": targets[0].version, "cgroup_layout": targets[0].layout,
            "perf": perf_version()}
    stop = Stop(shards)
    signal.signal(signal.SIGTERM, lambda *_: stop("helper-stopped"))
    started = shards.wait_started()
    started_at = datetime.now(UTC)
    emit_status("counting", counters=len(counters) * len(targets), perf_processes=len(shards.runs),
                cgroups=[t.path for t in targets],
                started_at=started_at.isoformat(timespec="milliseconds"))
    watched = Targets(args.pid)
    threading.Thread(target=watched.watch, args=(stop, started), daemon=True).start()
    if args.stop_on_stdin:
        threading.Thread(target=watch_stdin, args=(stop,), daemon=True).start()
    if interval < args.duration:
        # perf's ticks drift (each waits for the previous print): the window ends on time.
        timer = threading.Timer(args.duration - (time.monotonic() - started), shards.end_window)
        timer.daemon = True
        timer.start()
    calls = [dict.fromkeys(sorted({c.syscall for c in counters}), 0) for _ in targets]
    errors: list[dict[str, int]] = [{} for _ in targets]
    seconds, index = 0.0, 0
    while (tick := shards.tick(interval + PRINT_GRACE_S, args.duration)) is not None:
        index += 1
        seconds = tick.seconds
        for i, c in enumerate(tick.counts):
            for name, n in c.calls.items():
                calls[i][name] = calls[i].get(name, 0) + n
            for name, n in c.errors.items():
                errors[i][name] = errors[i].get(name, 0) + n
        if args.interval:
            write_line({"schema": SCHEMA, "kind": "interval", "index": index, "seconds": seconds,
                        "targets": [{"pid": pid, "syscalls": rows(c.calls, c.errors)}
                                    for pid, c in zip(args.pid, tick.counts, strict=True)]})
        if tick.final:
            break
    shards.read_all()
    return {
        "schema": SCHEMA,
        "kind": "report",
        "partial": stop.reason is not None or seconds < args.duration * 0.999,
        "stopped": stop.reason,
        "window": {
            "requested_seconds": args.duration,
            "measured_seconds": seconds,
            "started_at": started_at.isoformat(timespec="milliseconds"),
        },
        "host": host,
        "tracepoints": sorted(calls[0]),
        "targets": [
            {"pid": pid, "cgroup": t.path, "exited": pid in watched.exited,
             "syscalls": rows(calls[i], errors[i])}
            for i, (pid, t) in enumerate(zip(args.pid, targets, strict=True))
        ],
    }, shards


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="docker-spy-helper")
    parser.add_argument("--pid", type=int, action="append", required=True,
                        help="a target's host PID (once per target)")
    parser.add_argument("--duration", type=float, required=True, help="window in seconds")
    parser.add_argument("--interval", type=float, help="also print the counts every this many seconds")
    parser.add_argument("--stop-on-stdin", action="store_true")
    args = parser.parse_args(argv)
    if any(pid <= 0 for pid in args.pid) or len(set(args.pid)) != len(args.pid):
        parser.error("each --pid must be positive and given once")
    if not 0 < args.duration <= 366 * 86400:
        parser.error("--duration must be between 0 and a year")
    if args.interval is not None and not 0.01 <= args.interval <= args.duration:
        parser.error("--interval must be between 10 ms and the duration")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    shards = None
    try:
        report, shards = count(args)
        status = 0
    except HelperFailure as e:
        # The plugin takes at most 200 printable characters (report.py).
        message = "".join(c if " " <= c <= "~" else "?" for c in str(e))[:200]
        report = {"schema": SCHEMA, "kind": "error", "error": {"code": e.code, "message": message}}
        status = 1
    write_line(report)  # the document is complete: the plugin need not wait for the close
    if shards is not None:
        emit_status("closing")
        shards.finish()  # closing the events is slow; the container goes when perf does
    return status


if __name__ == "__main__":
    sys.exit(main())
