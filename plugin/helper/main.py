"""The helper: find the target's cgroup, count its syscalls with perf, print one JSON document.

Runs inside the helper container (host PID and cgroup namespaces, the host's cgroup mounts,
CAP_SYS_ADMIN). stdout carries exactly one JSON document, a report or an error; stderr
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
from datetime import UTC, datetime

from . import cgroup, perf
from .perfrun import HelperFailure, PerfRun, libc

SCHEMA = 1
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


def raise_nofile(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise HelperFailure(
            "limits",
            f"perf needs about {needed} open files and the container may open {hard} "
            "(raise the engine's nofile limit)",
        )
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return needed


def perf_version() -> str:
    try:
        out = subprocess.run(["perf", "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip().removeprefix("perf version ") or "unknown"


class Stop:
    """Why the window ended early, if it did: the first reason wins."""

    def __init__(self, run: PerfRun) -> None:
        self.run = run
        self.reason: str | None = None
        self._lock = threading.Lock()

    def __call__(self, reason: str) -> None:
        with self._lock:
            if self.reason is None and not self.run.printed.is_set():
                self.reason = reason
        self.run.stop()


def watch_stdin(stop: Stop) -> None:
    for line in sys.stdin.buffer:
        if line.strip() == b"stop":
            break
    stop("interrupted")


def watch_target(pid: int, stop: Stop) -> None:
    # The target's init going away is the container stopping (or restarting, which makes a
    # new cgroup): what was counted until then is the report.
    while not stop.run.printed.wait(0.1):
        if not os.path.exists(f"/proc/{pid}"):
            stop("target-exited")
            return


def count(args: argparse.Namespace) -> tuple[dict, PerfRun]:
    proc_cgroup = read_text(f"/proc/{args.pid}/cgroup", f"process {args.pid}")
    mountinfo = read_text("/proc/self/mountinfo", "mountinfo")
    seal_cgroup_mounts(cgroup.parse_mountinfo(mountinfo))
    try:
        target = cgroup.resolve(proc_cgroup, mountinfo)
    except cgroup.CgroupError as e:
        raise HelperFailure("cgroup", str(e)) from None
    if not os.path.isdir(target.directory):
        raise HelperFailure(
            "cgroup", f"{target.directory} does not exist here (is the host's cgroupfs mounted?)"
        )
    tracefs = find_tracefs()
    events = list_events(tracefs)
    counters = perf.plan(events, events)
    raise_nofile(len(counters) * (os.cpu_count() or 1) + 1024)
    run = PerfRun(counters, target.name, int(args.duration * 1000))
    # Asked while perf opens its events, not after the window: the report waits on nothing.
    host = {"kernel": platform.release(), "arch": platform.machine(), "cpus": os.cpu_count() or 1,
            "cgroup_version": target.version, "cgroup_layout": target.layout,
            "perf": perf_version()}
    stop = Stop(run)
    signal.signal(signal.SIGTERM, lambda *_: stop("helper-stopped"))
    run.wait_started()
    started = datetime.now(UTC)
    emit_status("counting", counters=len(counters), cgroup=target.path,
                started_at=started.isoformat(timespec="milliseconds"))
    threading.Thread(target=watch_target, args=(args.pid, stop), daemon=True).start()
    if args.stop_on_stdin:
        threading.Thread(target=watch_stdin, args=(stop,), daemon=True).start()
    lines = run.read_interval(len(counters), args.duration + PRINT_GRACE_S)
    try:
        counts = perf.parse_interval(lines, counters)
    except perf.PerfOutputError as e:
        raise HelperFailure("perf", str(e)) from None
    report = {
        "schema": SCHEMA,
        "partial": stop.reason is not None or counts.seconds < args.duration * 0.999,
        "stopped": stop.reason,
        "target": {"pid": args.pid, "cgroup": target.path},
        "window": {
            "requested_seconds": args.duration,
            "measured_seconds": counts.seconds,
            "started_at": started.isoformat(timespec="milliseconds"),
        },
        "host": host,
        "syscalls": [
            {"name": name, "calls": calls, "errors": counts.errors.get(name, 0)}
            for name, calls in sorted(counts.calls.items())
        ],
    }
    return report, run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="docker-spy-helper")
    parser.add_argument("--pid", type=int, required=True, help="the target's host PID")
    parser.add_argument("--duration", type=float, required=True, help="window in seconds")
    parser.add_argument("--stop-on-stdin", action="store_true")
    args = parser.parse_args(argv)
    if args.pid <= 0 or not 0 < args.duration <= 366 * 86400:
        parser.error("--pid must be positive and --duration between 0 and a year")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = None
    try:
        report, run = count(args)
        status = 0
    except HelperFailure as e:
        report = {"schema": SCHEMA, "error": {"code": e.code, "message": str(e)}}
        status = 1
    sys.stdout.write(json.dumps(report, separators=(",", ":")) + "\n")
    sys.stdout.flush()  # the document is complete: the plugin need not wait for the close
    if run is not None:
        emit_status("closing")
        run.finish()  # closing the events is slow; the container goes when perf does
    return status


if __name__ == "__main__":
    sys.exit(main())
