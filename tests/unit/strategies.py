"""Hypothesis strategies for the property tests: valid documents of each contract, generated from
its schema and the recorded fixtures, and ways to perturb them. A test draws a valid one, checks
what is accepted against what was generated, then checks that a perturbed one is either refused
with the module's own error or accepted and still right."""

from __future__ import annotations

import copy
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from plugin import report

text = st.text(alphabet=st.characters(codec="utf-8"), max_size=400)
printable = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | text,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(text, children, max_size=5),
    max_leaves=30,
)
syscall_names = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)
errno_names = st.from_regex(r"E[A-Z][A-Z0-9_]{0,10}", fullmatch=True)
counts = st.integers(min_value=0, max_value=1 << 40)  # sums of a few stay far below 2^64


# --- JSON documents: paths into them, and one change at one path -------------------------------

def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside a JSON document."""
    found = [prefix] if prefix else []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in items:
        found += paths(child, (*prefix, key))
    return found


@dataclass(frozen=True)
class Change:
    how: str  # "replace", "delete", "add" (a key nobody reads), or "none"
    path: tuple  # of the value replaced or deleted, or of the object a key was added to

    def __str__(self) -> str:
        return f"{self.how} {'.'.join(map(str, self.path))}"


@st.composite
def perturbed(draw: st.DrawFn, doc: dict[str, Any]) -> tuple[dict[str, Any], Change]:
    """doc with one value replaced by random JSON (or a value of another valid kind), one key
    deleted, or one key added; doc unchanged as Change("none")."""
    how = draw(st.sampled_from(["none", "replace", "replace", "replace", "delete", "add"]))
    if how == "none":
        return doc, Change("none", ())
    changed = copy.deepcopy(doc)
    path = draw(st.sampled_from(paths(doc)))
    parent = changed
    for key in path[:-1]:
        parent = parent[key]
    if how == "replace":
        parent[path[-1]] = draw(json_values | st.integers(min_value=-(1 << 70), max_value=1 << 70)
                                | st.sampled_from([0, 1, -1, True, False, None, "", 1e999, 1 << 64]))
    elif how == "delete":
        del parent[path[-1]]
    else:  # into the object at path, or the document itself: a key no reader knows
        if not isinstance(parent[path[-1]], dict):
            parent, path = {"": changed}, ()
        container = parent[path[-1] if path else ""]
        container[draw(st.from_regex(r"x_[a-z]{1,8}", fullmatch=True))] = draw(json_values)
    return changed, Change(how, path)


# --- the helper's documents (report.from_helper, report.interval_from_helper) -----------------

@dataclass(frozen=True)
class HelperReport:
    doc: dict[str, Any]
    targets: list[report.TargetInfo]
    requested_seconds: float
    counted: list[str]


@st.composite
def rows(draw: st.DrawFn, names: list[str], bpf: bool, latency: bool) -> list[dict[str, Any]]:
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=12)) if names else []
    out = []
    for name in chosen:
        calls, errors = draw(counts), draw(counts)
        row: dict[str, Any] = {"name": name, "calls": calls, "errors": errors}
        if bpf and errors and draw(st.booleans()):
            split = draw(st.lists(errno_names, min_size=1, max_size=3, unique=True))
            parts = sorted(draw(st.lists(st.integers(0, errors), min_size=len(split) - 1,
                                         max_size=len(split) - 1)))
            bounds = [0, *parts, errors]
            row["errnos"] = {e: bounds[i + 1] - bounds[i] for i, e in enumerate(split)}
        if latency and draw(st.booleans()):
            spent = draw(counts)
            row["time_ns"], row["max_ns"] = spent, draw(st.integers(0, spent))
        out.append(row)
    return out


@st.composite
def helper_reports(draw: st.DrawFn, recorded: dict[str, Any]) -> HelperReport:
    """A `report` document the helper could print, on the recorded one's syscall names."""
    engine = draw(st.sampled_from(report.ENGINES))
    latency = engine == "bpf" and draw(st.booleans())
    counted = draw(st.lists(st.sampled_from(recorded["syscalls_counted"]), unique=True, min_size=1,
                            max_size=30))
    n = draw(st.integers(1, 3))
    pids = draw(st.lists(st.integers(1, 1 << 22), min_size=n, max_size=n, unique=True))
    requested = draw(st.floats(0.1, 86400.0))
    measured = draw(st.floats(0.0, requested * 1.05 + 1.0))
    untabled = ["compat_getpid", "syscall_472"]
    doc: dict[str, Any] = {
        "schema": report.SCHEMA, "kind": "report", "engine": engine, "latency": latency,
        "partial": draw(st.booleans()), "stopped": draw(st.none() | st.sampled_from(report.STOP_REASONS)),
        "window": {"requested_seconds": requested, "measured_seconds": measured,
                   "started_at": draw(printable)},
        "host": {"kernel": draw(printable), "arch": draw(printable), "cpus": draw(st.integers(0, 4096)),
                 "cgroup_version": draw(st.sampled_from([1, 2])), "cgroup_layout": draw(printable),
                 "engine_version": draw(printable)},
        "syscalls_counted": counted,
        "only": draw(st.sampled_from([None, sorted(counted)])),  # --syscall: the names asked for
        "by_process": False,
        "targets": [{"pid": pid, "cgroup": draw(printable), "exited": draw(st.booleans()),
                     "syscalls": draw(rows(counted + (untabled if engine == "bpf" else []),
                                           engine == "bpf", latency))}
                    for pid in pids],
    }
    if engine == "bpf" and draw(st.booleans()):
        doc["cost"] = {"runs": draw(counts), "run_time_ns": draw(counts)}
    targets = [report.TargetInfo(f"{i:064x}", f"t{i}", pid) for i, pid in enumerate(pids)]
    return HelperReport(doc, targets, requested, counted)


