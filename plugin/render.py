"""Report -> table, JSON or CSV, and Diff -> table or JSON, written to the stream given; nothing else."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from .report import (
    MIN_RATE_SECONDS,
    OtherProcesses,
    ProcessCounts,
    Report,
    SyscallCount,
    TargetCounts,
    errno_order,
    has_rates,
    to_document,
)

if TYPE_CHECKING:
    from .diff import Change, Count, Diff, Snapshot

CSV_HEADER = ("container", "syscall", "calls", "errors", "calls_per_second", "share_percent")
CMD_WIDTH = 40  # a process's command line in the table, unless --no-trunc
OTHER = "other processes"  # the row of a target's processes beyond those listed
WHY_PARTIAL = {"interrupted": "interrupted", "target-exited": "the container stopped",
               "helper-stopped": "the helper was stopped"}
BAR_WIDTH = 20


def tabulate(*args: Any, **kwargs: Any) -> str:
    """tabulate's, imported when a table is drawn (or warmed up: see `warm`), not at start."""
    from tabulate import tabulate as draw

    return str(draw(*args, **kwargs))


def warm() -> None:
    """Import what drawing a table takes, while the helper counts rather than after."""
    import tabulate  # noqa: F401
EIGHTHS = " ▏▎▍▌▋▊▉█"
NAME_WIDTH = 16  # a container's name as a column heading, unless --no-trunc


@dataclass(frozen=True)
class View:
    """Which rows, in which order, in which format."""

    fmt: str = "table"
    top: int | None = None
    sort: str = "calls"
    all: bool = False  # rows of syscalls that were not called too
    no_trunc: bool = False
    by_class: bool = False
    bars: bool = True  # the share as a bar of block characters (tables only)
    processes_top: int | None = None  # --by-process: the processes listed (default: top's)


def rows(syscalls: Sequence[SyscallCount], view: View) -> list[SyscallCount]:
    shown = [s for s in syscalls if view.all or s.calls or s.errors]
    if view.sort == "name":
        shown.sort(key=lambda s: s.name)
    elif view.sort == "errors":
        shown.sort(key=lambda s: (-s.errors, -s.calls, s.name))
    # "calls" and "rate" (calls over one window): the report's own order.
    return shown if view.top is None else shown[:view.top]


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A bar of `width` cells filled to `fraction`, in eighths of a cell."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    if fraction > 0 and not eighths:
        eighths = 1  # a call is never drawn as none
    full, part = divmod(eighths, 8)
    return ("█" * full + (EIGHTHS[part] if part else "")).rstrip()


def short(text: str, view: View, width: int = NAME_WIDTH) -> str:
    return text if view.no_trunc or len(text) <= width else text[:width - 1] + "…"


def by_class(syscalls: Sequence[SyscallCount]) -> dict[str, list[SyscallCount]]:
    """The syscalls grouped by class, each group in the order given."""
    from .classes import classify

    groups: dict[str, list[SyscallCount]] = {}
    for s in syscalls:
        groups.setdefault(classify(s.name), []).append(s)
    return groups


def title(report: Report, view: View = View()) -> str:
    partial = ""
    if report.partial:
        why = WHY_PARTIAL.get(report.stopped or "", "")
        if report.missing and not why:
            why = f"{len(report.missing)} node{'s' * (len(report.missing) > 1)} gave no report"
        partial = f", PARTIAL ({why})" if why else ", PARTIAL"
    tasks = any(t.target.node for t in report.targets)
    if len(report.targets) == 1 and not tasks:
        t = report.targets[0].target
        who = f"{t.name} ({t.id if view.no_trunc else t.id[:12]})"
    else:
        names = ", ".join(t.target.name + (f" on {t.target.node}" if t.target.node else "")
                          + (" exited" if t.exited else "") for t in report.targets)
        kind = "task" if tasks else "container"
        who = f"{len(report.targets)} {kind}{'s' * (len(report.targets) > 1)} ({names})"
    short = "" if has_rates(report.window.measured_seconds) else \
        f" (under {MIN_RATE_SECONDS:g} s: too short for rates)"
    counted = "syscalls" if report.only is None else f"calls of {asked(report.only)}"
    return (f"{who}: {report.total_calls:,} {counted} in "
            f"{report.window.measured_seconds:.2f} s{short}{partial}")


