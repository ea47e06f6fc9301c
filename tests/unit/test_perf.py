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


def cgroups_of(lines: list[str]) -> list[str]:
    """The cgroup names in a recording, in the order perf printed them."""
    names: list[str] = []
    for line in lines:
        if perf.is_data_line(line) and (name := line.split(",")[4]) not in names:
            names.append(name)
    return names


def parse(lines: list[str], counters: list[perf.Counter]) -> perf.Counts:
    (counts,) = perf.parse_interval(lines, counters, cgroups_of(lines))
    return counts


def test_plan_counts_at_exit_with_a_failure_filter() -> None:
    _, counters = recorded("interval-busy.csv")
    by_name: dict[str, list[perf.Counter]] = {}
    for c in counters:
        by_name.setdefault(c.syscall, []).append(c)
    assert by_name["openat"] == [
        perf.Counter("openat", "calls", "syscalls:sys_exit_openat"),
        perf.Counter("openat", "errors", "syscalls:sys_exit_openat", "ret < 0 && ret >= -4095"),
    ]
    # Never return: counted where they enter, no failures.
    assert by_name["exit_group"] == [perf.Counter("exit_group", "calls", "syscalls:sys_enter_exit_group")]
    # Returns with the syscall number set to -1: its exit tracepoint never fires.
    assert by_name["rt_sigreturn"] == [
        perf.Counter("rt_sigreturn", "calls", "syscalls:sys_enter_rt_sigreturn")]
    # Return twice, in the child with 0: a call is the parent's return.
    assert by_name["clone"] == [
        perf.Counter("clone", "calls", "syscalls:sys_exit_clone", "ret != 0"),
        perf.Counter("clone", "errors", "syscalls:sys_exit_clone", "ret < 0 && ret >= -4095"),
    ]
    assert len(by_name) == 360  # every syscall with tracepoints on this kernel
    assert len(counters) == 717  # two each, but three counted at enter


def test_plan_ignores_other_files_in_the_events_dir() -> None:
    counters = perf.plan(["enable", "filter", "sys_enter_read", "sys_exit_read"],
                         ["enable", "sys_enter_read", "sys_exit_read"])
    assert [c.event for c in counters] == ["syscalls:sys_exit_read"] * 2


def test_argv_counts_every_event_for_each_cgroup() -> None:
    counters = perf.plan(["sys_enter_read", "sys_exit_read"], ["sys_exit_read"])
    args = perf.argv(counters, ["/docker/abc", "/docker/def"], 2500, (5, 6), 7)
    assert args[:2] == ["perf", "stat"]
    assert args[args.index("-I") + 1] == "2500"
    assert "--interval-count" not in args  # perf keeps printing until stopped (see perfrun)
    assert args[args.index("--control") + 1] == "fd:5,6"
    assert args[args.index("--log-fd") + 1] == "7"
    assert args[-2:] == ["--for-each-cgroup", "/docker/abc,/docker/def"]
    assert args.index("--filter") == args.index("-e", args.index("-e") + 1) + 2
    assert "-a" in args


def test_parse_busy_interval() -> None:
    lines, counters = recorded("interval-busy.csv")
    counts = parse(lines, counters)
    assert counts.seconds == 2.002308221
    assert counts.calls["getppid"] == 3_588_965  # the recorded target was a getppid loop
    assert sum(counts.calls.values()) == 3_588_965  # and made no other call
    assert counts.errors["getppid"] == 0
    assert set(counts.calls) == {c.syscall for c in counters}


def test_parse_idle_interval_of_not_counted() -> None:
    lines, counters = recorded("interval-idle.csv")
    assert "<not counted>" in lines[0]
    counts = parse(lines, counters)
    assert counts.seconds == 1.001198044
    assert sum(counts.calls.values()) == 0 and sum(counts.errors.values()) == 0


def test_parse_interval_cut_short_by_sigint() -> None:
    lines, counters = recorded("interval-sigint.csv")
    counts = parse(lines, counters)
    assert counts.seconds == 1.500657196  # asked for 10 s, stopped at 1.5 s
    assert counts.calls["getppid"] == 2_329_704


def test_parse_rejects_a_missing_line() -> None:
    lines, counters = recorded("interval-busy.csv")
    with pytest.raises(perf.PerfOutputError, match="717 counters"):
        parse(lines[:-1], counters)


def test_parse_rejects_lines_out_of_order() -> None:
    lines, counters = recorded("interval-busy.csv")
    swapped = [lines[2], lines[0], lines[1], *lines[3:]]
    with pytest.raises(perf.PerfOutputError, match="expected syscalls:sys_exit_"):
        parse(swapped, counters)


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
        parse([",".join(parts), *lines[1:]], counters)


def test_parse_rejects_two_intervals() -> None:
    lines, counters = recorded("interval-busy.csv")
    parts = lines[1].split(",")
    parts[0] = "4.003"
    with pytest.raises(perf.PerfOutputError, match="more than one interval"):
        parse([lines[0], ",".join(parts), *lines[2:]], counters)


