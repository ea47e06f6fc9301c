"""The helper's window logic at its edges: shards.is_tick and window_end (which print of perf's
is a tick, where the window ends) and shard_size (how many targets one perf can take)."""

from __future__ import annotations

import pytest

from plugin.helper.engine import HelperFailure
from plugin.helper.shards import RESERVED_FDS, is_tick, shard_size, window_end

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