@st.composite
def helper_intervals(draw: st.DrawFn, names: list[str]) -> tuple[dict[str, Any], list[int], float]:
    """An `interval` document, the pids it must be about and the end of the interval before."""
    n = draw(st.integers(1, 3))
    pids = draw(st.lists(st.integers(1, 1 << 22), min_size=n, max_size=n, unique=True))
    previous = draw(st.floats(0.0, 1000.0))
    doc = {"schema": report.SCHEMA, "kind": "interval", "index": draw(st.integers(0, 1 << 20)),
           "seconds": draw(st.floats(previous, previous + 1000.0)),
           "targets": [{"pid": pid, "syscalls": draw(rows(names, draw(st.booleans()), False))}
                       for pid in pids]}
    return doc, pids, previous


# --- docker spy's own reports (what docker spy diff reads) -------------------------------------

@st.composite
def spy_reports(draw: st.DrawFn) -> report.Report:
    """A Report as the plugin builds one, of 1 to 3 targets, either engine."""
    engine = draw(st.sampled_from(report.ENGINES))
    names = draw(st.lists(syscall_names, unique=True, min_size=1, max_size=15))
    targets = []
    for i in range(draw(st.integers(1, 3))):
        rows_ = []
        for name in names:
            calls, errors = draw(counts), draw(counts)
            errnos = None
            if engine == "bpf":
                errnos = report.errno_order({"EBADF": errors // 2, "ENOENT": errors - errors // 2})
            rows_.append(report.SyscallCount(name, calls, errors, errnos))
        targets.append(report.TargetCounts(
            report.TargetInfo(draw(st.from_regex(r"[0-9a-f]{64}", fullmatch=True)),
                              draw(st.text(string.ascii_letters + string.digits + "_.-", min_size=1,
                                           max_size=30)) + str(i),
                              draw(st.integers(1, 1 << 32)), draw(printable)),
            report.by_calls(rows_), draw(st.booleans())))
    started = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                                timezones=st.just(UTC)))
    measured = draw(st.floats(1e-6, float(report.MAX_WINDOW_SECONDS)))
    return report.Report(
        targets=tuple(targets),
        window=report.Window(draw(st.none() | st.floats(1e-6, float(report.MAX_WINDOW_SECONDS))), measured,
                             started.isoformat(timespec="milliseconds")),
        host=report.Host(draw(printable), draw(printable), draw(st.integers(0, 1 << 10)), 2, draw(printable),
                         draw(printable)),
        syscalls=report.summed([t.syscalls for t in targets]),
        partial=draw(st.booleans()), stopped=draw(st.none() | st.sampled_from(report.STOP_REASONS)),
        engine=engine)
