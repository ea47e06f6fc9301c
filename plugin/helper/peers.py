"""What other docker spy helpers on the host are doing, told by process name (helpers see each
other through the host PID namespace): counting with perf, lingering with perf's events open
but disabled, or closing them.

Why it matters (measured with perf 6.12 and 7.3 on kernel 6.18): a perf that opens the syscall
tracepoints while another perf is closing its events on them fails, perf 6.12 with a segfault
(about half of the back-to-back runs where a target exited, which a stop closes at once) and
perf 7.3 with "event is not supported". So a helper opens nothing while another one closes,
and one that closes waits for no one: closing is ~15 s of RCU grace periods, not a hang.
"""

from __future__ import annotations

import ctypes
import functools
import os
import time
from collections.abc import Callable

COUNTING = b"spy-helper:cnt"  # a process name is at most 15 bytes
LINGERING = b"spy-helper:lgr"
CLOSING = b"spy-helper:cls"
PR_SET_NAME = 15
CLOSE_WAIT_S = 60.0  # ~700 events close in ~15 s here; a big host takes longer


@functools.cache
def libc() -> ctypes.CDLL:
    """The C library, for the calls Python has no wrapper for (mount, prctl, syscall)."""
    return ctypes.CDLL(None, use_errno=True)


def set_process_name(name: bytes) -> None:
    """Only from the main thread: the process's name is its main thread's."""
    libc().prctl(PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0)


def others_named(name: bytes, proc_root: str = "/proc") -> int:
    me = str(os.getpid())
    found = 0
    for pid in os.listdir(proc_root):
        if not pid.isdigit() or pid == me:
            continue
        try:
            with open(f"{proc_root}/{pid}/comm", "rb") as f:
                found += f.read().strip() == name
        except OSError:
            continue  # gone, or not ours to read
    return found


def wait_while_closing(told: Callable[[], None], stopped: Callable[[], bool] = lambda: False,
                       timeout_s: float = CLOSE_WAIT_S, proc_root: str = "/proc") -> float:
    """Before opening tracepoint events: wait until no other helper's perf is closing its
    events (or `stopped`); `told` is called once if there is one. Returns the seconds waited."""
    start = time.monotonic()
    if not others_named(CLOSING, proc_root):
        return 0.0
    told()
    while others_named(CLOSING, proc_root) and time.monotonic() - start < timeout_s and not stopped():
        time.sleep(0.1)
    return time.monotonic() - start
