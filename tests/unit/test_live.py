"""The live view from the recorded intervals (tests/fixtures/helper/intervals-bpf.jsonl)."""

from __future__ import annotations

import io
import json

import pytest

from plugin import live, render
from plugin.errors import ContractError

from .test_report import INTERVALS as BY_ENGINE
from .test_report import RECORDED as REPORTS
from .test_report import TARGETS, load

INTERVALS, RECORDED = BY_ENGINE["bpf"], REPORTS["bpf"]


def fed(mode: str) -> tuple[live.Display, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    display = live.Display(live.Totals(TARGETS), mode, render.View(), out, err, 3.0)
    for raw in INTERVALS:
        display(raw)
    return display, out, err


def test_json_lines_add_up_to_the_final_report() -> None:
    _, out, _ = fed("lines")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [d["index"] for d in lines] == [1, 2, 3]
    assert all(d["kind"] == "interval" for d in lines)
    # Each line's totals are the sum of the intervals so far, and the last is the report's.
    assert sum(d["interval"]["calls"] for d in lines) == lines[-1]["total"]["calls"]
    rep = load(RECORDED)
    assert lines[-1]["total"]["calls"] == rep.total_calls
    assert [t["total"]["calls"] for t in lines[-1]["targets"]] == [t.total_calls for t in rep.targets]
    assert lines[-1]["elapsed_seconds"] == rep.window.measured_seconds == 3.0  # the BPF engine's window
    row = {r["name"]: r for r in lines[-1]["targets"][1]["syscalls"]}["getppid"]
    assert row["calls"] == 1500


def test_rates_are_over_the_last_interval() -> None:
    _, out, _ = fed("lines")
    second = json.loads(out.getvalue().splitlines()[1])
    # The recorded second interval, 1.0 s to 2.0 s: the host's 777 + 1,500 getppid and fchdir,
    # the workloads' polling (access, clock_nanosleep) and the two forks of the first target.
    assert second["interval_seconds"] == 1.0
    assert [(r["name"], r["interval_calls"], r["calls_per_second"]) for r in second["syscalls"]] == [
        ("fchdir", 2277, 2277.0), ("getppid", 2277, 2277.0), ("access", 386, 386.0),
        ("clock_nanosleep", 384, 384.0), ("close", 4, 4.0), ("openat", 4, 4.0), ("exit_group", 2, 2.0),
        ("fork", 2, 2.0), ("read", 2, 2.0), ("unlink", 2, 2.0), ("wait4", 2, 2.0)]


def test_frames_redraw_in_place_and_fit_the_height() -> None:
    totals = live.Totals(TARGETS)
    for raw in INTERVALS:
        totals.add(raw)
    text = live.frame(totals, render.View(), height=8)
    lines = text.splitlines()
    assert lines[0].startswith("web, db: 6,878 syscalls in 3.0 s")
    assert len(lines) == 2 + 2 + 3  # title, blank, header, rule, height - 5 rows
    display, out, _ = fed("frames")
    assert out.getvalue().count(live.CLEAR) == 3
    display.close()
    assert out.getvalue().endswith(live.CLEAR)  # the final table takes the screen


def test_progress_goes_to_stderr_only() -> None:
    display, out, err = fed("progress")
    assert out.getvalue() == ""
    assert err.getvalue().rsplit(live.ERASE_LINE, 1)[-1] == "counting: 3 s / 3 s, 6,878 calls so far"
    display.close()
    assert err.getvalue().endswith(live.ERASE_LINE)


def test_none_shows_nothing_but_still_checks() -> None:
    display, out, err = fed("none")
    assert out.getvalue() == err.getvalue() == ""
    with pytest.raises(ContractError, match="back in time"):
        display(INTERVALS[0])


def test_progress_only_for_windows_worth_it() -> None:
    assert live.progress_interval(1.5) is None
    assert live.progress_interval(30.0) == live.PROGRESS_EVERY_S


def test_top_limits_the_rows_of_a_line_not_its_totals() -> None:
    totals = live.Totals(TARGETS)
    for raw in INTERVALS:
        totals.add(raw)
    whole, one = live.document(totals), live.document(totals, top=1)
    assert len(one["syscalls"]) == 1 and len(whole["syscalls"]) > 1
    assert one["total"] == whole["total"] and one["targets"][1]["total"] == whole["targets"][1]["total"]
    assert one["syscalls"][0] == whole["syscalls"][0]