def test_comment_and_blank_lines_are_skipped() -> None:
    lines, counters = recorded("interval-busy.csv")
    counts = parse(["# started on Wed\n", "\n", *lines], counters)
    assert counts.calls["getppid"] == 3_588_965


def test_parse_two_cgroups_in_one_interval() -> None:
    # Recorded with two workload targets: the first made 4,321 getppid and 4,321 failing
    # fchdir calls during the window, the second 1,234 and 1,234.
    lines, counters = recorded("interval-two-cgroups.csv")
    names = cgroups_of(lines)
    assert len(names) == 2
    first, second = perf.parse_interval(lines, counters, names)
    assert (first.calls["getppid"], first.calls["fchdir"], first.errors["fchdir"]) == (4321, 4321, 4321)
    assert (second.calls["getppid"], second.calls["fchdir"], second.errors["fchdir"]) == (1234, 1234, 1234)
    assert first.seconds == second.seconds == 3.003044196


def test_the_helpers_cgroup_names_pair_with_what_perf_prints() -> None:
    # The helper names a cgroup as /proc/<pid>/cgroup does, /docker/<id>; perf prints it
    # without the leading slash. Both are the same cgroup.
    lines, counters = recorded("interval-two-cgroups.csv")
    printed = cgroups_of(lines)
    assert all(not name.startswith("/") for name in printed)
    first, second = perf.parse_interval(lines, counters, ["/" + name for name in printed])
    assert (first.calls["getppid"], second.calls["getppid"]) == (4321, 1234)


def test_parse_checks_the_cgroup_of_every_line() -> None:
    lines, counters = recorded("interval-two-cgroups.csv")
    with pytest.raises(perf.PerfOutputError, match="perf printed"):
        perf.parse_interval(lines, counters, list(reversed(cgroups_of(lines))))


def test_a_cgroup_name_perf_would_read_as_a_pattern_is_refused() -> None:
    counters = perf.plan(["sys_exit_read"], ["sys_exit_read"])
    for name in ("/docker/a,b", "/docker/(x)", ""):
        with pytest.raises(ValueError, match="cannot be given"):
            perf.argv(counters, [name], 1000, (5, 6), 7)


def test_targets_are_split_over_perf_processes_by_open_files() -> None:
    from plugin.helper.engine import HelperFailure
    from plugin.helper.shards import shard_size

    per_target = 717 * 2  # counters x CPUs, this machine
    assert shard_size(per_target, 20_000) == 13  # Docker's limit here: 20 targets, 2 perfs
    assert shard_size(per_target, 1 << 20) == 730
    with pytest.raises(HelperFailure, match="open files for one container"):
        shard_size(per_target, 2000)


def test_the_end_of_a_window_from_perfs_prints() -> None:
    from plugin.helper.shards import is_tick, window_end

    zero = 1000.0  # perf's time 0 on the monotonic clock
    # The one tick of a whole window: the end, no stop.
    assert is_tick(3.002, 0.0, 3.0) and window_end(3.002, 3.002, zero, None, 3.0) == (3.002, True)
    # A tick before the end of a window printed every second.
    assert window_end(1.001, 1.001, zero, None, 3.0) == (1.001, False)
    # Ctrl-C at 5.2 s into a 60 s window: perf's SIGINT print is stamped 5.25; not a tick.
    assert not is_tick(5.25, 0.0, 60.0)
    assert window_end(5.25, 0.0, zero, zero + 5.2, 60.0) == (5.2, True)
    # perf's print on its way out when the SIGINT missed its wait: a stamp that means nothing.
    assert not is_tick(0.001, 2.02, 1.0)
    assert window_end(0.001, 2.02, zero, zero + 2.3, 60.0) == (2.3, True)
    # end_window at 2.5 s (events disabled); the next tick, stamped 3.05, carries the rest.
    assert is_tick(3.05, 2.02, 1.0)
    assert window_end(3.05, 3.05, zero, zero + 2.5, 2.5) == (2.5, True)
    # A tick printed just before the stop: not the last; the SIGINT print follows.
    assert window_end(2.02, 2.02, zero, zero + 2.3, 60.0) == (2.02, False)


def test_parse_rejects_a_line_of_too_few_fields() -> None:
    lines, counters = recorded("interval-busy.csv")
    with pytest.raises(perf.PerfOutputError, match="too few fields"):
        perf.parse_interval([",".join(lines[0].split(",")[:4]) + "\n", *lines[1:]], counters,
                            cgroups_of(lines))


@pytest.mark.parametrize("given_slash, printed_slash", [(True, False), (False, False), (False, True),
                                                        (True, True)])
def test_a_cgroup_is_one_with_or_without_its_leading_slash(given_slash: bool, printed_slash: bool) -> None:
    # perf printed the recording's names without the slash the helper gives them; a name is
    # one cgroup however either side spells it.
    lines, counters = recorded("interval-two-cgroups.csv")
    if printed_slash:
        lines = [",".join(("/" + f) if k == 4 else f for k, f in enumerate(line.split(",")))
                 for line in lines]
    names = [("/" if given_slash else "") + name.lstrip("/") for name in cgroups_of(lines)]
    first, second = perf.parse_interval(lines, counters, names)
    assert (first.calls["getppid"], second.calls["getppid"]) == (4321, 1234)


