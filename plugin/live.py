"""While the helper counts: running totals from its `interval` documents, shown as a live table
redrawn in place (a terminal), as one JSON line per interval (anything else), or as a progress
line on stderr during a fixed window. Output goes to the streams handed in.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from . import render, report
from .report import SyscallCount, TargetInfo

# As docker stats redraws: the screen cleared once, then each frame from the top left, every
# line cleared to its end and the screen below the frame cleared, so that frames are drawn over
# each other and none goes to a terminal's scrollback.
CLEAR = "\x1b[2J\x1b[H"
HOME, CLEAR_LINE, CLEAR_BELOW = "\x1b[H", "\x1b[K", "\x1b[J"
ERASE_LINE = "\r\x1b[K"
PROGRESS_EVERY_S = 1.0
FRAME_PROCESSES = 5  # --by-process: the processes a live frame lists


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
    by_process: bool = False  # the intervals carry each target's processes
    processes: list[dict[int, report.ProcessCounts]] = field(default_factory=list)  # by host pid
    not_kept: list[int] = field(default_factory=list)  # per target: processes not kept so far

    def __post_init__(self) -> None:
        self.so_far = [() for _ in self.targets]
        self.processes = [{} for _ in self.targets]
        self.not_kept = [0 for _ in self.targets]

    def add(self, raw: bytes, latency: bool = False) -> report.Interval:
        interval = report.interval_from_helper(raw, pids=[t.pid for t in self.targets],
                                               previous=self.seconds, latency=latency,
                                               by_process=self.by_process)
        self.so_far = [report.summed([before, now])
                       for before, now in zip(self.so_far, interval.targets, strict=True)]
        for known, now in zip(self.processes, interval.processes or (), strict=False):
            for p in now:
                was = known.get(p.host_pid)
                known[p.host_pid] = p if was is None else dataclasses.replace(
                    was, pid=was.pid or p.pid, comm=p.comm,
                    syscalls=report.summed([was.syscalls, p.syscalls]))
        self.not_kept = list(interval.not_kept) or self.not_kept
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

    def process_rows(self, i: int) -> list[dict[str, Any]]:
        """--by-process: target i's processes so far, busiest in the last interval first: calls
        and failures so far and in the last interval."""
        assert self.last is not None
        recent = {p.host_pid: p for p in (self.last.processes or [()] * len(self.targets))[i]}
        out = []
        for p in self.processes[i].values():
            r = recent.get(p.host_pid)
            out.append({"pid": p.pid, "host_pid": p.host_pid, "comm": p.comm, "calls": p.total_calls,
                        "errors": p.total_errors, "interval_calls": r.total_calls if r else 0,
                        "interval_errors": r.total_errors if r else 0})
        out.sort(key=lambda row: (-row["interval_calls"], -row["calls"], row["host_pid"]))
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

    def target(i: int, t: TargetInfo) -> dict[str, Any]:
        entry = {"id": t.id, "name": t.name, "pid": t.pid, **summary(totals.rows(i))}
        if totals.by_process:
            entry["processes"] = totals.process_rows(i)
        return entry

    return {
        "schema": report.SCHEMA, "kind": "interval", "index": totals.last.index,
        "elapsed_seconds": round(totals.seconds, 9), "interval_seconds": round(totals.last_seconds, 9),
        **summary(totals.rows()),
        "targets": [target(i, t) for i, t in enumerate(totals.targets)],
    }


def so_far(totals: Totals, engine: str, latency: bool, window: float | None) -> report.Report:
    """The intervals so far as a Report, so that a frame has the final table's columns (and,
    with --by-process, its processes: those kept, and the rest of the target's calls)."""
    targets = []
    for i, (info, rows) in enumerate(zip(totals.targets, totals.so_far, strict=True)):
        counted = report.TargetCounts(info, report.by_calls(rows))
        if totals.by_process:
            kept = sorted(totals.processes[i].values(), key=lambda p: (-p.total_calls, p.host_pid))
            kept = kept[:report.MAX_PROCESSES]
            rest = rest_of(rows, [p.syscalls for p in kept])
            other = report.OtherProcesses(totals.not_kept[i], False, rest) \
                if rest or totals.not_kept[i] else None
            counted = dataclasses.replace(counted, processes=tuple(kept), other_processes=other)
        targets.append(counted)
    return report.Report(targets=tuple(targets), window=report.Window(window, totals.seconds, ""),
                         host=report.Host("", "", 0, 0, "", ""), syscalls=report.summed(totals.so_far),
                         partial=False, engine=engine, latency=latency, by_process=totals.by_process)


