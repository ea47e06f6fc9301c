"""The helper's window logic at its edges: shards.is_tick and window_end (which print of perf's
is a tick, where the window ends), shard_size and plan (how many targets each perf takes), and
PerfRun.read_interval's deadlines, against real processes that print as perf does."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugin.helper import perfrun
from plugin.helper.engine import HelperFailure
from plugin.helper.shards import MAX_TARGETS, RESERVED_FDS, is_tick, plan, shard_size, window_end

ZERO = 1000.0  # perf's time 0 on the monotonic clock


def test_a_print_half_a_window_after_the_last_tick_is_a_tick() -> None:
    assert is_tick(1.5, 1.0, 1.0)  # exactly half a window: a tick
    assert not is_tick(1.4, 1.0, 1.0)  # less: the answer to a stop
    assert is_tick(4.0, 2.0, 4.0) and not is_tick(3.9, 2.0, 4.0)


def test_a_tick_at_the_moment_of_the_stop_ends_the_window_there() -> None:
    assert window_end(2.5, 2.5, ZERO, ZERO + 2.5, 60.0) == (2.5, True)
    # A tick after the stop carries counts up to the stop only.
    assert window_end(3.05, 3.05, ZERO, ZERO + 2.5, 60.0) == (2.5, True)


def test_the_last_tick_is_the_one_at_the_windows_end() -> None:
    duration = 1000.0
    assert window_end(duration * 0.999, duration * 0.999, ZERO, None, duration) == (duration * 0.999, True)
    assert window_end(998.0, 998.0, ZERO, None, duration) == (998.0, False)


def test_the_end_is_rounded_to_the_nanosecond_on_a_clock_far_from_zero() -> None:
    # A monotonic clock 11 days after boot: ended_at - zero is 2.2 less a float's error.
    zero = 1e6 + 0.1
    assert window_end(5.0, 0.0, zero, 1e6 + 2.3, 60.0) == (2.2, True)


def test_shard_size_is_what_the_open_files_allow() -> None:
    per_target = 717 * 2
    assert shard_size(per_target, RESERVED_FDS + per_target) == 1  # one target: one perf
    assert shard_size(per_target, RESERVED_FDS + 2 * per_target - 1) == 1
    assert shard_size(per_target, RESERVED_FDS + 2 * per_target) == 2
    with pytest.raises(HelperFailure) as info:
        shard_size(per_target, RESERVED_FDS + per_target - 1)
    assert info.value.code == "limits"
    assert str(info.value) == (f"perf needs about {per_target + RESERVED_FDS} open files for one container "
                               f"and the helper may open {RESERVED_FDS + per_target - 1} (raise the engine's "
                               "nofile limit)")


PER_TARGET = 717 * 2  # counters x CPUs on this 2-CPU machine


def test_a_perf_counts_at_most_max_targets_and_the_loads_are_even() -> None:
    # Docker's nofile here (20,000) would let one perf take 13; a print's cost caps it at 4.
    assert MAX_TARGETS == 4
    assert plan(20, PER_TARGET, 20_000) == [4, 4, 4, 4, 4]
    assert plan(13, PER_TARGET, 20_000) == [4, 3, 3, 3]
    assert plan(5, PER_TARGET, 20_000) == [3, 2]
    assert plan(4, PER_TARGET, 20_000) == [4]
    assert plan(1, PER_TARGET, 20_000) == [1]
    # Fewer open files than MAX_TARGETS needs: the files decide.
    assert plan(5, PER_TARGET, RESERVED_FDS + 2 * PER_TARGET) == [2, 2, 1]
    with pytest.raises(HelperFailure, match="open files for one container"):
        plan(1, PER_TARGET, RESERVED_FDS + PER_TARGET - 1)


@given(st.integers(1, 300), st.integers(1, 40))
def test_a_plan_covers_every_target_once_in_the_fewest_even_perfs(n: int, fit: int) -> None:
    sizes = plan(n, PER_TARGET, RESERVED_FDS + fit * PER_TARGET)
    cap = min(MAX_TARGETS, fit)
    assert sum(sizes) == n
    assert len(sizes) == -(-n // cap)
    assert max(sizes) <= cap and max(sizes) - min(sizes) <= 1


def printing_perf(script: str) -> perfrun.PerfRun:
    """A PerfRun around a real process that prints on its log pipe as `script` says (Python,
    with `out` its log pipe): read_interval sees a perf's pipe, not a copy of its logic."""
    log_r, log_w = os.pipe()
    code = f"import os, sys, time\nout = os.fdopen({log_w}, 'w', buffering=1)\n{script}"
    run = perfrun.PerfRun.__new__(perfrun.PerfRun)
    run.proc = subprocess.Popen([sys.executable, "-c", code], pass_fds=(log_w,),
                                stderr=subprocess.PIPE)
    os.close(log_w)
    run.log_r = log_r
    run.printed, run.stopping = threading.Event(), threading.Event()
    run.ended_at = None
    run.pending = b""
    return run