def test_argv_is_perf_stat_with_csv_output() -> None:
    counters = perf.plan(["sys_enter_read", "sys_exit_read", "sys_enter_exit"], ["sys_exit_read"])
    assert perf.argv(counters, ["/docker/abc"], 1000, (5, 6), 7, perf="/usr/bin/perf") == [
        "/usr/bin/perf", "stat", "--no-big-num", "-x", ",", "-I", "1000", "-a", "--control", "fd:5,6",
        "--log-fd", "7", "-e", "syscalls:sys_enter_exit", "-e", "syscalls:sys_exit_read",
        "-e", "syscalls:sys_exit_read", "--filter", "ret < 0 && ret >= -4095",
        "--for-each-cgroup", "/docker/abc"]


def test_a_syscall_with_only_an_enter_tracepoint_is_counted_where_it_enters() -> None:
    assert perf.plan(["sys_enter_foo", "sys_enter_read"], ["sys_exit_read"]) == [
        perf.Counter("foo", "calls", "syscalls:sys_enter_foo"),
        perf.Counter("read", "calls", "syscalls:sys_exit_read"),
        perf.Counter("read", "errors", "syscalls:sys_exit_read", perf.ERROR_FILTER)]


def test_five_fields_are_enough_and_an_empty_count_is_zero() -> None:
    lines, counters = recorded("interval-busy.csv")
    short = [",".join(line.split(",")[:5]) + "\n" for line in lines]
    busy = next(i for i, line in enumerate(short) if line.split(",")[1] not in ("0", ""))
    short[busy] = short[busy].replace(f",{short[busy].split(',')[1]},", ",,")
    counts = perf.parse_interval(short, counters, cgroups_of(lines))[0]
    assert sum(counts.calls.values()) == sum(counts.errors.values()) == 0


def test_a_stamp_of_zero_is_zero() -> None:
    # perf's print on its way out, when a stop missed its wait, can be stamped 0.
    lines, counters = recorded("interval-busy.csv")
    zero = ["0.000000000," + line.split(",", 1)[1] for line in lines]
    assert perf.parse_interval(zero, counters, cgroups_of(lines))[0].seconds == 0.0
    assert perf.parse_interval([], [], ["/docker/x"]) == [perf.Counts(0.0, {}, {})]


LONG = "x" * 300


@pytest.mark.parametrize("field, at, message", [
    (1, f"12{LONG}", "not a count: {!r}"),
    (1, "<not supported>", "perf cannot count this event: {!r}"),
    (-1, "<not supported>", "perf cannot count this event: {!r}"),  # and a long line after it
    (0, f"t{LONG}", "not a timestamp: {!r}"),
    (3, f"syscalls:sys_exit_other{LONG}", "expected syscalls:sys_exit_accept of {cgroup}, perf printed {!r}"),
])
def test_parse_errors_show_the_line_as_perf_printed_it(field: int, at: str, message: str) -> None:
    lines, counters = recorded("interval-busy.csv")
    parts = lines[0].split(",")
    if field < 0:
        parts[1], parts[-1] = at, LONG
    else:
        parts[field] = at
    for end in (" X  \n", "  X\n"):  # blanks or an X at its end are part of the line
        bad = ",".join(parts).rstrip("\n") + end
        with pytest.raises(perf.PerfOutputError) as info:
            parse([bad, *lines[1:]], counters)
        line = bad.removesuffix("\n")
        assert str(info.value) == message.format(line[:200], cgroup=cgroups_of(lines)[0])
    with pytest.raises(perf.PerfOutputError) as info:
        perf.parse_interval([",".join(parts[:4]) + LONG + "\n", *lines[1:]], counters, cgroups_of(lines))
    assert str(info.value) == f"too few fields: {(','.join(parts[:4]) + LONG)[:200]!r}"


def test_parse_errors_of_counts_and_intervals_say_so_exactly() -> None:
    lines, counters = recorded("interval-busy.csv")
    with pytest.raises(perf.PerfOutputError) as info:
        parse(lines[:-1], counters)
    assert str(info.value) == "perf printed 716 counts for 717 counters"
    later = [lines[0], "9" + lines[1], *lines[2:]]
    with pytest.raises(perf.PerfOutputError) as info:
        parse(later, counters)
    assert str(info.value) == "counts of more than one interval"


def test_a_cgroup_whose_name_starts_with_x() -> None:
    # The slash is all that is stripped from either spelling: a cgroup named X... stays X...
    lines, counters = recorded("interval-two-cgroups.csv")
    renamed = [line.replace(",docker/", ",Xdocker/") for line in lines]
    first, second = perf.parse_interval(renamed, counters, ["/X" + name for name in cgroups_of(lines)])
    assert (first.calls["getppid"], second.calls["getppid"]) == (4321, 1234)
