"""`docker spy diff A B`: two reports that `--format json` printed, compared rate by rate.

The files are the user's and untrusted: read with a size cap, parsed and validated field by
field; any problem is one UsageError that names the file. Rates, not counts, are compared,
because the two windows may differ in length. render.write_diff shows the result.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from .errors import UsageError
from .report import (
    ERRNO_NAME,
    MAX_COUNT,
    MAX_ERRNOS,
    MAX_PROCESSES,
    MAX_SYSCALLS,
    MAX_WINDOW_SECONDS,
    PRINTABLE,
    SCHEMA,  # the reports read are what `--format json` prints
    STOP_REASONS,
    SYSCALL_NAME,
    Checker,
    errno_order,
)

MAX_BYTES = 16 << 20
MAX_TARGETS = 1024
MIN_SECONDS = 1e-6  # keeps calls / seconds finite for every count
MAX_SECONDS = MAX_WINDOW_SECONDS
SAME = 5e-4  # a rate change under 0.05% would print as +0.0%: it is "same"
HOW = "make one with: docker spy CONTAINER --format json > FILE"
READS = (2, 3, SCHEMA)  # schema 2 reports (before errnos and engines) compare as well
ENGINE_KEY = {2: "perf", 3: "engine_version", 4: "engine_version"}  # the host's counting tool
_ID = re.compile(r"^[0-9a-f]{64}\Z")
OTHER = "(other processes)"  # the processes a report did not list, as one name


@dataclass(frozen=True)
class Count:
    calls: int
    errors: int
    errnos: tuple[tuple[str, int], ...] = ()  # failures by errno, most first (BPF reports)

    def top_errno(self) -> str:
        return self.errnos[0][0] if self.errnos else ""


@dataclass(frozen=True)
class Snapshot:
    """One validated report: what the diff needs of it."""

    source: str  # the file as the user named it; "stdin" for -
    names: tuple[str, ...]  # of its targets, in the report's order
    requested_seconds: float | None
    measured_seconds: float
    started_at: datetime
    total: Count
    syscalls: tuple[tuple[str, Count], ...]  # the rows listed, by name; --top lists some only
    partial: bool
    stopped: str | None
    only: tuple[str, ...] | None = None  # --syscall's selection (schema 4); None: every syscall
    # --by-process (schema 4): calls by command name, every process of that name summed (pids
    # change between runs, names do not); the rest under OTHER. None: not counted per process.
    processes: tuple[tuple[str, Count], ...] | None = None

    def rate(self, calls: int) -> float:
        return calls / self.measured_seconds

    @property
    def complete(self) -> bool:
        """Its rows add up to its total, so a syscall it lacks was not called."""
        return sum(c.calls for _, c in self.syscalls) == self.total.calls


@dataclass(frozen=True)
class Change:
    name: str
    before: Count
    after: Count
    before_rate: float
    after_rate: float
    per_second: float  # after_rate - before_rate
    ratio: float | None  # per_second / before_rate; None when there was no rate before
    status: str  # "new", "gone", "changed" or "same"


@dataclass(frozen=True)
class Diff:
    before: Snapshot
    after: Snapshot
    labels: tuple[str, str]  # "web @ 16:00:00"; with the date when the two dates differ
    syscalls: tuple[Change, ...]  # by absolute rate change, largest first; none 0 in both
    total: Change
    appeared: tuple[str, ...]  # by name
    disappeared: tuple[str, ...]
    processes: tuple[Change, ...] = ()  # by command name, where both reports have processes


def _shown(path: str) -> str:
    return "stdin" if path == "-" else path if PRINTABLE.match(path) else ascii(path)


def _bad(source: str, what: str) -> UsageError:
    return UsageError(f"{source} is not a docker spy report: {what}", HOW)


def _read(path: str, stdin: TextIO | None) -> bytes:
    source = _shown(path)
    try:
        if path == "-":
            if stdin is None:  # bytes, so the locale's encoding cannot get in the way
                return sys.stdin.buffer.read(MAX_BYTES + 1)
            return stdin.read(MAX_BYTES + 1).encode("utf-8", "surrogatepass")
        with open(path, "rb") as f:
            return f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(f"{source} does not exist", HOW) from None
    except IsADirectoryError:
        raise UsageError(f"{source} is a directory, not a report", HOW) from None
    except UnicodeDecodeError:
        raise UsageError(f"{source} is not JSON (it is not UTF-8 text)") from None
    except OSError as e:
        raise UsageError(f"cannot read {source}: {e.strerror or e}") from None


def load(path: str, stdin: TextIO | None = None) -> Snapshot:
    """The report at path (`-`: stdin, or the stream given), validated. Only one of the two
    can be `-`: the second read of stdin would find it empty."""
    return parse(_read(path, stdin), _shown(path))


def parse(raw: bytes, source: str) -> Snapshot:
    """The report in raw, validated; source names it in errors. Pure: no I/O."""
    if len(raw) > MAX_BYTES:
        raise UsageError(f"{source} is larger than {MAX_BYTES >> 20} MiB, too large for a report")
    if not raw.strip():
        raise UsageError(f"{source} is empty", HOW)
    try:
        doc = json.loads(raw)  # NaN and Infinity pass here, and fail every range check
    except json.JSONDecodeError as e:
        raise UsageError(f"{source} is not JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except UnicodeDecodeError:
        raise UsageError(f"{source} is not JSON (it is not UTF-8 text)") from None
    except (ValueError, RecursionError):  # 5,000-digit integers, [[[[...]]]]
        raise UsageError(f"{source} is not JSON") from None
    if not isinstance(doc, dict):
        raise _bad(source, "it is not a JSON object")
    if doc.get("kind", "report") != "report":  # schema 2 reports say "report"
        what = "it is the output of docker spy diff" if doc["kind"] == "diff" else "its kind is wrong"
        raise _bad(source, what)
    schema = doc.get("schema")
    if type(schema) is not int:
        raise _bad(source, "it has no schema number")
    if schema not in READS:
        raise UsageError(f"{source} is a report of schema {schema}; docker spy diff reads schemas "
                         f"{READS[0]} to {READS[-1]}",
                         "make it again with this version: docker spy CONTAINER --format json")
    return _Checker(lambda what: _bad(source, what), source, schema).snapshot(doc)


@dataclass(frozen=True)
class _Checker(Checker):
    """The contract's field checks, each failure naming the file, and what a report is made of."""

    source: str = ""
    schema: int = SCHEMA

    def count(self, obj: Any, where: str) -> Count:
        return Count(*(self.integer(obj, k, where, 0, MAX_COUNT) for k in ("calls", "errors")))

    def errnos(self, row: Any, where: str, errors: int) -> tuple[tuple[str, int], ...]:
        if "errnos" not in row:
            return ()
        errnos = self.get(row, "errnos", dict, where)
        if len(errnos) > MAX_ERRNOS or not all(isinstance(e, str) and ERRNO_NAME.match(e) for e in errnos):
            raise self.fail(f"{where}errnos is not a map of errno names")
        counts = {e: self.integer(errnos, e, f"{where}errnos.", 0, MAX_COUNT) for e in errnos}
        if sum(counts.values()) != errors:
            raise self.fail(f"{where}errnos do not add up to its errors")
        return errno_order(counts)

    def rows(self, obj: Any, where: str, total: Count) -> tuple[tuple[str, Count], ...]:
        rows = self.get(obj, "syscalls", list, where)
        if len(rows) > MAX_SYSCALLS:
            raise self.fail(f"{where}syscalls lists too many rows")
        found: dict[str, Count] = {}
        for i, row in enumerate(rows):
            at = f"{where}syscalls[{i}]."
            name = self.get(row, "name", str, at)
            if not SYSCALL_NAME.match(name):
                raise self.fail(f"{at}name is not a syscall name")
            if name in found:
                raise self.fail(f"{where}syscalls lists {name} twice")
            rate = row.get("calls_per_second")  # derived, so only checked, never used
            if rate is not None and (type(rate) not in (int, float) or not 0 <= rate < math.inf):
                raise self.fail(f"{at}calls_per_second is not a rate")
            count = self.count(row, at)
            found[name] = Count(count.calls, count.errors, self.errnos(row, at, count.errors))
        if (sum(c.calls for c in found.values()) > total.calls
                or sum(c.errors for c in found.values()) > total.errors):
            raise self.fail(f"{where}syscalls add up to more than {where}total")
        return tuple(sorted(found.items()))

    def target(self, obj: Any, where: str) -> tuple[str, Count]:
        if not _ID.match(self.get(obj, "id", str, where)):
            raise self.fail(f"{where}id is not a container id")
        name = self.text(obj, "name", where)
        if not name:
            raise self.fail(f"{where}name is empty")
        self.integer(obj, "pid", where, 1, 1 << 32)
        self.text(obj, "cgroup", where)
        self.get(obj, "exited", bool, where)
        total = self.count(self.get(obj, "total", dict, where), f"{where}total.")
        self.rows(obj, where, total)
        return name, total

    def snapshot(self, doc: dict[str, Any]) -> Snapshot:
        window = self.get(doc, "window", dict, "")
        requested = window.get("requested_seconds")  # None: counted until Ctrl-C
        if requested is not None:
            requested = self.seconds(window, "requested_seconds", "window.", MIN_SECONDS)
        try:
            started = datetime.fromisoformat(self.text(window, "started_at", "window."))
        except ValueError:
            raise self.fail("window.started_at is not a date and time") from None
        host = self.get(doc, "host", dict, "")
        for key in ("kernel", "arch", "cgroup_layout", ENGINE_KEY[self.schema]):
            self.text(host, key, "host.")
        for key in ("cpus", "cgroup_version"):
            self.integer(host, key, "host.", 0, 1 << 20)
        stopped = doc.get("stopped")
        if stopped is not None and stopped not in STOP_REASONS:
            raise self.fail("stopped is not a known reason")
        total = self.count(self.get(doc, "total", dict, ""), "total.")
        targets = self.get(doc, "targets", list, "")
        if not 1 <= len(targets) <= MAX_TARGETS:
            raise self.fail("targets is empty or too long")
        named = [self.target(t, f"targets[{i}].") for i, t in enumerate(targets)]
        if Count(sum(t.calls for _, t in named), sum(t.errors for _, t in named)) != total:
            raise self.fail("the totals of its targets do not add up to total")
        return Snapshot(
            source=self.source, names=tuple(n for n, _ in named), requested_seconds=requested,
            measured_seconds=self.seconds(window, "measured_seconds", "window.", MIN_SECONDS),
            started_at=started,
            total=total, syscalls=self.rows(doc, "", total),
            partial=self.get(doc, "partial", bool, ""), stopped=stopped, only=self.only(doc),
            processes=self.processes(doc, targets))

    def processes(self, doc: dict[str, Any], targets: list[Any]) -> tuple[tuple[str, Count], ...] | None:
        """Each command name's calls and failures, summed over its processes in every target."""
        if self.schema < 4 or self.get(doc, "by_process", bool, "") is False:
            return None
        by_name: dict[str, Count] = {}

        def add(name: str, count: Count) -> None:
            was = by_name.get(name, Count(0, 0))
            by_name[name] = Count(was.calls + count.calls, was.errors + count.errors)

        for i, t in enumerate(targets):
            listed = self.get(t, "processes", list, f"targets[{i}].")
            if len(listed) > MAX_PROCESSES:
                raise self.fail(f"targets[{i}].processes lists too many processes")
            for j, p in enumerate(listed):
                at = f"targets[{i}].processes[{j}]."
                add(self.text(p, "comm", at), self.count(self.get(p, "total", dict, at), f"{at}total."))
            rest = self.get(t, "other_processes", (dict, type(None)), f"targets[{i}].")
            if rest is not None:
                at = f"targets[{i}].other_processes."
                add(OTHER, self.count(self.get(rest, "total", dict, at), f"{at}total."))
        return tuple(sorted(by_name.items()))

    def only(self, doc: dict[str, Any]) -> tuple[str, ...] | None:
        if self.schema < 4 or self.get(doc, "only", (list, type(None)), "") is None:
            return None
        names = doc["only"]
        if not names or len(names) > MAX_SYSCALLS or not all(
                isinstance(n, str) and SYSCALL_NAME.match(n) for n in names):
            raise self.fail("only is not a list of syscall names")
        return tuple(sorted(set(names)))