def rest_of(rows: Sequence[SyscallCount],
            parts: Sequence[Sequence[SyscallCount]]) -> tuple[SyscallCount, ...]:
    """A target's rows less its processes', by syscall, never below zero: the live view reads
    the processes a moment after the target, so they may be a little ahead (no errnos)."""
    taken = {s.name: s for s in report.summed(parts)}
    out = []
    for s in rows:
        t = taken.get(s.name)
        calls, errors = max(0, s.calls - (t.calls if t else 0)), max(0, s.errors - (t.errors if t else 0))
        if calls or errors:
            out.append(SyscallCount(s.name, calls, errors))
    return report.by_calls(out)


def hidden_by_top(rep: report.Report, view: render.View) -> int:
    """Rows --top leaves out: of the table, or under each class with --by-class."""
    if view.top is None:
        return 0
    every = render.rows(rep.syscalls, dataclasses.replace(view, top=None))
    if not view.by_class:
        return len(every) - len(every[:view.top])
    return sum(max(0, len(members) - view.top) for members in render.by_class(every).values())


def fit(table: str, height: int, hidden: int = 0) -> str:
    """render.table's text cut to `height` lines: the title, header and total kept, body rows
    cut from the bottom, and `... and N more` saying how many rows are not shown."""
    lines = table.split("\n")
    rule = lines[3]
    last_rule = max(i for i, line in enumerate(lines) if i > 3 and line == rule)
    head, body, tail = lines[:4], lines[4:last_rule], lines[last_rule:]
    room = max(1, height - 1 - len(head) - len(tail) - 1)  # a line for the shell, one for "more"
    more = hidden
    if len(body) > room:
        more += len(body) - room
        body = body[:room]
    if more:
        body.append(f"... and {more} more")
    return "\n".join(head + body + tail)


def frame(totals: Totals, view: render.View, height: int, engine: str = "perf",
          latency: bool = False, window: float | None = None) -> str:
    """A live table: the final table's columns and order, for the counts so far, fit to
    `height` lines."""
    rep = so_far(totals, engine, latency, window)
    # A frame lists the busiest few processes: the rest is one row, so that it fits.
    shown = dataclasses.replace(view, processes_top=FRAME_PROCESSES)
    return fit(render.table(rep, shown), height, hidden_by_top(rep, view))


class Display:
    """Where the intervals go: `mode` is "frames" (a terminal), "tables" (--format table, not a
    terminal: one plain table per interval), "lines" (JSON lines), "progress" (a line on
    stderr) or "none"."""

    def __init__(self, totals: Totals, mode: str, view: render.View, out: TextIO, err: TextIO,
                 window: float | None = None, latency: bool = False) -> None:
        self.totals, self.mode, self.view, self.out, self.err = totals, mode, view, out, err
        self.window, self.latency = window, latency
        self.engine = "perf"  # until the helper says which engine counts
        self.drawn = False

    def counting_with(self, engine: str) -> None:
        self.engine = engine if engine in report.ENGINES else self.engine

    def __call__(self, raw: bytes) -> None:
        self.totals.add(raw, latency=self.latency and self.engine == "bpf")
        if self.mode == "lines":
            self.out.write(json.dumps(document(self.totals, self.view.top), separators=(",", ":")) + "\n")
            self.out.flush()
        elif self.mode == "frames":
            self.draw(frame(self.totals, self.view, shutil.get_terminal_size().lines, self.engine,
                            self.latency and self.engine == "bpf", self.window))
        elif self.mode == "tables":
            rep = so_far(self.totals, self.engine, self.latency and self.engine == "bpf", self.window)
            self.out.write(render.table(rep, self.view) + "\n\n")
            self.out.flush()
        elif self.mode == "progress":
            window = f" / {self.window:g} s" if self.window else ""
            self.err.write(f"{ERASE_LINE}counting: {self.totals.seconds:.0f} s{window}, "
                           f"{self.totals.total_calls:,} calls so far")
            self.err.flush()
            self.drawn = True

    def draw(self, text: str) -> None:
        """Over the frame before, from the top left: the screen is cleared once, at the first."""
        lines = text.split("\n")
        self.out.write((HOME if self.drawn else CLEAR) + "".join(line + CLEAR_LINE + "\n" for line in lines)
                       + CLEAR_BELOW)
        self.out.flush()
        self.drawn = True

    def close(self) -> None:
        """Before the final report: the progress line makes way for it (a frame is drawn over
        by the report itself, through draw)."""
        if self.drawn and self.mode == "progress":
            self.err.write(ERASE_LINE)
            self.err.flush()