def asked(only: Sequence[str], names: int = 4) -> str:
    """--syscall's selection as a title says it: `getppid, read`, or `18 syscalls asked for`."""
    return ", ".join(only) if len(only) <= names else f"{len(only)} syscalls asked for"


def duration(ns: int) -> str:
    """A time in the unit that reads best: 830 ns, 51.2 µs, 20.0 ms, 3.00 s."""
    if ns < 1_000:
        return f"{ns} ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.1f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.1f} ms"
    return f"{ns / 1e9:,.2f} s"


def has_errnos(report: Report) -> bool:
    """An engine told the errnos (BPF): the table has an ERRNO column."""
    return "bpf" in report.engine.split(",")


def top_errno(s: SyscallCount) -> str:
    """The most frequent errno of a row's failures and its share of them: `ENOENT 98%`."""
    top = s.top_errno()
    return f"{top[0]} {100 * top[1] / s.errors:.0f}%" if top and s.errors else ""


def _cells(report: Report, view: View, name: str, members: Sequence[SyscallCount],
           per_target: Sequence[int], top_calls: int) -> list[str]:
    calls, errors = sum(s.calls for s in members), sum(s.errors for s in members)
    share = calls / (report.total_calls or 1)
    cells = [name]
    if len(report.targets) > 1:
        cells += [f"{n:,}" for n in per_target]
    cells += [f"{calls:,}", f"{errors:,}"]
    if has_errnos(report):
        cells.append(top_errno(members[0]) if len(members) == 1 else "")
    rate = report.rate(per_target)
    cells.append("-" if rate is None else f"{rate:,.1f}")
    if report.latency:
        spent = sum(s.time_ns or 0 for s in members)
        timed = sum(s.calls for s in members if s.time_ns is not None)
        longest = max((s.max_ns or 0 for s in members), default=0)
        cells += [duration(spent), duration(spent // timed) if timed else "-", duration(longest)] \
            if timed else ["-", "-", "-"]
    cells.append(f"{100 * share:.1f}%")
    if view.bars:
        cells.append(bar(calls / top_calls) if top_calls else "")
    return cells


def _body(report: Report, view: View) -> list[list[str]]:
    """The table's rows; with --by-class, each class's subtotal row (no syscall name) comes
    before the rows of its syscalls, under a CLASS column."""
    shown = rows(report.syscalls, view)
    per = [{s.name: s.calls for s in t.syscalls} for t in report.targets]

    def line(name: str, members: Sequence[SyscallCount], top: int) -> list[str]:
        return _cells(report, view, name, members,
                      [sum(calls.get(s.name, 0) for s in members) for calls in per], top)

    if not view.by_class:
        top = max((s.calls for s in shown), default=0)
        return [line(s.name, [s], top) for s in shown]
    # Subtotals count every syscall of the class; --top limits the rows under each.
    groups = by_class(rows(report.syscalls, dataclasses.replace(view, top=None)))
    order = sorted(groups, key=lambda c: c if view.sort == "name"
                   else (-sum(s.calls for s in groups[c]), c))
    top = max((sum(s.calls for s in members) for members in groups.values()), default=0)
    body = []
    for cls in order:
        body.append([cls, *line("", groups[cls], top)])
        body += [["", *line(s.name, [s], top)] for s in groups[cls][:view.top]]
    return body


# Below a --latency table: TIME sums threads and processes that run at once, so a 3 s window
# can hold 5.7 s of it.
LATENCY_NOTE = "TIME is summed over every process and thread, so it can exceed the window."


def table(report: Report, view: View = View()) -> str:
    headers = ["CLASS", "SYSCALL"] if view.by_class else ["SYSCALL"]
    if len(report.targets) > 1:
        headers += [short(t.target.name, view) for t in report.targets]
    headers += ["CALLS", "ERRORS"] + (["ERRNO"] if has_errnos(report) else []) + ["CALLS/S"]
    headers += ["TIME", "AVG", "MAX"] if report.latency else []
    headers.append("SHARE")
    body = _body(report, view)
    total = _cells(report, view, "total", report.syscalls,
                   [t.total_calls for t in report.targets], 0)
    if view.by_class:
        total.insert(0, "")
    total[len(headers) - 1] = "100.0%" if report.total_calls else "-"
    if view.bars:
        headers.append("")
    names = 1 + view.by_class
    align = ["left"] * names + ["right"] * (len(headers) - names - view.bars) + ["left"] * view.bars
    if has_errnos(report):
        align[headers.index("ERRNO")] = "left"
    text = tabulate([*body, total], headers=headers, tablefmt="simple", disable_numparse=True,
                    colalign=align)
    # A rule above the total line, as wide as the table.
    lines = [line.rstrip() for line in text.splitlines()]
    lines.insert(len(lines) - 1, lines[1])
    if report.latency:
        lines += ["", LATENCY_NOTE]
    text = title(report, view) + "\n\n" + "\n".join(lines)
    for t in report.targets if report.by_process else ():
        text += "\n\n" + process_table(report, t, view)
    return text


def top_of(rows: Sequence[SyscallCount], total: int) -> str:
    """A process's busiest syscall and its share of the process's calls: `getppid 98%`."""
    busiest = max(rows, key=lambda s: (s.calls, s.errors), default=None)
    if busiest is None or not total:
        return ""
    return f"{busiest.name} {100 * busiest.calls / total:.0f}%"


def top_errno_of(rows: Sequence[SyscallCount]) -> str:
    """A process's most frequent errno over all its syscalls, and its share of its failures."""
    by_errno: dict[str, int] = {}
    for s in rows:
        for e, n in s.errnos or ():
            by_errno[e] = by_errno.get(e, 0) + n
    ordered = errno_order(by_errno)
    failed = sum(by_errno.values())
    return f"{ordered[0][0]} {100 * ordered[0][1] / failed:.0f}%" if ordered and failed else ""


def process_table(report: Report, t: TargetCounts, view: View) -> str:
    """--by-process: a target's processes, one row each, most calls first (--top limits them),
    then the rest of its calls as one row: PID (in the container), COMMAND, calls, errors,
    top syscall and errno, rate, share of the target's calls, the command line."""
    listed: list[ProcessCounts | OtherProcesses] = list(t.processes or ())
    shown = listed[:view.processes_top or view.top]
    cut = listed[len(shown):]
    seconds = (t.window or report.window).measured_seconds
    errnos = has_errnos(report)

    def cells(pid: str, command: str, p: ProcessCounts | OtherProcesses, cmd: str) -> list[str]:
        row = [pid, command, f"{p.total_calls:,}", f"{p.total_errors:,}", top_of(p.syscalls, p.total_calls)]
        row += [top_errno_of(p.syscalls)] if errnos else []
        rate = f"{p.total_calls / seconds:,.1f}" if has_rates(seconds) else "-"
        share = f"{100 * p.total_calls / t.total_calls:.1f}%" if t.total_calls else "-"
        return [*row, rate, share, cmd]

    body = [cells("-" if p.pid is None else str(p.pid), p.comm + (" (exited)" if p.exited else ""), p,
                  "" if p.cmdline is None else short(p.cmdline, view, CMD_WIDTH))
            for p in shown if isinstance(p, ProcessCounts)]
    rest = t.other_processes
    if cut:  # those --top leaves out join the rest's row
        from .report import summed

        parts = [*(p.syscalls for p in cut), rest.syscalls if rest else ()]
        count = len(cut) + (rest.processes if rest else 0)
        rest = OtherProcesses(count, bool(rest and rest.more), summed(parts))
    if rest is not None:
        many = f"{rest.processes:,}{'+' if rest.more else ''}"
        body.append(cells("", f"{OTHER} ({many})" if rest.processes else OTHER, rest, ""))
    headers = ["PID", "COMMAND", "CALLS", "ERRORS", "TOP SYSCALL", *(["TOP ERRNO"] if errnos else []),
               "CALLS/S", "SHARE", "COMMAND LINE"]
    align = ["right", "left", "right", "right", "left", *(["left"] if errnos else []),
             "right", "right", "left"]
    if not body:
        return f"{t.target.name}: no process made a syscall in the window"
    text = tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True, colalign=align)
    n = len(t.processes or ()) + (t.other_processes.processes if t.other_processes else 0)
    more = "+" if t.other_processes and t.other_processes.more else ""
    who = f"{t.target.name}: {n:,}{more} process{'es' * (n != 1)}"
    return who + "\n\n" + "\n".join(line.rstrip() for line in text.splitlines())


def document(report: Report, view: View) -> dict[str, Any]:
    """The JSON document: the rows the view shows, in its order; totals stay whole."""
    doc = to_document(report, include_zero=True)
    for entry, counts in [(doc, report.syscalls), *zip(doc["targets"], (t.syscalls for t in report.targets),
                                                       strict=True)]:
        by_name = {row["name"]: row for row in entry["syscalls"]}
        entry["syscalls"] = [by_name[s.name] for s in rows(counts, view)]
    if view.by_class:
        from .classes import classify

        for row in doc["syscalls"]:
            row["class"] = classify(row["name"])
        # Subtotals of every syscall, not only of those listed.
        classes = [{"name": cls, "calls": sum(s.calls for s in members),
                    "errors": sum(s.errors for s in members)}
                   for cls, members in by_class(rows(report.syscalls, View())).items()]
        doc["classes"] = sorted(classes, key=lambda c: (-c["calls"], c["name"]))
    return doc


def _csv_parts(report: Report, t: TargetCounts) -> list[tuple[tuple[str, ...], Sequence[SyscallCount]]]:
    """The rows of a target in CSV: its own, or with --by-process each process's (pid, comm)
    and the rest's (no pid, `other processes`)."""
    if not report.by_process:
        return [((), t.syscalls)]
    parts = [((str(p.pid) if p.pid is not None else "", p.comm), p.syscalls) for p in t.processes or ()]
    if t.other_processes is not None:
        parts.append((("", OTHER), t.other_processes.syscalls))
    return parts


def write(report: Report, view: View, stream: TextIO) -> None:
    if view.fmt == "json":
        stream.write(json.dumps(document(report, view), indent=2) + "\n")
    elif view.fmt == "csv":
        out = csv.writer(stream, lineterminator="\n")
        header = list(CSV_HEADER)
        if view.by_class:
            from .classes import classify

            header.insert(2, "class")
        header += ["errnos"] if has_errnos(report) else []
        header += ["time_ns", "max_ns"] if report.latency else []
        if report.by_process:  # a row per container, process and syscall
            header[1:1] = ["pid", "comm"]
        out.writerow(header)
        for t in report.targets:
            seconds = (t.window or report.window).measured_seconds
            for who, counts in _csv_parts(report, t):
                for s in rows(counts, view):
                    rate = f"{s.calls / seconds:.3f}" if has_rates(seconds) else ""
                    row = [t.target.name, *who, s.name, s.calls, s.errors, rate,
                           f"{100 * s.calls / (t.total_calls or 1):.3f}"]
                    if view.by_class:
                        row.insert(2 + len(who), classify(s.name))
                    if has_errnos(report):
                        row.append(" ".join(f"{e}:{n}" for e, n in s.errnos or ()))
                    if report.latency:
                        row += ["" if s.time_ns is None else s.time_ns,
                                "" if s.max_ns is None else s.max_ns]
                    out.writerow(row)
    else:
        stream.write(table(report, view) + "\n")
    stream.flush()


# --- docker spy diff ---------------------------------------------------------------------------

DIFF_SCHEMA = 1  # of the diff written
DIFF_HEADERS = ("SYSCALL", "CALLS A", "CALLS B", "CALLS/S A", "CALLS/S B", "CHANGE", "ERRORS A",
                "ERRORS B")


def _diff_title(diff: Diff) -> str:
    sides = [f"{ab}: {label} ({s.measured_seconds:.2f} s{', partial' if s.partial else ''})"
             for ab, label, s in zip("AB", diff.labels, (diff.before, diff.after), strict=True)]
    t = diff.total
    rate = (f"{100 * t.ratio:+,.1f}% calls/s" if t.ratio is not None
            else "no calls before" if t.after.calls else "no calls in either")
    return f"{sides[0]} -> {sides[1]}: {t.before.calls:,} -> {t.after.calls:,} syscalls, {rate}"


def _diff_cells(c: Change, errnos: bool = False) -> tuple[str, ...]:
    change = f"{100 * c.ratio:+,.1f}%" if c.status == "changed" and c.ratio is not None else c.status
    cells = (c.name, f"{c.before.calls:,}", f"{c.after.calls:,}", f"{c.before_rate:,.1f}",
             f"{c.after_rate:,.1f}", change, f"{c.before.errors:,}", f"{c.after.errors:,}")
    if not errnos:
        return cells
    a, b = c.before.top_errno(), c.after.top_errno()
    return (*cells, a if a == b else f"{a or '-'} -> {b or '-'}" if a or b else "")


def has_diff_errnos(diff: Diff) -> bool:
    """Either report came from the BPF engine, which tells why calls failed."""
    return any(c.before.errnos or c.after.errnos for c in diff.syscalls)


def diff_table(diff: Diff, rows: list[Change]) -> str:
    errnos = has_diff_errnos(diff)
    headers = (*DIFF_HEADERS, "TOP ERRNO") if errnos else DIFF_HEADERS
    body = tabulate([*(_diff_cells(c, errnos) for c in rows), _diff_cells(diff.total, errnos)],
                    headers=headers, tablefmt="simple", disable_numparse=True,
                    colalign=("left", *["right"] * (len(DIFF_HEADERS) - 1), *["left"] * errnos))
    lines = body.splitlines()
    lines.insert(len(lines) - 1, lines[1])  # a rule above the total line, as wide as the table
    notes = [f"note: {s.source} lists only some syscalls (--top?), so new and gone may be wrong"
             for s in (diff.before, diff.after) if not s.complete]
    text = "\n".join([_diff_title(diff), "", *lines, *notes])
    if diff.processes:  # --by-process on both sides: by command name
        procs = tabulate([_diff_cells(c) for c in diff.processes],
                         headers=("COMMAND", *DIFF_HEADERS[1:]), tablefmt="simple",
                         disable_numparse=True, colalign=("left", *["right"] * (len(DIFF_HEADERS) - 1)))
        text += "\n\nprocesses by command name (pids change between runs)\n\n" + procs
    return text


def _side_doc(s: Snapshot, label: str) -> dict[str, Any]:
    return {"label": label, "source": s.source, "targets": list(s.names),
            "window": {"requested_seconds": s.requested_seconds, "measured_seconds": s.measured_seconds,
                       "started_at": s.started_at.isoformat(timespec="milliseconds")},
            "partial": s.partial, "stopped": s.stopped, "complete": s.complete,
            "total": {"calls": s.total.calls, "errors": s.total.errors,
                      "calls_per_second": round(s.rate(s.total.calls), 3)}}


def _change_doc(c: Change) -> dict[str, Any]:
    def side(n: Count, rate: float) -> dict[str, Any]:
        return {"calls": n.calls, "errors": n.errors, "calls_per_second": round(rate, 3)}

    doc = {"name": c.name, "before": side(c.before, c.before_rate), "after": side(c.after, c.after_rate),
           "change_per_second": round(c.per_second, 3),
           "change_ratio": None if c.ratio is None else round(c.ratio, 6), "status": c.status}
    if c.before.errnos or c.after.errnos:
        doc["before"]["errnos"], doc["after"]["errnos"] = dict(c.before.errnos), dict(c.after.errnos)
    return doc


def diff_document(diff: Diff, rows: list[Change]) -> dict[str, Any]:
    total = _change_doc(diff.total)
    return {"schema": DIFF_SCHEMA, "kind": "diff",
            "before": _side_doc(diff.before, diff.labels[0]), "after": _side_doc(diff.after, diff.labels[1]),
            "change": {k: total[k] for k in ("change_per_second", "change_ratio", "status")},
            "syscalls": [_change_doc(c) for c in rows],
            "appeared": list(diff.appeared), "disappeared": list(diff.disappeared),
            "processes": [_change_doc(c) for c in diff.processes]}


def write_diff(diff: Diff, fmt: str, stream: TextIO, *, top: int | None = None,
               sort: str = "change") -> None:
    """The diff as a table or JSON; top and sort choose the rows, never the totals."""
    if top is not None and top < 0:
        raise ValueError("top must not be negative")
    from .diff import ordered

    rows = ordered(list(diff.syscalls), sort)[:top]
    if fmt == "json":
        stream.write(json.dumps(diff_document(diff, rows), indent=2) + "\n")
    elif fmt == "table":
        stream.write(diff_table(diff, rows) + "\n")
    else:
        raise ValueError(f"unknown format {fmt!r}")
    stream.flush()