def _label(snap: Snapshot, with_date: bool) -> str:
    names = list(snap.names) if len(snap.names) <= 3 else [*snap.names[:3], f"{len(snap.names) - 3} more"]
    return f"{'+'.join(names)} @ {snap.started_at.strftime('%Y-%m-%d %H:%M:%S' if with_date else '%H:%M:%S')}"


def _change(name: str, before: Count, after: Count, a: Snapshot, b: Snapshot) -> Change:
    ra, rb = a.rate(before.calls), b.rate(after.calls)
    if not before.calls and after.calls:
        status = "new"
    elif before.calls and not after.calls:
        status = "gone"
    else:
        status = "same" if math.isclose(ra, rb, rel_tol=SAME) else "changed"
    return Change(name, before, after, ra, rb, rb - ra, (rb - ra) / ra if ra else None, status)


def compare(before: Snapshot, after: Snapshot) -> Diff:
    if before.only != after.only:
        raise UsageError("the two reports counted different syscalls (--syscall), so their "
                         "totals do not compare", "make both with the same --syscall")
    with_date = before.started_at.date() != after.started_at.date()
    zero, was, now = Count(0, 0), dict(before.syscalls), dict(after.syscalls)
    changes = [_change(n, was.get(n, zero), now.get(n, zero), before, after)
               for n in sorted(was.keys() | now.keys())]
    shown = [c for c in changes if c.before.calls or c.after.calls]
    procs: list[Change] = []
    if before.processes is not None and after.processes is not None:
        was_p, now_p = dict(before.processes), dict(after.processes)
        procs = [_change(n, was_p.get(n, zero), now_p.get(n, zero), before, after)
                 for n in sorted(was_p.keys() | now_p.keys())]
        procs = [c for c in procs if c.before.calls or c.after.calls]
    return Diff(before, after, (_label(before, with_date), _label(after, with_date)),
                tuple(ordered(shown, "change")), _change("total", before.total, after.total, before, after),
                tuple(c.name for c in shown if c.status == "new"),
                tuple(c.name for c in shown if c.status == "gone"),
                tuple(ordered(procs, "change")))


def ordered(changes: list[Change], sort: str) -> list[Change]:
    if sort == "name":
        return sorted(changes, key=lambda c: c.name)
    if sort == "calls":
        return sorted(changes, key=lambda c: (-c.after.calls, -c.before.calls, c.name))
    if sort == "change":
        return sorted(changes, key=lambda c: (-abs(c.per_second), c.name))
    raise ValueError(f"unknown sort {sort!r}")
