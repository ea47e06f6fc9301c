"""While the helper counts: running totals from its `interval` documents, shown as a live table
redrawn in place (a terminal), as one JSON line per interval (anything else), or as a progress
line on stderr during a fixed window. Output goes to the streams handed in.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from tabulate import tabulate

from . import render, report
from .report import SyscallCount, TargetInfo

CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear the screen: what docker stats does
ERASE_LINE = "\r\x1b[K"
PROGRESS_EVERY_S = 1.0


def progress_interval(seconds: float) -> float | None:
    """How often the helper reports during a fixed window shown with a progress line; not at
    all for windows too short to need one."""
    return PROGRESS_EVERY_S if seconds >= 2 * PROGRESS_EVERY_S else None


@dataclass
class Totals:
    """What the intervals so far add up to, per target."""

    targets: Sequence[TargetInfo]
    seconds: float = 0.0  # the end of the last interval, since counting started
    last_seconds: float = 0.0  # how long the last interval was
    last: report.Interval | None = None
    so_far: list[tuple[SyscallCount, ...]] = field(default_factory=list)  # per target

    def __post_init__(self) -> None:
        self.so_far = [() for _ in self.targets]

    def add(self, raw: bytes) -> report.Interval:
        interval = report.interval_from_helper(raw, pids=[t.pid for t in self.targets],
                                               previous=self.seconds)
        self.so_far = [report.summed([before, now])
                       for before, now in zip(self.so_far, interval.targets, strict=True)]
        self.last_seconds = interval.seconds - self.seconds
        self.seconds = interval.seconds
        self.last = interval
        return interval

    @property
    def total_calls(self) -> int:
        return sum(s.calls for rows in self.so_far for s in rows)

    def rows(self, i: int | None = None) -> list[dict[str, Any]]:
        """Per syscall: calls and errors so far, and in the last interval (with its rate);
        busiest in the last interval first. `i`: one target, else all summed."""
        assert self.last is not None
        picks = range(len(self.targets)) if i is None else [i]
        recent = {s.name: s for s in report.summed([self.last.targets[j] for j in picks])}
        seconds = self.last_seconds or 1.0
        out = []
        for s in report.summed([self.so_far[j] for j in picks]):
            r = recent.get(s.name, SyscallCount(s.name, 0, 0))
            out.append({"name": s.name, "calls": s.calls, "errors": s.errors,
                        "interval_calls": r.calls, "interval_errors": r.errors,
                        "calls_per_second": round(r.calls / seconds, 3)})
        out.sort(key=lambda row: (-row["interval_calls"], -row["calls"], row["name"]))
        return out


def document(totals: Totals, top: int | None = None) -> dict[str, Any]:
    """One line of `--interval` JSON output: the totals so far and the last interval's; `top`
    limits the rows listed (busiest in the interval first), never the totals."""
    assert totals.last is not None

    def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {"total": {"calls": sum(r["calls"] for r in rows), "errors": sum(r["errors"] for r in rows)},
                "interval": {"calls": sum(r["interval_calls"] for r in rows),
                             "errors": sum(r["interval_errors"] for r in rows)},
                "syscalls": rows[:top]}

    return {
        "schema": report.SCHEMA, "kind": "interval", "index": totals.last.index,
        "elapsed_seconds": round(totals.seconds, 9), "interval_seconds": round(totals.last_seconds, 9),
        **summary(totals.rows()),
        "targets": [{"id": t.id, "name": t.name, "pid": t.pid, **summary(totals.rows(i))}
                    for i, t in enumerate(totals.targets)],
    }


def frame(totals: Totals, view: render.View, height: int) -> str:
    """The live table: the busiest syscalls of the last interval that fit `height` lines."""
    rows = totals.rows()
    if view.sort == "name":
        rows.sort(key=lambda r: r["name"])
    elif view.sort == "errors":
        rows.sort(key=lambda r: (-r["errors"], -r["calls"], r["name"]))
    limit = max(1, height - 5)
    shown = rows[:min(limit, view.top or limit)]
    total = totals.total_calls
    top_rate = max((r["interval_calls"] for r in shown), default=0)
    names = ", ".join(render.short(t.name, view) for t in totals.targets)
    head = (f"{names}: {total:,} syscalls in {totals.seconds:.1f} s, "
            f"{sum(r['interval_calls'] for r in rows) / (totals.last_seconds or 1):,.0f}/s "
            f"in the last {totals.last_seconds:.1f} s")
    body = [[r["name"], f"{r['calls_per_second']:,.1f}", f"{r['calls']:,}", f"{r['errors']:,}",
             f"{100 * r['calls'] / (total or 1):.1f}%",
             render.bar(r["interval_calls"] / top_rate) if top_rate and view.bars else ""]
            for r in shown]
    table = tabulate(body, headers=["SYSCALL", "CALLS/S", "CALLS", "ERRORS", "SHARE", ""],
                     tablefmt="simple", disable_numparse=True,
                     colalign=("left", "right", "right", "right", "right", "left"))
    return head + "\n\n" + "\n".join(line.rstrip() for line in table.splitlines())


class Display:
    """Where the intervals go: `mode` is "frames" (a terminal), "lines" (JSON lines),
    "progress" (a line on stderr) or "none"."""

    def __init__(self, totals: Totals, mode: str, view: render.View, out: TextIO, err: TextIO,
                 window: float | None = None) -> None:
        self.totals, self.mode, self.view, self.out, self.err = totals, mode, view, out, err
        self.window = window
        self.drawn = False

    def __call__(self, raw: bytes) -> None:
        self.totals.add(raw)
        if self.mode == "lines":
            self.out.write(json.dumps(document(self.totals, self.view.top), separators=(",", ":")) + "\n")
            self.out.flush()
        elif self.mode == "frames":
            height = shutil.get_terminal_size().lines
            self.out.write(CLEAR + frame(self.totals, self.view, height) + "\n")
            self.out.flush()
            self.drawn = True
        elif self.mode == "progress":
            window = f" / {self.window:g} s" if self.window else ""
            self.err.write(f"{ERASE_LINE}counting: {self.totals.seconds:.0f} s{window}, "
                           f"{self.totals.total_calls:,} calls so far")
            self.err.flush()
            self.drawn = True

    def close(self) -> None:
        """Before the final report: the last frame or progress line makes way for it."""
        if not self.drawn:
            return
        stream = self.out if self.mode == "frames" else self.err
        stream.write(CLEAR if self.mode == "frames" else ERASE_LINE)
        stream.flush()
