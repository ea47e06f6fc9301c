"""Report -> table or JSON, written to the stream given; nothing else."""

from __future__ import annotations

import json
from typing import TextIO

from tabulate import tabulate

from .report import Report, to_document

HEADERS = ("SYSCALL", "CALLS", "ERRORS", "CALLS/S", "SHARE")


WHY_PARTIAL = {"interrupted": "interrupted", "target-exited": "the container stopped",
               "helper-stopped": "the helper was stopped"}


def title(report: Report) -> str:
    t = report.target
    w = report.window
    partial = ""
    if report.partial:
        why = WHY_PARTIAL.get(report.stopped or "", "")
        partial = f", PARTIAL ({why})" if why else ", PARTIAL"
    return (f"{t.name} ({t.id[:12]}): {report.total_calls:,} syscalls in "
            f"{w.measured_seconds:.2f} s{partial}")


def table_rows(report: Report, top: int | None) -> list[tuple[str, str, str, str, str]]:
    seconds = report.window.measured_seconds or 1.0
    total = report.total_calls or 1
    shown = [s for s in report.syscalls if s.calls or s.errors]
    if top is not None:
        shown = shown[:top]
    return [
        (s.name, f"{s.calls:,}", f"{s.errors:,}", f"{s.calls / seconds:,.1f}",
         f"{100 * s.calls / total:.1f}%")
        for s in shown
    ]


def table(report: Report, top: int | None = None) -> str:
    rows = table_rows(report, top)
    seconds = report.window.measured_seconds or 1.0
    rows.append(("total", f"{report.total_calls:,}", f"{report.total_errors:,}",
                 f"{report.total_calls / seconds:,.1f}", "100.0%" if report.total_calls else "-"))
    body = tabulate(rows, headers=HEADERS, tablefmt="simple", disable_numparse=True,
                    colalign=("left", "right", "right", "right", "right"))
    # A rule above the total line, as wide as the table.
    lines = body.splitlines()
    lines.insert(len(lines) - 1, lines[1])
    return title(report) + "\n\n" + "\n".join(lines)


def write(report: Report, fmt: str, stream: TextIO, *, top: int | None = None) -> None:
    if fmt == "json":
        doc = to_document(report)
        if top is not None:
            doc["syscalls"] = doc["syscalls"][:top]
        stream.write(json.dumps(doc, indent=2) + "\n")
    else:
        stream.write(table(report, top) + "\n")
    stream.flush()
