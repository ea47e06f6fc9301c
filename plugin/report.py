"""The data: frozen dataclasses and the versioned JSON contract between helper and plugin.

The helper's documents are untrusted input: each is size-checked, parsed and validated field
by field before anything is built from it. A document that fails is a ContractError.
Schema 3: one helper counts several targets with one engine (bpf or perf); it prints
`interval` documents (with --interval) and then one `report` or `error` document, one JSON
document per line. The BPF engine adds each failure's errno, with --latency the time spent in
each syscall, and what its programs cost the kernel.
Schema 4: a report says which syscalls were asked for (`only`, with --syscall; null: all),
and with --by-process (`by_process`) each target's processes and the rest (`other_processes`),
which add up to the target syscall by syscall.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ContractError, HelperError, SpyError

SCHEMA = 4
MAX_DOCUMENT_BYTES = 4 << 20  # 64 targets x 360 syscalls x ~60 bytes fit with room to spare
MAX_SYSCALLS = 2048
MAX_TARGETS = 64
MAX_COUNT = (1 << 64) - 1
MAX_WINDOW_SECONDS = 400 * 86400
MIN_RATE_SECONDS = 0.1
SYSCALL_NAME = re.compile(r"^[a-z0-9_]{1,64}\Z")
# Names the BPF engine gives what no table of the tracepoints names: a call through the 32-bit
# entry points (compat_read), a number newer than its tables (syscall_472).
UNTABLED_NAME = re.compile(r"^compat_[a-z0-9_]{1,57}\Z|^(compat_)?syscall_[0-9]{1,10}\Z")
ERRNO_NAME = re.compile(r"^E[A-Z0-9_]{1,31}\Z")
MAX_ERRNOS = 4096
PRINTABLE = re.compile(r"^[\x20-\x7e]{0,200}\Z")
MAX_PROCESSES = 100  # a target's processes listed with --by-process (helper/processes.py)
MAX_PID = (1 << 22)  # the kernel's PID_MAX_LIMIT
COMM_CHARS = 16
STOP_REASONS = ("interrupted", "target-exited", "helper-stopped")
ENGINES = ("bpf", "perf")


@dataclass(frozen=True)
class SyscallCount:
    name: str
    calls: int
    errors: int
    errnos: tuple[tuple[str, int], ...] | None = None  # (errno, failures), most first; BPF only
    time_ns: int | None = None  # time spent in the calls; with --latency (BPF) only
    max_ns: int | None = None  # the longest call

    def top_errno(self) -> tuple[str, int] | None:
        return self.errnos[0] if self.errnos else None


def errno_order(errnos: dict[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(((e, n) for e, n in errnos.items() if n), key=lambda en: (-en[1], en[0])))


@dataclass(frozen=True)
class Window:
    requested_seconds: float | None  # None: counted until Ctrl-C
    measured_seconds: float
    started_at: str


@dataclass(frozen=True)
class Host:
    kernel: str
    arch: str
    cpus: int
    cgroup_version: int
    cgroup_layout: str
    engine_version: str  # "libbpf 1.5", "perf 6.12.117"


@dataclass(frozen=True)
class Cost:
    """What the BPF programs cost the kernel over the window (BPF_ENABLE_STATS, held for
    sampled_seconds of the window and scaled to all of it)."""

    runs: int
    run_time_ns: int
    sampled_seconds: float | None = None

    def share(self, seconds: float, cpus: int) -> float:
        """Of all the host's CPU time over the window."""
        return self.run_time_ns / (seconds * 1e9 * cpus) if seconds > 0 and cpus > 0 else 0.0


@dataclass(frozen=True)
class TargetInfo:
    id: str  # the container's id
    name: str  # the container's name, or a Swarm task's (web.1)
    pid: int  # its host PID; 0 for a Swarm task (its helper knows it by its id)
    cgroup: str = ""
    node: str = ""  # a Swarm task's node


