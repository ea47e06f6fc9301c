"""The helper: find the targets' cgroups, count their syscalls with an engine, print JSON.

Runs inside the helper container (host PID and cgroup namespaces, the host's cgroup mounts,
CAP_SYS_ADMIN). stdout carries JSON lines: with --interval, an `interval` document after each
interval (that interval's counts), and always, last, one `report` or `error` document; stderr
carries JSON lines about progress (`{"event": "counting", ...}`) for the plugin.
With --stop-on-stdin, a line `stop` or the end of stdin (the plugin went away) ends the window
early; the counts so far are reported and marked partial.
The engine is BPF where it can run (--engine auto), else perf, which says why on stderr
(`{"event": "engine", ...}`); main never asks which engine it holds.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from . import cgroup, fleet, processes
from .engine import Counts, Engine, HelperFailure, Processes, agreeing, merge, settled
from .peers import CLOSING, libc, others_named, wait_while_closing
from .targets import Target, own_v2, perf_cgroups, read_text, v2_cgroups

SCHEMA = 4
ENGINES = ("auto", "bpf", "perf")
TRACEFS_CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
LOOK_EVERY_S = 0.1  # --by-process: how often /proc is read for the processes new to the engine
LOOK_AT_START = 1000  # --by-process: processes of a target looked at before its window
MS_RDONLY, MS_REMOUNT, MS_BIND = 1, 32, 4096


def emit_status(event: str, **fields: object) -> None:
    sys.stderr.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stderr.flush()


def _mount_tracefs(where: str) -> bool:
    return libc().mount(b"nodev", where.encode(), b"tracefs", 0, None) == 0


def seal_cgroup_mounts(mounts: list[cgroup.Mount]) -> None:
    """Make every cgroup mount read-only in the helper's mount namespace. A read-only bind
    is not recursive on engines before Docker 25, so the controllers under /sys/fs/cgroup
    came in writable; the helper only reads them. The host's mounts are not touched. Those
    already read-only are left alone: where AppArmor confines the helper (docker-default
    denies every mount), Docker 25 and later made them so, and there is nothing to warn of."""
    for mount in mounts:
        if mount.read_only:
            continue
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


class Stop:
    """Why the window ended early, if it did: the first reason wins. A stop before the engine
    counts (the plugin interrupted while the helper started) means there is nothing to count."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.reason: str | None = None
        self.requested = threading.Event()
        self._lock = threading.Lock()

    def counting(self, engine: Engine) -> None:
        with self._lock:
            self.engine = engine
        if self.requested.is_set():
            engine.stop()

    def __call__(self, reason: str) -> None:
        with self._lock:
            if self.reason is None and not (self.engine and self.engine.finished.is_set()):
                self.reason = reason
            engine = self.engine
        self.requested.set()
        if engine is not None:
            engine.stop()


def watch_stdin(stop: Stop) -> None:
    for line in sys.stdin.buffer:
        if line.strip() == b"stop":
            break
    stop("interrupted")


class Exits:
    """When each target went away: a target's init exiting (or, named by container id, its
    cgroup emptying) is its container stopping. Counting goes on while any is left."""

    def __init__(self, targets: list[Target], directories: list[str]) -> None:
        self.watched = list(zip(targets, directories, strict=True))
        self.exited: dict[int, float] = {}  # by index

    def watch(self, stop: Stop, engine: Engine, started: float) -> None:
        while not engine.finished.wait(0.1):
            for i, (target, directory) in enumerate(self.watched):
                if i not in self.exited and not target.alive(directory):
                    self.exited[i] = time.monotonic() - started
            if len(self.exited) == len(self.watched):
                stop("target-exited")
                return


Opened = tuple[Engine, list[str], list[str]]  # the engine, and its targets' cgroups and directories


