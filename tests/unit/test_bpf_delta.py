"""The BPF engine's arithmetic at its edges: what delta() makes of two snapshots when a slot or
a call is new, when nothing changed, and when only the time did; and the bytes handed to the
program for the limits of its arrays. Syscall numbers and errnos are x86_64's (the shipped
tables: 110 getppid, 81 fchdir, 0 read; errno 9 EBADF, 2 ENOENT)."""

from __future__ import annotations

import dataclasses

from plugin.helper import bpfengine, systables
from plugin.helper.bpfengine import Snapshot


def x86() -> systables.Arch:
    return systables.for_machine("x86_64")


def test_a_slot_the_after_snapshot_lacks_did_nothing() -> None:
    before = Snapshot({0: {(0, 110): [5, 0, 0, 0]}}, {0: {(0, 81): {9: 1}}})
    got = bpfengine.delta(before, Snapshot({}, {}), 0, x86())
    assert (got.calls, got.errors, got.errnos, got.time_ns, got.max_ns) == ({}, {}, {}, {}, {})


def test_a_slot_the_before_snapshot_lacks_counts_from_zero() -> None:
    after = Snapshot({1: {(0, 81): [4, 4, 900, 400]}}, {1: {(0, 81): {9: 3, 2: 1}}})
    got = bpfengine.delta(Snapshot({}, {}), after, 1, x86())
    assert (got.calls, got.errors) == ({"fchdir": 4}, {"fchdir": 4})
    assert got.errnos == {"fchdir": {"EBADF": 3, "ENOENT": 1}}
    assert (got.time_ns, got.max_ns) == ({"fchdir": 900}, {"fchdir": 400})


def test_what_did_not_change_is_left_out() -> None:
    same = Snapshot({0: {(0, 110): [7, 0, 5000, 300], (0, 81): [2, 2, 80, 50]}}, {0: {(0, 81): {9: 2}}})
    later = Snapshot({0: {(0, 110): [7, 0, 5000, 300], (0, 81): [3, 3, 80, 50]}},
                     {0: {(0, 81): {9: 2, 2: 1}}})
    got = bpfengine.delta(same, later, 0, x86())
    assert (got.calls, got.errors) == ({"fchdir": 1}, {"fchdir": 1})
    assert got.errnos == {"fchdir": {"ENOENT": 1}}  # EBADF stayed at 2
    assert got.time_ns == {} and got.max_ns == {}  # no time was spent in the window


def test_time_is_subtracted_the_longest_call_is_not() -> None:
    before = Snapshot({0: {(0, 0): [10, 0, 1000, 700]}}, {})
    after = Snapshot({0: {(0, 0): [10, 0, 1500, 90]}}, {})  # the engine zeroed the longest
    got = bpfengine.delta(before, after, 0, x86())
    assert got.calls == {} and (got.time_ns, got.max_ns) == ({"read": 500}, {"read": 90})


def test_config_flags_only_the_numbers_it_has_slots_for() -> None:
    arch = x86()
    beyond = dataclasses.replace(arch, native={**arch.native, bpfengine.NR_SLOTS: "clone"})
    twice = bpfengine.CONFIG.unpack(bpfengine.config_bytes(beyond, latency=False))[8]
    assert [nr for nr, flag in enumerate(twice) if flag] == [56, 57, 58, 435]
    assert set(twice) == {0, 1}


def test_control_takes_up_to_max_levels() -> None:
    levels = list(range(1, bpfengine.MAX_LEVELS + 1))
    cgroups = {1000 + level: (level - 1, level) for level in levels}
    enabled, n, *got = bpfengine.CONTROL.unpack(bpfengine.control_bytes(True, cgroups))
    assert (enabled, n, got[:bpfengine.MAX_LEVELS]) == (1, bpfengine.MAX_LEVELS, levels)
    off = bpfengine.CONTROL.unpack(bpfengine.control_bytes(False, {}))
    assert off[:2 + bpfengine.MAX_LEVELS] == (0, 0, *[0] * bpfengine.MAX_LEVELS)


def test_a_report_so_far_agrees_with_itself_whichever_map_was_read_later() -> None:
    # Read while counting goes on: access's errnos were read after one more failure (6 > 5),
    # openat's before one (2 < 3), close's errors have no errnos (perf), getppid never failed.
    from plugin.helper.engine import Counts, settled
    from plugin.helper.main import rows

    read = Counts({"access": 5, "openat": 9, "close": 4, "getppid": 7},
                  {"access": 5, "openat": 3, "close": 1, "getppid": 0},
                  {"access": {"ENOENT": 6}, "openat": {"ENOENT": 1, "EACCES": 1}},
                  {"access": 100}, {"access": 40})
    got = settled(read)
    assert got.errors == {"access": 6, "openat": 2, "close": 1, "getppid": 0}
    assert got.calls == {"access": 6, "openat": 9, "close": 4, "getppid": 7}
    assert (got.errnos, got.time_ns, got.max_ns) == (read.errnos, read.time_ns, read.max_ns)
    for row in rows(got):
        assert row["calls"] >= row["errors"]
        if "errnos" in row:
            assert sum(row["errnos"].values()) == row["errors"], row


def test_an_interval_keeps_exact_calls_and_only_errnos_and_times_that_agree() -> None:
    # An interval read while counting goes on: access's errnos ran one failure ahead of its
    # errors; openat's agree; read's longest call was one of an earlier interval (50 > 30).
    from plugin.helper.engine import Counts, agreeing
    from plugin.helper.main import rows

    read = Counts({"access": 5, "openat": 9, "read": 3}, {"access": 5, "openat": 2, "read": 0},
                  {"access": {"ENOENT": 6}, "openat": {"ENOENT": 1, "EACCES": 1}},
                  {"openat": 90, "read": 30}, {"openat": 20, "read": 50})
    got = agreeing(read)
    assert (got.calls, got.errors) == (read.calls, read.errors)  # never made to agree
    assert got.errnos == {"openat": {"ENOENT": 1, "EACCES": 1}}
    assert (got.time_ns, got.max_ns) == ({"openat": 90}, {"openat": 20})
    by_name = {row["name"]: row for row in rows(got)}
    assert "errnos" not in by_name["access"] and by_name["openat"]["errnos"] == {"EACCES": 1, "ENOENT": 1}
    assert "time_ns" not in by_name["read"]


def test_absent_names_are_zeros_where_errnos_and_times_are_checked() -> None:
    # Counts' rule: a name absent from a dict is a zero there.
    from plugin.helper.engine import Counts, agreeing

    read = Counts({"close": 4, "statx": 2, "read": 1, "write": 3, "dup": 1}, {"statx": 0},
                  {"close": {"EBADF": 1}, "statx": {}, "dup": {}},  # close: 1 errno, no errors
                  {"read": 7, "write": 0, "dup": 5}, {"read": 7, "dup": 5})  # write: no max
    got = agreeing(read)
    assert got.errnos == {"statx": {}, "dup": {}}  # 0 errnos for 0 errors (absent or not) agree
    assert got.time_ns == {"read": 7, "write": 0, "dup": 5}  # a single call: its time is its max
    assert got.max_ns == {"read": 7, "write": 0, "dup": 5}