class _Totals:
    """The sums of a `syscalls` tuple."""

    syscalls: tuple[SyscallCount, ...]

    @property
    def total_calls(self) -> int:
        return sum(s.calls for s in self.syscalls)

    @property
    def total_errors(self) -> int:
        return sum(s.errors for s in self.syscalls)


@dataclass(frozen=True)
class ProcessCounts(_Totals):
    """One process of a target (--by-process): its calls, failures and errnos."""

    pid: int | None  # as the container sees it; None: it exited before the helper saw it
    host_pid: int
    comm: str
    cmdline: str | None  # shortened; None where it was never seen running
    exited: bool  # it exited within the window
    syscalls: tuple[SyscallCount, ...]  # those it called, most first
    lost: int = 0  # calls the kernel had no room to keep for it (they are in the rest)


@dataclass(frozen=True)
class OtherProcesses(_Totals):
    """A target's counts less its processes': the processes beyond MAX_PROCESSES."""

    processes: int  # how many processes that is
    more: bool  # at least that many: too many to tell apart
    syscalls: tuple[SyscallCount, ...]


@dataclass(frozen=True)
class TargetCounts(_Totals):
    target: TargetInfo
    syscalls: tuple[SyscallCount, ...]  # sorted by calls, most first; zero rows included
    exited: bool = False  # the container stopped during the window
    window: Window | None = None  # its own, when its helper's differs (a Swarm node's)
    processes: tuple[ProcessCounts, ...] | None = None  # --by-process: most calls first
    other_processes: OtherProcesses | None = None  # --by-process: the rest, if any


@dataclass(frozen=True)
class Report(_Totals):
    targets: tuple[TargetCounts, ...]
    window: Window
    host: Host
    syscalls: tuple[SyscallCount, ...]  # the targets' counts summed, sorted like theirs
    partial: bool
    stopped: str | None = None  # why the window ended early: one of STOP_REASONS
    engine: str = "perf"  # which engine counted: one of ENGINES
    latency: bool = False  # time_ns and max_ns were measured
    cost: Cost | None = None
    uncounted: int = 0  # calls the engine saw but had no room to count
    missing: tuple[tuple[str, str], ...] = ()  # Swarm nodes that gave no report: (node, why)
    only: tuple[str, ...] | None = None  # --syscall: the syscalls asked for (None: all)
    by_process: bool = False  # each target's processes are counted apart

    def rate(self, per_target: Sequence[int]) -> float | None:
        """Calls per second of calls made by each target (in the targets' order): over the
        window, or, where targets were counted in windows of their own, the sum of their
        rates. None where no window is long enough for a rate."""
        windows = [t.window.measured_seconds if t.window else self.window.measured_seconds
                   for t in self.targets]
        if not any(has_rates(w) for w in windows):
            return None
        if all(t.window is None for t in self.targets):
            return sum(per_target) / self.window.measured_seconds
        return sum(n / w for n, w in zip(per_target, windows, strict=True) if has_rates(w))


@dataclass(frozen=True)
class Interval:
    """One interval of a live run: its end (seconds since counting started) and each
    target's counts during it (only the syscalls that were called or failed)."""

    index: int
    seconds: float
    targets: tuple[tuple[SyscallCount, ...], ...]
    # --by-process: per target, what each process did in the interval (pid, host_pid, comm and
    # rows; cmdline and exited only in the report), and how many processes were not kept so far
    processes: tuple[tuple[ProcessCounts, ...], ...] | None = None
    not_kept: tuple[int, ...] = ()


def by_calls(rows: Iterable[SyscallCount]) -> tuple[SyscallCount, ...]:
    return tuple(sorted(rows, key=lambda s: (-s.calls, -s.errors, s.name)))


def summed(per_target: Sequence[Iterable[SyscallCount]]) -> tuple[SyscallCount, ...]:
    """Rows of the same syscall added up: calls, errors, errnos and time; the longest call."""
    merged: dict[str, SyscallCount] = {}
    for rows in per_target:
        for s in rows:
            m = merged.get(s.name)
            merged[s.name] = s if m is None else _add(m, s)
    return by_calls(merged.values())