def bpf_engine(args: argparse.Namespace, mountinfo: str, tracefs: str) -> Opened:
    """The BPF engine on these targets, or CgroupError / BpfError saying why it cannot run."""
    from .bpfengine import BpfEngine
    from .systables import for_machine

    found = v2_cgroups(args.targets, mountinfo)
    own = own_v2(mountinfo)
    try:
        arch = for_machine(platform.machine())
    except KeyError:
        raise cgroup.CgroupError(f"no syscall table for {platform.machine()}") from None
    interval = min(args.interval or args.duration, args.duration)
    engine = BpfEngine(found, own, arch, tracefs, args.duration, interval, args.latency,
                       args.by_process)
    return engine, [t.path for t in found], [t.directory for t in found]


class Looker:
    """--by-process: what /proc says of each process the engine keeps, looked at soon after
    it first calls (every LOOK_EVERY_S), so that one that exits within the window keeps its pid
    in its container and its command line. /proc/<pid>/status, cmdline and comm are readable
    without ptrace rights; the target's pid namespace itself is not."""

    def __init__(self, look: Callable[[int], processes.Seen | None] | None = processes.look) -> None:
        self.look = look or (lambda pid: None)
        self.blind = look is None  # a Swarm task's helper: the host's pids are not its to look up
        self.seen: dict[int, processes.Seen] = {}

    def look_present(self, directories: list[str]) -> None:
        """Before the window: every process already in the targets' cgroups (and below), so
        that one that exits early in the window is known too; at most LOOK_AT_START each."""
        for directory in directories:
            for pid in processes.cgroup_pids(directory, LOOK_AT_START):
                if pid not in self.seen and (seen := self.look(pid)) is not None:
                    self.seen[pid] = seen

    def look_new(self, engine: Engine) -> None:
        for _, tgid in engine.process_ids():
            if tgid not in self.seen and (seen := self.look(tgid)) is not None:
                self.seen[tgid] = seen

    def watch(self, engine: Engine) -> None:
        while not engine.finished.wait(LOOK_EVERY_S):
            self.look_new(engine)

    def at_end(self, host_pid: int) -> tuple[processes.Seen | None, bool | None]:
        """The process as last seen, and whether it still runs (None: cannot tell)."""
        if self.blind:
            return None, None
        now = self.look(host_pid)
        return (now, True) if now is not None else (self.seen.get(host_pid), False)


def ns_level(target: Target) -> int:
    """How deep the target's pid namespace is (0: the host's), from its init's NSpid."""
    if target.pid is None:
        return -1
    try:
        with open(f"/proc/{target.pid}/status", encoding="utf-8", errors="replace") as f:
            return len(processes.nspids(f.read())) - 1
    except OSError:
        return -1


def perf_engine(args: argparse.Namespace, mountinfo: str, tracefs: str) -> Opened:
    from .perfengine import PerfEngine

    found = perf_cgroups(args.targets, mountinfo)
    # Fewer syscalls asked for, fewer events: what perf costs the target is per event.
    events = [e for e in list_events(tracefs) if wanted(e.split("_", 2)[-1], args.syscalls)]
    interval = min(args.interval or args.duration, args.duration)
    engine = PerfEngine([t.name for t in found], events, raise_nofile(), args.duration, interval)
    return engine, [t.path for t in found], [t.directory for t in found]


def wait_for_closing_perf(stop: Stop) -> None:
    """Opening tracepoint events while another helper's perf closes its own fails (peers.py):
    wait for it, saying so."""
    wait_while_closing(lambda: emit_status(
        "waiting", what="another docker spy helper's perf to close its events (about 15 s)"),
        stopped=stop.requested.is_set)
    not_before_counting(stop)


