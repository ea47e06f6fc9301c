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


def totalled() -> live.Totals:
    totals = live.Totals(TARGETS)
    for raw in INTERVALS:
        totals.add(raw)
    return totals


def test_a_frame_has_the_final_tables_columns_and_fits_the_height() -> None:
    final = render.table(load(RECORDED), render.View()).splitlines()
    text = live.frame(totalled(), render.View(), height=12, engine="bpf", latency=True, window=3.0)
    lines = text.splitlines()
    assert lines[0].startswith("2 containers (web, db): 6,878 syscalls in 3.00 s")
    assert lines[2].split() == final[2].split()  # SYSCALL, web, db, CALLS, ERRORS, ERRNO, ...
    # below the total, what TIME is
    assert lines[-2:] == ["", render.LATENCY_NOTE]
    assert lines[3] == lines[-4] and lines[-3].split()[:4] == ["total", "2,719", "4,159", "6,878"]
    assert len(lines) == 12 - 1  # a line left for the cursor
    shown = [line.split()[0] for line in lines[4:-5]]
    called = len(render.rows(load(RECORDED).syscalls, render.View()))
    assert called == 11 and lines[-5] == f"... and {called - len(shown)} more"
    assert shown == [line.split()[0] for line in final[4:4 + len(shown)]]  # the final order


def test_a_frame_flags_rows_top_leaves_out_and_groups_by_class() -> None:
    lines = live.frame(totalled(), render.View(top=3), height=50, engine="bpf").splitlines()
    assert len(lines[4:-3]) == 3 and lines[-3] == "... and 8 more"  # 11 called
    grouped = live.frame(totalled(), render.View(by_class=True), height=50, engine="bpf")
    assert grouped.splitlines()[2].split()[:2] == ["CLASS", "SYSCALL"]
    assert "... and" not in grouped
    assert {line.split()[0] for line in grouped.splitlines()[4:-2] if not line.startswith(" ")} >= {
        "file", "process"}


def test_frames_are_drawn_over_each_other_as_docker_stats_draws() -> None:
    display, out, _ = fed("frames")
    text = out.getvalue()
    assert text.startswith(live.CLEAR) and text.count("\x1b[2J") == 1  # the screen cleared once
    frames = text.split(live.HOME)[1:]  # CLEAR ends with HOME too
    assert len(frames) == 3
    for drawn in frames:
        body, below = drawn.rsplit("\n", 1)
        assert below == live.CLEAR_BELOW  # what was under a longer frame goes
        assert all(line.endswith(live.CLEAR_LINE) for line in body.split("\n"))
    display.draw("the final report")
    assert out.getvalue().endswith(live.HOME + "the final report" + live.CLEAR_LINE + "\n"
                                   + live.CLEAR_BELOW)


def test_piped_tables_are_plain_and_follow_each_other() -> None:
    _, out, _ = fed("tables")
    text = out.getvalue()
    assert "\x1b" not in text
    titles = [line for line in text.split("\n") if line.startswith("2 containers (web, db): ")]
    assert len(titles) == 3 and titles[-1].startswith("2 containers (web, db): 6,878 syscalls")
    assert text.endswith("\n\n")  # a blank line after each


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


def test_the_report_so_far_is_whole_and_says_nothing_it_does_not_know() -> None:
    from plugin import report

    totals = totalled()
    rep = live.so_far(totals, "bpf", latency=False, window=3.0)
    assert rep.window == report.Window(3.0, totals.seconds, "")
    assert rep.host == report.Host("", "", 0, 0, "", "") and rep.partial is False
    assert (rep.engine, rep.latency, rep.total_calls) == ("bpf", False, 6878)
    assert [t.target.name for t in rep.targets] == ["web", "db"]


def test_fit_leaves_a_table_that_fits_as_it_is() -> None:
    table = render.table(live.so_far(totalled(), "bpf", False, 3.0), render.View())
    assert live.fit(table, height=100) == table
    assert live.fit(table, height=100, hidden=2).splitlines()[-3] == "... and 2 more"


def test_fit_cuts_to_one_row_at_least_and_counts_both_cuts() -> None:
    table = render.table(live.so_far(totalled(), "bpf", False, 3.0), render.View(top=5))
    lines = live.fit(table, height=3, hidden=6).splitlines()  # 11 called: 5 shown by --top
    assert len(lines[4:-3]) == 1  # one row, whatever the height
    assert lines[-3] == "... and 10 more"  # 6 left out by --top, 4 by the height


def test_an_empty_frame_is_drawn() -> None:
    empty = live.frame(live.Totals(TARGETS), render.View(), height=20, engine="bpf", window=3.0)
    lines = empty.splitlines()
    assert lines[3] == lines[-2] and lines[-1].split()[0] == "total" and "more" not in empty


def test_rows_top_leaves_out_under_each_class_are_counted() -> None:
    rep = live.so_far(totalled(), "bpf", False, 3.0)
    members = render.by_class(render.rows(rep.syscalls, render.View()))
    over = sum(max(0, len(m) - 1) for m in members.values())
    assert over > 0 and any(len(m) == 1 for m in members.values())  # some classes have one row
    assert live.hidden_by_top(rep, render.View(top=1, by_class=True)) == over
    assert live.hidden_by_top(rep, render.View(top=1)) == 10
    assert live.hidden_by_top(rep, render.View(by_class=True)) == 0