def _add(a: SyscallCount, b: SyscallCount) -> SyscallCount:
    errnos = None
    if a.errnos is not None or b.errnos is not None:
        both: dict[str, int] = dict(a.errnos or ())
        for e, n in b.errnos or ():
            both[e] = both.get(e, 0) + n
        errnos = errno_order(both)
    time_ns = None if a.time_ns is None and b.time_ns is None else (a.time_ns or 0) + (b.time_ns or 0)
    max_ns = None if a.max_ns is None and b.max_ns is None else max(a.max_ns or 0, b.max_ns or 0)
    return SyscallCount(a.name, a.calls + b.calls, a.errors + b.errors, errnos, time_ns, max_ns)


def _bad(what: str) -> ContractError:
    return ContractError(f"the helper's report is invalid: {what}",
                         "is --helper-image a docker spy helper of this version?")


@dataclass(frozen=True)
class Checker:
    """Field-by-field checks of an untrusted JSON document (the helper's, or a report a user
    hands to docker spy diff); `fail` turns what is wrong into the caller's error. `where`
    names the object a key is read from, as a prefix: "window." or "" for the top."""

    fail: Callable[[str], SpyError]

    def get(self, obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
        if not isinstance(obj, dict) or key not in obj:
            raise self.fail(f"{where}{key} is missing")
        value = obj[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python: a count or a pid must not be true, a flag must not be 1.
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kind):
            raise self.fail(f"{where}{key} has the wrong type")
        return value

    def text(self, obj: Any, key: str, where: str) -> str:
        value = self.get(obj, key, str, where)
        if not PRINTABLE.match(value):
            raise self.fail(f"{where}{key} is not short printable text")
        return value

    def integer(self, obj: Any, key: str, where: str, low: int = 0, high: int = MAX_COUNT) -> int:
        value = self.get(obj, key, int, where)
        if not low <= value <= high:
            raise self.fail(f"{where}{key} is out of range")
        return value

    def seconds(self, obj: Any, key: str, where: str, low: float = 0.0) -> float:
        value = self.get(obj, key, (int, float), where)
        # Compared before float(): a 400-digit integer is valid JSON and too large for a float.
        if not low <= value <= MAX_WINDOW_SECONDS:  # NaN and 1e999 (inf) fail this too
            raise self.fail(f"{where}{key} is out of range")
        return float(value)


CHECK = Checker(_bad)


def decode(raw: bytes) -> dict[str, Any]:
    """One of the helper's documents as a dict, its kind checked; an error document becomes
    a HelperError."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise _bad(f"it is larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _bad("it is not JSON") from None
    if not isinstance(doc, dict):
        raise _bad("it is not a JSON object")
    if doc.get("schema") != SCHEMA:
        raise _bad(f"schema {doc.get('schema')!r}, this plugin reads schema {SCHEMA}")
    kind = doc.get("kind")
    if kind == "error":
        error = CHECK.get(doc, "error", dict, "report.")
        code, message = CHECK.text(error, "code", "error."), CHECK.text(error, "message", "error.")
        raise HelperError(f"the helper failed ({code}): {message}")
    if kind not in ("report", "interval"):
        raise _bad("kind is not report, interval or error")
    return doc


def _rows(obj: Any, key: str, where: str, known: frozenset[str] | None = None,
          latency: bool = False) -> list[SyscallCount]:
    rows = CHECK.get(obj, key, list, f"{where}.")
    if len(rows) > MAX_SYSCALLS:
        raise _bad(f"{where} lists too many syscalls")
    out = []
    for i, row in enumerate(rows):
        name = CHECK.get(row, "name", str, f"{where}.{key}[{i}].")
        if not SYSCALL_NAME.match(name) or (known is not None and name not in known
                                            and not UNTABLED_NAME.match(name)):
            raise _bad(f"{where}.{key}[{i}].name is not a syscall that was counted")
        calls, errors = CHECK.integer(row, "calls", f"{name}."), CHECK.integer(row, "errors", f"{name}.")
        out.append(SyscallCount(name, calls, errors, _errnos(row, name, errors),
                                *_times(row, name, latency)))
    if len({s.name for s in out}) != len(out):
        raise _bad(f"{where} lists a syscall twice")
    return out


def _errnos(row: Any, name: str, errors: int) -> tuple[tuple[str, int], ...] | None:
    """A row's failures by errno, which must add up to its errors."""
    if not isinstance(row, dict) or "errnos" not in row:
        return None
    errnos = CHECK.get(row, "errnos", dict, f"{name}.")
    if len(errnos) > MAX_ERRNOS or not all(isinstance(e, str) and ERRNO_NAME.match(e) for e in errnos):
        raise _bad(f"{name}.errnos is not a map of errno names")
    counts = {e: CHECK.integer(errnos, e, f"{name}.errnos.") for e in errnos}
    if sum(counts.values()) != errors:
        raise _bad(f"{name}.errnos do not add up to its errors")
    return errno_order(counts)


def _times(row: Any, name: str, latency: bool) -> tuple[int | None, int | None]:
    if not isinstance(row, dict) or "time_ns" not in row:
        return None, None
    if not latency:
        raise _bad(f"{name} has times, but latency was not measured")
    spent, longest = CHECK.integer(row, "time_ns", f"{name}."), CHECK.integer(row, "max_ns", f"{name}.")
    if longest > spent:
        raise _bad(f"{name}.max_ns is longer than its time_ns")
    return spent, longest


def _targets(doc: dict[str, Any], pids: Sequence[int | str]) -> list[Any]:
    """The document's targets, checked to be those asked for: by host PID, or, for a Swarm
    task's helper, by container id."""
    targets = CHECK.get(doc, "targets", list, "report.")
    if len(targets) != len(pids) or len(targets) > MAX_TARGETS:
        raise _bad("it is not about the containers asked for")
    for i, (entry, pid) in enumerate(zip(targets, pids, strict=True)):
        if isinstance(pid, str):
            if CHECK.text(entry, "container", f"targets[{i}].") != pid:
                raise _bad("it is about another container")
        elif CHECK.integer(entry, "pid", f"targets[{i}].") != pid:
            raise _bad("it is about another process")
    return targets


def interval_from_helper(raw: bytes, *, pids: Sequence[int], previous: float,
                         latency: bool = False, by_process: bool = False) -> Interval:
    """An `interval` document, checked to be about these PIDs and to come after `previous`;
    its rows carry errnos (BPF) and, with `latency`, times, as a report's do."""
    doc = decode(raw)
    if doc["kind"] != "interval":
        raise _bad("an interval was expected")
    seconds = CHECK.seconds(doc, "seconds", "interval.")
    if seconds < previous:
        raise _bad("its intervals go back in time")
    targets = _targets(doc, pids)
    return Interval(
        index=CHECK.integer(doc, "index", "interval."),
        seconds=seconds,
        targets=tuple(tuple(_rows(t, "syscalls", f"targets[{i}]", latency=latency))
                      for i, t in enumerate(targets)),
        processes=tuple(_live_processes(t, f"targets[{i}]") for i, t in enumerate(targets))
        if by_process else None,
        not_kept=tuple(CHECK.integer(t, "processes_not_kept", f"targets[{i}].")
                       for i, t in enumerate(targets)) if by_process else (),
    )


def _live_processes(entry: Any, where: str) -> tuple[ProcessCounts, ...]:
    """An interval's processes: their rows of the interval (the live view adds them up; the
    report's processes are the ones checked to add up to their target)."""
    return _process_list(entry, where, None, whole=False)


def _process_list(entry: Any, where: str, names: frozenset[str] | None,
                  whole: bool) -> tuple[ProcessCounts, ...]:
    """A target's `processes`, each field checked; `whole`: a report's, which also says each
    one's command line, whether it exited, what was lost and its total (an interval's do not)."""
    listed = CHECK.get(entry, "processes", list, f"{where}.")
    if len(listed) > MAX_PROCESSES:
        raise _bad(f"{where} lists more than {MAX_PROCESSES} processes")
    found = []
    for j, p in enumerate(listed):
        at = f"{where}.processes[{j}]"
        pid = None if isinstance(p, dict) and p.get("pid", 0) is None else \
            CHECK.integer(p, "pid", f"{at}.", 1, MAX_PID)
        cmdline = None if not whole or isinstance(p, dict) and p.get("cmdline", "") is None else \
            CHECK.text(p, "cmdline", f"{at}.")
        comm = CHECK.text(p, "comm", f"{at}.")
        if len(comm) > COMM_CHARS:
            raise _bad(f"{at}.comm is longer than a command name")
        rows = _rows(p, "syscalls", at, names)
        one = ProcessCounts(pid, CHECK.integer(p, "host_pid", f"{at}.", 1, MAX_PID), comm, cmdline,
                            whole and CHECK.get(p, "exited", bool, f"{at}."), by_calls(rows),
                            CHECK.integer(p, "lost", f"{at}.") if whole and "lost" in p else 0)
        if whole:
            _total_is(p, at, one)
        found.append(one)
    if len({p.host_pid for p in found}) != len(found):
        raise _bad(f"{where} lists a process twice")
    return tuple(found)


def from_helper(raw: bytes, *, targets: Sequence[TargetInfo], requested_seconds: float,
                by_process: bool = False) -> Report:
    """Validate the helper's `report` document against what was asked of it; build the Report.
    Targets with no PID (Swarm tasks) are known to their helper by container id."""
    doc = decode(raw)
    if doc["kind"] != "report":
        raise _bad("a report was expected")
    entries = _targets(doc, [t.pid or t.id for t in targets])
    engine = CHECK.get(doc, "engine", str, "report.")
    if engine not in ENGINES:
        raise _bad("engine is not bpf or perf")
    latency = CHECK.get(doc, "latency", bool, "report.")
    window = CHECK.get(doc, "window", dict, "report.")
    requested = CHECK.seconds(window, "requested_seconds", "window.")
    measured = CHECK.seconds(window, "measured_seconds", "window.")
    if not math.isclose(requested, requested_seconds, rel_tol=1e-6, abs_tol=1e-3):
        raise _bad("it is about another window")
    if measured > requested * 1.05 + 1.0:
        raise _bad("its window is longer than the one asked for")
    host = CHECK.get(doc, "host", dict, "report.")
    known = CHECK.get(doc, "syscalls_counted", list, "report.")
    if len(known) > MAX_SYSCALLS or not all(isinstance(n, str) and SYSCALL_NAME.match(n) for n in known):
        raise _bad("syscalls_counted is not a list of syscall names")
    names = frozenset(known)
    only = _only(doc, names)
    if CHECK.get(doc, "by_process", bool, "report.") != by_process:
        raise _bad("by_process is not what was asked for")
    counted = []
    for i, (entry, info) in enumerate(zip(entries, targets, strict=True)):
        seen = {s.name: s for s in _rows(entry, "syscalls", f"targets[{i}]", names, latency)}
        rows = [*seen.values(), *(SyscallCount(n, 0, 0) for n in names if n not in seen)]
        procs, other = _processes(entry, f"targets[{i}]", names, seen) if by_process else (None, None)
        counted.append(TargetCounts(
            target=TargetInfo(info.id, info.name, info.pid, CHECK.text(entry, "cgroup", f"targets[{i}]."),
                              info.node),
            syscalls=by_calls(rows),
            exited=CHECK.get(entry, "exited", bool, f"targets[{i}]."),
            processes=procs,
            other_processes=other,
        ))
    return Report(
        targets=tuple(counted),
        window=Window(requested, measured, CHECK.text(window, "started_at", "window.")),
        host=Host(
            kernel=CHECK.text(host, "kernel", "host."),
            arch=CHECK.text(host, "arch", "host."),
            cpus=CHECK.integer(host, "cpus", "host."),
            cgroup_version=CHECK.integer(host, "cgroup_version", "host."),
            cgroup_layout=CHECK.text(host, "cgroup_layout", "host."),
            engine_version=CHECK.text(host, "engine_version", "host."),
        ),
        syscalls=summed([t.syscalls for t in counted]),
        partial=CHECK.get(doc, "partial", bool, "report."),
        stopped=_stop_reason(doc),
        engine=engine,
        latency=latency,
        cost=_cost(doc, engine),
        uncounted=CHECK.integer(doc, "uncounted", "report.") if "uncounted" in doc else 0,
        only=only,
        by_process=by_process,
    )


def _processes(entry: Any, where: str, names: frozenset[str], target: dict[str, SyscallCount]
               ) -> tuple[tuple[ProcessCounts, ...], OtherProcesses | None]:
    """A target's processes and the rest, checked to add up to the target, syscall by
    syscall (calls, failures and failures by errno)."""
    found = _process_list(entry, where, names, whole=True)
    other = None
    rest = CHECK.get(entry, "other_processes", (dict, type(None)), f"{where}.")
    if rest is not None:
        at = f"{where}.other_processes"
        other = OtherProcesses(CHECK.integer(rest, "processes", f"{at}."),
                               CHECK.get(rest, "more", bool, f"{at}."),
                               by_calls(_rows(rest, "syscalls", at, names)))
        _total_is(rest, at, other)
    parts = summed([*(p.syscalls for p in found), other.syscalls if other else ()])
    whole = [s for s in target.values() if s.calls or s.errors]
    if {s.name: (s.calls, s.errors, s.errnos) for s in parts} != \
            {s.name: (s.calls, s.errors, s.errnos) for s in whole}:
        raise _bad(f"the processes of {where} do not add up to it")
    return tuple(found), other


def _total_is(obj: Any, where: str, counted: _Totals) -> None:
    total = CHECK.get(obj, "total", dict, f"{where}.")
    if (CHECK.integer(total, "calls", f"{where}.total."), CHECK.integer(total, "errors", f"{where}.total.")) \
            != (counted.total_calls, counted.total_errors):
        raise _bad(f"{where}.total is not the sum of its syscalls")


def _only(doc: dict[str, Any], counted: frozenset[str]) -> tuple[str, ...] | None:
    """The syscalls asked for, if any: what was counted must be among them."""
    if CHECK.get(doc, "only", (list, type(None)), "report.") is None:
        return None
    only = doc["only"]
    if not only or len(only) > MAX_SYSCALLS or not all(isinstance(n, str) and SYSCALL_NAME.match(n)
                                                      for n in only):
        raise _bad("only is not a list of syscall names")
    if not counted <= set(only):
        raise _bad("it counted syscalls that were not asked for")
    return tuple(sorted(set(only)))


def _cost(doc: dict[str, Any], engine: str) -> Cost | None:
    if "cost" not in doc:
        return None
    if engine != "bpf":
        raise _bad("only the BPF engine measures its cost")
    cost = CHECK.get(doc, "cost", dict, "report.")
    sampled = CHECK.seconds(cost, "sampled_seconds", "cost.") if "sampled_seconds" in cost else None
    return Cost(CHECK.integer(cost, "runs", "cost."), CHECK.integer(cost, "run_time_ns", "cost."), sampled)


def _stop_reason(doc: dict[str, Any]) -> str | None:
    reason = doc.get("stopped")
    if reason is not None and reason not in STOP_REASONS:
        raise _bad("stopped is not a known reason")
    return reason


def has_rates(seconds: float) -> bool:
    """A window this short (a Ctrl-C just after counting began) gives no meaningful rate."""
    return seconds >= MIN_RATE_SECONDS


def _row(s: SyscallCount, rate: float | None) -> dict[str, Any]:
    row: dict[str, Any] = {"name": s.name, "calls": s.calls, "errors": s.errors,
                           "calls_per_second": None if rate is None else round(rate, 3)}
    if s.errnos is not None:
        row["errnos"] = dict(s.errnos)
    if s.time_ns is not None:
        row["time_ns"], row["max_ns"] = s.time_ns, s.max_ns
        row["avg_ns"] = s.time_ns // s.calls if s.calls else None
    return row


def to_document(report: Report, *, include_zero: bool = False) -> dict[str, Any]:
    """The report as `--format json` prints it (schema 4): the targets' counts summed under
    `syscalls`, and each target's own under `targets`."""
    seconds = report.window.measured_seconds
    per = [{s.name: s.calls for s in t.syscalls} for t in report.targets]

    def shown(rows: Iterable[SyscallCount], only: int | None = None) -> list[dict[str, Any]]:
        def rate(name: str) -> float | None:
            if only is None:
                return report.rate([calls.get(name, 0) for calls in per])
            w = report.targets[only].window
            own = w.measured_seconds if w else seconds
            return per[only].get(name, 0) / own if has_rates(own) else None
        return [_row(s, rate(s.name)) for s in rows if include_zero or s.calls or s.errors]

    def target(i: int, t: TargetCounts) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": t.target.id, "name": t.target.name, "pid": t.target.pid,
                                 "cgroup": t.target.cgroup, "exited": t.exited}
        if t.target.node:
            entry["node"] = t.target.node
        if t.window is not None:
            entry["window"] = {"measured_seconds": t.window.measured_seconds,
                               "started_at": t.window.started_at}
        entry = {**entry, "total": {"calls": t.total_calls, "errors": t.total_errors},
                 "syscalls": shown(t.syscalls, i)}
        if t.processes is not None:
            entry["processes"] = [process(i, p) for p in t.processes]
            o = t.other_processes
            entry["other_processes"] = None if o is None else {
                "processes": o.processes, "more": o.more,
                "total": {"calls": o.total_calls, "errors": o.total_errors},
                "syscalls": [_row(s, own_rate(i, s.calls)) for s in o.syscalls]}
        return entry

    def own_rate(i: int, calls: int) -> float | None:
        w = report.targets[i].window
        own = w.measured_seconds if w else seconds
        return calls / own if has_rates(own) else None

    def process(i: int, p: ProcessCounts) -> dict[str, Any]:
        doc = {"pid": p.pid, "host_pid": p.host_pid, "comm": p.comm, "cmdline": p.cmdline,
               "exited": p.exited, "total": {"calls": p.total_calls, "errors": p.total_errors},
               "syscalls": [_row(s, own_rate(i, s.calls)) for s in p.syscalls]}
        if p.lost:
            doc["lost"] = p.lost
        return doc

    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "kind": "report",
        "engine": report.engine,
        "latency": report.latency,
        "partial": report.partial,
        "stopped": report.stopped,
        "window": {"requested_seconds": report.window.requested_seconds,
                   "measured_seconds": seconds, "started_at": report.window.started_at},
        "host": {"kernel": report.host.kernel, "arch": report.host.arch, "cpus": report.host.cpus,
                 "cgroup_version": report.host.cgroup_version,
                 "cgroup_layout": report.host.cgroup_layout,
                 "engine_version": report.host.engine_version},
        "total": {"calls": report.total_calls, "errors": report.total_errors},
        "syscalls": shown(report.syscalls),
        "targets": [target(i, t) for i, t in enumerate(report.targets)],
    }
    if report.cost is not None:
        doc["cost"] = {"runs": report.cost.runs, "run_time_ns": report.cost.run_time_ns,
                       "cpu_share": round(report.cost.share(seconds, report.host.cpus), 6)}
        if report.cost.sampled_seconds is not None:
            doc["cost"]["sampled_seconds"] = report.cost.sampled_seconds
    if report.uncounted:
        doc["uncounted"] = report.uncounted
    if report.missing:
        doc["missing"] = [{"node": node, "reason": why} for node, why in report.missing]
    doc["only"] = None if report.only is None else list(report.only)
    doc["by_process"] = report.by_process
    return doc