def open_engine(args: argparse.Namespace, mountinfo: str, tracefs: str, stop: Stop) -> Opened:
    """BPF where it can run (auto), else perf with one warning saying why; an engine asked
    for by name runs or fails. BPF attaches to three tracepoints only, and waits for a closing
    perf only if attaching fails while one closes; perf opens ~700, and always waits."""
    if args.engine in ("auto", "bpf"):
        from .libbpf import BpfError

        for attempt in range(2):
            try:
                return bpf_engine(args, mountinfo, tracefs)
            except (BpfError, cgroup.CgroupError, OSError) as e:
                if attempt == 0 and isinstance(e, BpfError) and others_named(CLOSING):
                    wait_for_closing_perf(stop)
                    continue
                why = str(e) if not isinstance(e, OSError) else f"{e.strerror}: {e.filename}"
                if args.by_process:
                    raise HelperFailure("bpf", f"--by-process needs the BPF engine, which cannot "
                                               f"count here: {why}") from None
                if args.engine == "bpf":
                    raise HelperFailure("bpf", f"the BPF engine cannot count here: {why}") from None
                emit_status("engine", engine="perf", reason=why[:200])
                break
    wait_for_closing_perf(stop)
    return perf_engine(args, mountinfo, tracefs)


def wanted(name: str, only: frozenset[str] | None) -> bool:
    """Whether a syscall is counted: with --syscalls, the names asked for (a call through the
    32-bit entry points as its name's); else all."""
    return only is None or name.removeprefix("compat_") in only


def selected(c: Counts, only: frozenset[str] | None) -> Counts:
    """A target's counts of the syscalls asked for. The BPF engine sees every call in the
    kernel whatever is asked; what is not asked for is left out here."""
    if only is None:
        return c

    def keep(d: dict) -> dict:
        return {name: v for name, v in d.items() if wanted(name, only)}

    return Counts(keep(c.calls), keep(c.errors), keep(c.errnos), keep(c.time_ns), keep(c.max_ns))


def counted_names(engine: Engine, only: frozenset[str] | None) -> list[str]:
    """The names the report may hold (its --all rows): the engine's, or those asked for that
    it has; none of them here is a failure."""
    names = [n for n in engine.syscalls if wanted(n, only)]
    if not names:
        asked = ", ".join(sorted(only or ()))[:120]
        raise HelperFailure("syscall", f"no syscall asked for is one of this host's "
                                       f"({platform.machine()}): {asked}")
    return names


def rows(c: Counts) -> list[dict]:
    """The syscalls that were called or failed, by name; the others are implied zeros. With
    the BPF engine a failure's errno is counted, and with latency the time spent."""
    out = []
    for name in sorted(set(c.calls) | set(c.errors)):
        calls, errors = c.calls.get(name, 0), c.errors.get(name, 0)
        if not (calls or errors):
            continue
        row: dict = {"name": name, "calls": calls, "errors": errors}
        if name in c.errnos:
            row["errnos"] = dict(sorted(c.errnos[name].items()))
        if name in c.time_ns:
            row["time_ns"], row["max_ns"] = c.time_ns[name], c.max_ns.get(name, 0)
        out.append(row)
    return out


def write_line(doc: dict) -> None:
    write_line_text(json.dumps(doc, separators=(",", ":")))