def wait_readable(fd: int) -> None:
    """Until the child has said something there: its start-up is not what a test times."""
    assert select.select([fd], [], [], 30)[0], "the child said nothing within 30 s"


@pytest.fixture
def perfs() -> Iterator[list[perfrun.PerfRun]]:
    runs: list[perfrun.PerfRun] = []
    yield runs
    for run in runs:
        run.proc.kill()
        run.proc.wait()


def test_a_slow_print_that_goes_on_is_read_whole(monkeypatch: pytest.MonkeyPatch,
                                                 perfs: list[perfrun.PerfRun]) -> None:
    # 80 lines, one every 0.05 s: 4 s in all, beyond the 2 s the print has to begin in, but
    # never silent for the 1.5 s that SILENT_S is here.
    monkeypatch.setattr(perfrun, "SILENT_S", 1.5)
    run = printing_perf("for i in range(80):\n    out.write(f'{i},1\\n')\n    time.sleep(0.05)\n"
                        "time.sleep(30)")
    perfs.append(run)
    lines = run.read_interval(80, 2.0)
    assert [line.split(",")[0] for line in lines] == [str(i) for i in range(80)]
    assert run.proc.poll() is None  # a print read whole is not a stuck perf: not killed


def test_a_print_begun_early_keeps_the_time_it_had_to_begin(monkeypatch: pytest.MonkeyPatch,
                                                           perfs: list[perfrun.PerfRun]) -> None:
    # A silence longer than SILENT_S, but within the time the print had from the start.
    monkeypatch.setattr(perfrun, "SILENT_S", 0.5)
    run = printing_perf("out.write('1,1\\n2,1\\n')\ntime.sleep(1.5)\nout.write('3,1\\n4,1\\n5,1\\n')\n"
                        "time.sleep(30)")
    perfs.append(run)
    wait_readable(run.log_r)
    assert [line.split(",")[0] for line in run.read_interval(5, 20.0)] == ["1", "2", "3", "4", "5"]


def test_a_print_that_stops_halfway_fails_after_silent_s(monkeypatch: pytest.MonkeyPatch,
                                                         perfs: list[perfrun.PerfRun]) -> None:
    monkeypatch.setattr(perfrun, "SILENT_S", 1.0)
    run = printing_perf("out.write('# a comment\\n1,1\\n2,1\\n3')\nout.flush()\ntime.sleep(30)")
    perfs.append(run)
    wait_readable(run.log_r)
    t0 = time.monotonic()
    with pytest.raises(HelperFailure) as info:
        run.read_interval(5, 0.2)
    took = time.monotonic() - t0
    assert info.value.code == "perf"
    assert re.match(r"perf stopped printing its counts for \d+\.\d s \(2 of 5 lines; perf state S, "
                    r"\d+\.\d s of CPU, waiting in ", str(info.value)), str(info.value)
    assert 1.0 <= took < 10.0  # SILENT_S after its last piece, not the 0.2 s it had to begin
    assert run.proc.wait(timeout=5) == -9  # the stuck perf is killed


def test_a_print_that_never_begins_fails_at_the_timeout(monkeypatch: pytest.MonkeyPatch,
                                                        perfs: list[perfrun.PerfRun]) -> None:
    monkeypatch.setattr(perfrun, "SILENT_S", 60.0)
    run = printing_perf("sys.stderr.write('perf: counting\\n')\nsys.stderr.flush()\ntime.sleep(30)")
    perfs.append(run)
    wait_readable(run.proc.stderr.fileno())
    t0 = time.monotonic()
    with pytest.raises(HelperFailure) as info:
        run.read_interval(5, 0.6)
    assert time.monotonic() - t0 < 10.0
    message = str(info.value)
    assert message.startswith("perf did not print its counts within 0.6 s (0 of 5 lines; perf state S, ")
    assert message.endswith("bytes on stderr, last: perf: counting)")
    assert os.get_blocking(run.proc.stderr.fileno())  # left as it was found
    assert run.proc.wait(timeout=5) == -9


def test_what_a_perf_printed_beyond_the_interval_is_the_next_intervals(
        perfs: list[perfrun.PerfRun]) -> None:
    # A perf read late: two intervals in one piece, the second one's last line unfinished.
    run = printing_perf("out.write('1.0,1\\n1.0,2\\n2.0,3\\n2.0,')\nout.flush()\ntime.sleep(0.5)\n"
                        "out.write('4\\n')\ntime.sleep(30)")
    perfs.append(run)
    wait_readable(run.log_r)
    assert run.read_interval(2, 10.0) == ["1.0,1", "1.0,2"]
    assert run.read_interval(2, 10.0) == ["2.0,3", "2.0,4"]
