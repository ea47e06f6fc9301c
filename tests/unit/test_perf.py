"""perf.py against perf's real output, recorded in tests/fixtures/perf (see its README)."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin.helper import perf

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "perf"


def recorded(name: str) -> tuple[list[str], list[perf.Counter]]:
    lines = (FIXTURES / name).read_text().splitlines(keepends=True)
    events = (FIXTURES / f"{name}.events").read_text().split()
    return lines, perf.plan(events, events)


def test_plan_counts_at_exit_with_a_failure_filter() -> None:
    _, counters = recorded("interval-busy.csv")
    by_name: dict[str, list[perf.Counter]] = {}
    for c in counters:
        by_name.setdefault(c.syscall, []).append(c)
    assert by_name["openat"] == [
        perf.Counter("openat", "calls", "syscalls:sys_exit_openat"),
        perf.Counter("openat", "errors", "syscalls:sys_exit_openat", "ret < 0"),
    ]
    # Never return: counted where they enter, no failures.
    assert by_name["exit_group"] == [perf.Counter("exit_group", "calls", "syscalls:sys_enter_exit_group")]
    assert [c.kind for c in by_name["rt_sigreturn"]] == ["calls"]
    # Return twice (parent and child): counted where they enter, failures where they exit.
    assert by_name["clone"] == [
        perf.Counter("clone", "calls", "syscalls:sys_enter_clone"),
        perf.Counter("clone", "errors", "syscalls:sys_exit_clone", "ret < 0"),
    ]
    assert len(by_name) == 360  # every syscall with tracepoints on this kernel
    assert len(counters) == 717


def test_plan_ignores_other_files_in_the_events_dir() -> None:
    counters = perf.plan(["enable", "filter", "sys_enter_read", "sys_exit_read"],
                         ["enable", "sys_enter_read", "sys_exit_read"])
    assert [c.event for c in counters] == ["syscalls:sys_exit_read"] * 2


def test_argv_puts_the_cgroup_after_every_event() -> None:
    counters = perf.plan(["sys_enter_read", "sys_exit_read"], ["sys_exit_read"])
    args = perf.argv(counters, "/docker/abc", 2500, (5, 6), 7)
    assert args[:2] == ["perf", "stat"]
    assert args[args.index("-I") + 1] == "2500"
    assert "--interval-count" not in args  # perf keeps printing until stopped (see perfrun)
    assert args[args.index("--control") + 1] == "fd:5,6"
    assert args[args.index("--log-fd") + 1] == "7"
    assert args[-2:] == ["-G", "/docker/abc"]
    assert args.index("--filter") == args.index("-e", args.index("-e") + 1) + 2
    assert "-a" in args


def test_parse_busy_interval() -> None:
    lines, counters = recorded("interval-busy.csv")
    counts = perf.parse_interval(lines, counters)
    assert counts.seconds == pytest.approx(2.002106424)
    assert counts.calls["getppid"] > 1_000_000  # the recorded target was a getppid loop
    assert counts.errors["getppid"] == 0
    assert set(counts.calls) == {c.syscall for c in counters}


def test_parse_idle_interval_of_not_counted() -> None:
    lines, counters = recorded("interval-idle.csv")
    assert "<not counted>" in lines[0]
    counts = perf.parse_interval(lines, counters)
    assert counts.seconds == pytest.approx(1.001945850)
    assert sum(counts.calls.values()) == 0 and sum(counts.errors.values()) == 0


def test_parse_interval_cut_short_by_sigint() -> None:
    lines, counters = recorded("interval-sigint.csv")
    counts = perf.parse_interval(lines, counters)
    assert counts.seconds == pytest.approx(1.500368789)  # asked for 10 s, stopped at 1.5 s
    assert counts.calls["getppid"] == 3523434


def test_parse_rejects_a_missing_line() -> None:
    lines, counters = recorded("interval-busy.csv")
    with pytest.raises(perf.PerfOutputError, match="717 counters"):
        perf.parse_interval(lines[:-1], counters)


def test_parse_rejects_lines_out_of_order() -> None:
    lines, counters = recorded("interval-busy.csv")
    swapped = [lines[2], lines[0], lines[1], *lines[3:]]
    with pytest.raises(perf.PerfOutputError, match="expected syscalls:sys_exit_"):
        perf.parse_interval(swapped, counters)


@pytest.mark.parametrize("field, message", [
    ("<not supported>", "cannot count"),
    ("12x", "not a count"),
    ("-5", "not a count"),
    ("\u00b2", "not a count"),  # str.isdigit() says yes, int() says no
    ("\u0661\u0662", "not a count"),  # int() would read 12
])
def test_parse_rejects_bad_counts(field: str, message: str) -> None:
    lines, counters = recorded("interval-busy.csv")
    parts = lines[0].split(",")
    parts[1] = field
    with pytest.raises(perf.PerfOutputError, match=message):
        perf.parse_interval([",".join(parts), *lines[1:]], counters)


def test_parse_rejects_two_intervals() -> None:
    lines, counters = recorded("interval-busy.csv")
    parts = lines[1].split(",")
    parts[0] = "4.003"
    with pytest.raises(perf.PerfOutputError, match="more than one interval"):
        perf.parse_interval([lines[0], ",".join(parts), *lines[2:]], counters)


def test_comment_and_blank_lines_are_skipped() -> None:
    lines, counters = recorded("interval-busy.csv")
    counts = perf.parse_interval(["# started on Wed\n", "\n", *lines], counters)
    assert counts.calls["getppid"] > 0