def write_line_text(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def count(args: argparse.Namespace) -> tuple[dict, Engine]:
    stop = Stop()
    signal.signal(signal.SIGTERM, lambda *_: stop("helper-stopped"))
    if args.stop_on_stdin:  # from the start: the plugin may go away before counting does
        threading.Thread(target=watch_stdin, args=(stop,), daemon=True).start()
    mountinfo = cgroup.host_view(read_text("/proc/self/mountinfo", "mountinfo"), os.path.exists)
    mounts = cgroup.parse_mountinfo(mountinfo)
    seal_cgroup_mounts(mounts)
    tracefs = find_tracefs()
    engine, paths, directories = open_engine(args, mountinfo, tracefs, stop)
    try:
        counted_names(engine, args.syscalls)
        return window(args, engine, paths, directories, mounts, stop), engine
    except BaseException:
        engine.close()
        raise


def not_before_counting(stop: Stop) -> None:
    if stop.requested.is_set():
        raise HelperFailure("interrupted", "interrupted before counting started")


def window(args: argparse.Namespace, engine: Engine, paths: list[str], directories: list[str],
           mounts: list[cgroup.Mount], stop: Stop) -> dict:
    host = {"kernel": platform.release(), "arch": platform.machine(), "cpus": os.cpu_count() or 1,
            "cgroup_version": 2 if engine.name == "bpf" or cgroup.perf_mount(mounts).fstype == "cgroup2"
            else 1, "cgroup_layout": cgroup.layout(mounts)}
    not_before_counting(stop)
    levels = [ns_level(t) for t in args.targets] if args.by_process else []
    live = LiveProcesses(len(args.targets))
    # A Swarm task's helper has a pid namespace of its own: /proc/<host pid> is not the process.
    looker = Looker(None if args.fleet is not None else processes.look)
    if args.by_process and args.fleet is None:
        looker.look_present(directories)
    started = engine.start()
    started_at = datetime.now(UTC)
    stop.counting(engine)
    if args.by_process and args.fleet is None:
        threading.Thread(target=looker.watch, args=(engine,), daemon=True).start()
    emit_status("counting", engine=engine.name, cgroups=paths,
                started_at=started_at.isoformat(timespec="milliseconds"))
    exits = Exits(args.targets, directories)
    threading.Thread(target=exits.watch, args=(stop, engine, started), daemon=True).start()
    totals = [Counts({}, {}) for _ in args.targets]
    seconds, index = 0.0, 0
    while (tick := engine.tick()) is not None:
        index += 1
        seconds = tick.seconds
        counts = [selected(c, args.syscalls) for c in tick.counts]
        totals = [merge(t, c) for t, c in zip(totals, counts, strict=True)]
        if args.fleet is not None and not tick.final:
            # No attach stream to a Swarm task: the report so far, through the task's log.
            args.fleet.emit(so_far(args, engine, paths, totals, levels, looker, exits, stop, host,
                                   seconds, started_at), final=False)
        elif args.interval:
            entries = [{**t.ident(), "syscalls": rows(agreeing(c))}
                       for t, c in zip(args.targets, counts, strict=True)]
            if args.by_process:
                live.add(entries, engine, args.syscalls, levels, looker)
            write_line({"schema": SCHEMA, "kind": "interval", "index": index, "seconds": seconds,
                        "targets": entries})
        if tick.final:
            break
    whole = engine.totals()
    if whole is not None:
        totals = [selected(c, args.syscalls) for c in whole]
    doc = report(args, engine, paths, totals, exits, stop, host, seconds, started_at)
    if args.by_process:
        found = engine.processes() or []
        for entry, total, level, procs in zip(doc["targets"], totals, levels, found, strict=True):
            entry.update(by_process(total, procs, args.syscalls, level, looker.at_end))
    return doc


class LiveProcesses:
    """--by-process --interval: each interval's processes, what each did since the last one
    (read a moment after the targets' counts: the live view shows them, the report is exact)."""

    def __init__(self, targets: int) -> None:
        self.before: list[list[processes.Process]] = [[] for _ in range(targets)]

    def add(self, entries: list[dict], engine: Engine, only: frozenset[str] | None,
            levels: list[int], looker: Looker) -> None:
        for i, (entry, found, level) in enumerate(zip(entries, engine.processes(whole=False) or [], levels,
                                                      strict=True)):
            listed = []
            for p, did in processes.since(found.kept, self.before[i]):
                did = agreeing(selected(did, only))
                if did.calls or did.errors:
                    seen = looker.seen.get(p.host_pid)
                    listed.append({"pid": processes.in_target(seen, level), "host_pid": p.host_pid,
                                   "comm": processes.printable(p.comm, processes.COMM_CHARS),
                                   "syscalls": rows(did)})
            listed.sort(key=lambda e: (-sum(r["calls"] for r in e["syscalls"]), e["host_pid"]))
            entry["processes"] = listed[:processes.MAX_PROCESSES]
            entry["processes_not_kept"] = found.folded
            self.before[i] = found.kept


def so_far(args: argparse.Namespace, engine: Engine, paths: list[str], totals: list[Counts],
           levels: list[int], looker: Looker, exits: Exits, stop: Stop, host: dict, seconds: float,
           started_at: datetime) -> dict:
    """A Swarm task's report so far, read while counting goes on: each target's counts made to
    agree with themselves, and with its processes', read a moment later (a target's count is at
    least what its processes add up to)."""
    now = [settled(t) for t in totals]
    found = engine.processes(whole=False) if args.by_process else None
    if found is not None:
        found = [Processes([replace(p, counts=settled(p.counts)) for p in procs.kept], procs.folded,
                           procs.more) for procs in found]
        now = [processes.covering(t, [selected(p.counts, args.syscalls) for p in procs.kept])
               for t, procs in zip(now, found, strict=True)]
    doc = report(args, engine, paths, now, exits, stop, host, seconds, started_at)
    for entry, total, level, procs in zip(doc["targets"], now, levels, found or [], strict=False):
        entry.update(by_process(total, procs, args.syscalls, level, looker.at_end))
    return doc


def by_process(total: Counts, found: Processes, only: frozenset[str] | None, level: int,
               at_end: Callable[[int], tuple[processes.Seen | None, bool | None]]) -> dict:
    """A target's `processes` and `other_processes`: each kept process with its rows (those
    asked for), most calls first, named as /proc showed it last (the kernel's name where /proc
    never saw it, or saw it before an execve); the rest of the target's counts, and how many
    processes they are. Where /proc cannot tell whether a process still runs (a Swarm task's
    helper: `at_end` says None), it exited if the kernel saw it call exit_group."""
    kept = []
    for p in found.kept:
        counts = selected(p.counts, only)
        if not (counts.calls or counts.errors):
            continue
        seen, running = at_end(p.host_pid)
        named = seen is not None and (running or seen.comm == p.comm)
        entry = {"pid": processes.in_target(seen, level), "host_pid": p.host_pid,
                 "comm": processes.printable(seen.comm if seen and running else p.comm,
                                             processes.COMM_CHARS),
                 "cmdline": seen.cmdline if seen and named else None,
                 "exited": p.exited or running is False,
                 "total": processes.total(counts), "syscalls": rows(counts)}
        if p.lost:
            entry["lost"] = p.lost
        kept.append((counts, entry))
    kept.sort(key=lambda ce: (-ce[1]["total"]["calls"], -ce[1]["total"]["errors"], ce[1]["host_pid"]))
    # CPUs admitting processes at once may keep a few more than the bound: they join the rest.
    folded = found.folded + max(0, len(kept) - processes.MAX_PROCESSES)
    kept = kept[:processes.MAX_PROCESSES]
    rest = processes.minus(total, processes.summed_counts([c for c, _ in kept]))
    other = None
    if folded or rest.calls or rest.errors:
        other = {"processes": folded, "more": found.more, "total": processes.total(rest),
                 "syscalls": rows(rest)}
    return {"processes": [e for _, e in kept], "other_processes": other}


def report(args: argparse.Namespace, engine: Engine, paths: list[str], totals: list[Counts],
           exits: Exits, stop: Stop, host: dict, seconds: float, started_at: datetime) -> dict:
    doc = {
        "schema": SCHEMA,
        "kind": "report",
        "engine": engine.name,
        "partial": stop.reason is not None or seconds < args.duration * 0.999,
        "stopped": stop.reason,
        "window": {
            "requested_seconds": args.duration,
            "measured_seconds": seconds,
            "started_at": started_at.isoformat(timespec="milliseconds"),
        },
        "host": {**host, "engine_version": engine.version},
        "latency": bool(args.latency and engine.name == "bpf"),
        "syscalls_counted": counted_names(engine, args.syscalls),
        "only": None if args.syscalls is None else sorted(args.syscalls),
        "by_process": bool(args.by_process),
        "targets": [
            {**target.ident(), "cgroup": path, "exited": i in exits.exited, "syscalls": rows(t)}
            for i, (target, path, t) in enumerate(zip(args.targets, paths, totals, strict=True))
        ],
    }
    if args.fleet is not None:
        doc["node"] = args.fleet.node
    cost = engine.cost()
    if cost is not None:
        doc["cost"] = cost
    if engine.uncounted():
        doc["uncounted"] = engine.uncounted()
    return doc


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="docker-spy-helper")
    parser.add_argument("--pid", type=int, action="append", default=[],
                        help="a target's host PID (once per target)")
    parser.add_argument("--fleet", metavar="JSON",
                        help='as a Swarm job\'s task: {"<node id>": ["<container id>", ...]}; this '
                             "node's id is in $SPY_NODE; documents go out as log lines")
    parser.add_argument("--duration", type=float, required=True, help="window in seconds")
    parser.add_argument("--interval", type=float, help="also print the counts every this many seconds")
    parser.add_argument("--engine", choices=ENGINES, default="auto",
                        help="bpf, perf, or auto: bpf where it can run, else perf")
    parser.add_argument("--latency", action="store_true", help="also the time spent in each syscall (bpf)")
    parser.add_argument("--syscalls", metavar="NAME,...",
                        help="count only these syscalls (a call through the 32-bit entry points "
                             "as its name's)")
    parser.add_argument("--by-process", action="store_true",
                        help="also count each process of the targets apart (bpf)")
    parser.add_argument("--stop-on-stdin", action="store_true")
    args = parser.parse_args(argv)
    if args.syscalls is not None:
        names = frozenset(args.syscalls.split(","))
        if not names or not all(n and n.replace("_", "").isalnum() and n.isascii() for n in names):
            parser.error("--syscalls takes syscall names, comma-separated")
        args.syscalls = names
    if bool(args.pid) == bool(args.fleet):
        parser.error("give --pid (once per target) or --fleet")
    if any(pid <= 0 for pid in args.pid) or len(set(args.pid)) != len(args.pid):
        parser.error("each --pid must be positive and given once")
    args.targets = [Target(pid=pid) for pid in args.pid]
    if args.fleet is not None:
        node = os.environ.get("SPY_NODE", "")
        try:
            args.targets = [Target(container=cid) for cid in fleet.targets_of_node(args.fleet, node)]
        except ValueError as e:
            parser.error(str(e))
        args.fleet = fleet.Output(node, write_line_text)
    if not 0 < args.duration <= 366 * 86400:
        parser.error("--duration must be between 0 and a year")
    if args.interval is not None and not 0.01 <= args.interval <= args.duration:
        parser.error("--interval must be between 10 ms and the duration")
    if args.by_process and args.engine == "perf":
        parser.error("--by-process needs the BPF engine")
    return args


def main(argv: list[str] | None = None) -> int:
    from .libbpf import BpfError

    args = parse_args(argv)
    engine = None
    try:
        try:
            report, engine = count(args)
        except BpfError as e:  # the BPF engine failed after it was chosen: say so, not a traceback
            raise HelperFailure("bpf", f"the BPF engine failed: {e}") from None
        status = 0
    except HelperFailure as e:
        # The plugin takes at most 200 printable characters (report.py).
        message = "".join(c if " " <= c <= "~" else "?" for c in str(e))[:200]
        report = {"schema": SCHEMA, "kind": "error", "error": {"code": e.code, "message": message}}
        status = 1
    if args.fleet is not None:
        args.fleet.emit(report)
    else:
        write_line(report)  # the document is complete: the plugin need not wait for the close
    if engine is not None:
        emit_status("closing")
        engine.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
