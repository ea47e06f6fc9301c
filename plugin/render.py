"""Report -> table, JSON or CSV, written to the stream given; nothing else."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from typing import TextIO

from tabulate import tabulate

from .report import Report, SyscallCount, to_document

HEADERS = ("SYSCALL", "CALLS", "ERRORS", "CALLS/S", "SHARE")
CSV_HEADER = ("syscall", "calls", "errors", "calls_per_second", "share_percent")
FORMATS = ("table", "json", "csv")
SORTS = ("calls", "errors", "name", "rate")
WHY_PARTIAL = {"interrupted": "interrupted", "target-exited": "the container stopped",
               "helper-stopped": "the helper was stopped"}


@dataclass(frozen=True)
class View:
    """Which rows, in which order, in which format."""

    fmt: str = "table"
    top: int | None = None
    sort: str = "calls"
    all: bool = False  # rows of syscalls that were not called too
    no_trunc: bool = False


def rows(report: Report, view: View) -> list[SyscallCount]:
    shown = [s for s in report.syscalls if view.all or s.calls or s.errors]
    if view.sort == "name":
        shown.sort(key=lambda s: s.name)
    elif view.sort == "errors":
        shown.sort(key=lambda s: (-s.errors, -s.calls, s.name))
    # "calls" and "rate" (calls over one window): the report's own order.
    return shown if view.top is None else shown[:view.top]


def title(report: Report, view: View = View()) -> str:
    t = report.target
    w = report.window
    partial = ""
    if report.partial:
        why = WHY_PARTIAL.get(report.stopped or "", "")
        partial = f", PARTIAL ({why})" if why else ", PARTIAL"
    cid = t.id if view.no_trunc else t.id[:12]
    return f"{t.name} ({cid}): {report.total_calls:,} syscalls in {w.measured_seconds:.2f} s{partial}"


def _rate(report: Report, calls: int) -> float:
    return calls / (report.window.measured_seconds or 1.0)


def _share(report: Report, calls: int) -> float:
    return 100 * calls / (report.total_calls or 1)


def table(report: Report, view: View = View()) -> str:
    body_rows = [(s.name, f"{s.calls:,}", f"{s.errors:,}", f"{_rate(report, s.calls):,.1f}",
                  f"{_share(report, s.calls):.1f}%") for s in rows(report, view)]
    body_rows.append(("total", f"{report.total_calls:,}", f"{report.total_errors:,}",
                      f"{_rate(report, report.total_calls):,.1f}",
                      "100.0%" if report.total_calls else "-"))
    body = tabulate(body_rows, headers=HEADERS, tablefmt="simple", disable_numparse=True,
                    colalign=("left", "right", "right", "right", "right"))
    # A rule above the total line, as wide as the table.
    lines = body.splitlines()
    lines.insert(len(lines) - 1, lines[1])
    return title(report, view) + "\n\n" + "\n".join(lines)


def write(report: Report, view: View, stream: TextIO) -> None:
    if view.fmt == "json":
        doc = to_document(report, include_zero=True)
        by_name = {row["name"]: row for row in doc["syscalls"]}
        doc["syscalls"] = [by_name[s.name] for s in rows(report, view)]
        stream.write(json.dumps(doc, indent=2) + "\n")
    elif view.fmt == "csv":
        out = csv.writer(stream, lineterminator="\n")
        out.writerow(CSV_HEADER)
        for s in rows(report, view):
            out.writerow((s.name, s.calls, s.errors, f"{_rate(report, s.calls):.3f}",
                          f"{_share(report, s.calls):.3f}"))
    else:
        stream.write(table(report, view) + "\n")
    stream.flush()
