"""One perf stat process: start it, know when it counts, read its counts, stop it, and let
it go without making the next helper wait.

Closing ~360 syscall tracepoints costs one RCU grace period each (~15 s here), under the
kernel's event_mutex, and a perf that opens events meanwhile fails (peers.py). A tracepoint is
only unregistered when its last perf event closes, though. So after its report a helper keeps
its events open but disabled for a short while (LINGER_S); if another helper starts counting
meanwhile, it holds every tracepoint itself, and this one's close costs no grace period.
Shards tells the other helpers which of these it is doing (peers.py).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import threading
import time

from . import perf
from .engine import HelperFailure
from .peers import COUNTING, others_named

START_TIMEOUT_S = 60.0  # opening ~700 events x CPUs on a large host takes a while
LINGER_S = 10.0
NUDGE_S = 1.0  # a stop perf has not answered for this long is signalled again
# A perf that has begun a print and then says nothing for this long is stuck. A print takes
# a while (shards.py: its cost grows with the lines and events of the perf), so it is timed
# by its progress, not as a whole.
SILENT_S = 30.0


class PerfRun:
    """One perf stat process, its control pipes and its log pipe."""

    def __init__(self, counters: list[perf.Counter], cgroups: list[str], window_ms: int) -> None:
        try:
            args = perf.argv(counters, cgroups, window_ms, (0, 0), 0)
        except ValueError as e:
            raise HelperFailure("cgroup", str(e)) from None
        ctl_r, self.ctl_w = os.pipe()
        self.ack_r, ack_w = os.pipe()
        self.log_r, log_w = os.pipe()
        args = perf.argv(counters, cgroups, window_ms, (ctl_r, ack_w), log_w)
        self.proc = subprocess.Popen(
            args, pass_fds=(ctl_r, ack_w, log_w), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        for fd in (ctl_r, ack_w, log_w):
            os.close(fd)
        self.printed = threading.Event()  # the last interval is read: nothing can stop it now
        self.stopping = threading.Event()  # SIGINT sent: perf prints what it has and exits
        # When the window was ended early (end_window or stop), on the monotonic clock. perf
        # prints what it counted until then with its next tick (end_window) or at once (stop);
        # after a stop it prints once more, zeros stamped from nowhere, and exits: that print
        # is not a window.
        self.ended_at: float | None = None
        self.pending = b""  # what perf printed beyond the interval last read

    def wait_started(self) -> None:
        """Block until every event is open and enabled (perf acks a ping from its main loop)."""
        os.write(self.ctl_w, b"ping\n")
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.ack_r], [], [], 0.2)
            if ready and os.read(self.ack_r, 64).startswith(b"ack"):
                return
            if self.proc.poll() is not None:
                raise self.failure()
        self.proc.kill()
        raise HelperFailure("perf", f"perf did not start counting within {START_TIMEOUT_S:.0f} s")

    def failure(self) -> HelperFailure:
        text = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        status = self.proc.returncode
        how = f"killed by signal {-status}" if status is not None and status < 0 else f"exit status {status}"
        last = lines[-1] if lines else how
        code = "permission" if "ermission" in text or "EACCES" in text else "perf"
        return HelperFailure(code, f"perf failed: {last[:300]}")

    def whereabouts(self) -> str:
        """What a perf that does not answer is doing: its state and CPU time, where it waits
        in the kernel, and the last thing it said on stderr (read without blocking)."""
        state, cpu, wchan = "?", "CPU time unknown", "?"
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            state = fields[0]
            cpu = f"{(int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK'):.1f} s of CPU"
            with open(f"/proc/{self.proc.pid}/wchan") as f:
                wchan = f.read().strip() or "-"
        except (OSError, IndexError, ValueError):
            pass
        said = b""
        try:
            fd = self.proc.stderr.fileno() if self.proc.stderr is not None else -1
        except ValueError:  # closed
            fd = -1
        if fd >= 0:
            os.set_blocking(fd, False)
            try:
                said = os.read(fd, 1 << 16) or b""
            except OSError:
                pass
            finally:
                os.set_blocking(fd, True)
        last = [line.strip() for line in said.decode(errors="replace").splitlines() if line.strip()]
        return (f"perf state {state}, {cpu}, waiting in {wchan}, {len(said)} bytes on stderr"
                + (f", last: {last[-1][:200]}" if last else ""))

    def stop(self) -> None:
        """End the window now; SIGINT makes perf print the counts so far (SIGTERM would not)."""
        if not self.printed.is_set() and self.proc.poll() is None:
            self.stopping.set()
            self.ended_at = time.monotonic()
            self.proc.send_signal(signal.SIGINT)

    def _nudge(self, printing: bool) -> None:
        """perf prints on SIGINT only if the signal interrupts its wait for the next tick; one
        that lands anywhere else just ends perf's loop at that tick (measured once: a 60 s
        window ran out after a Ctrl-C). So while a stop is not answered, SIGINT again."""
        if self.stopping.is_set() and not printing and self.proc.poll() is None \
                and time.monotonic() - (self.ended_at or 0.0) >= NUDGE_S:
            self.proc.send_signal(signal.SIGINT)

    def end_window(self) -> None:
        """End the window between two of perf's ticks without stopping perf (a SIGINT would
        print at once, but perf would then close its events, and the next run would wait for
        that: see finish). The events are disabled now; perf's next tick prints what they
        counted until now, and ended_at says when that was."""
        if not self.printed.is_set() and self.proc.poll() is None:
            try:
                os.write(self.ctl_w, b"disable\n")
                self.ended_at = time.monotonic()
            except OSError:
                pass

    def read_interval(self, n_counters: int, timeout_s: float) -> list[str]:
        """The lines of perf's next interval. After a stop, perf prints what it counted
        since its last interval and exits: once it has, this returns []. The print must begin
        within timeout_s, and, once begun, go on saying something at least every SILENT_S.
        What perf printed beyond this interval (a perf read late, one interval ahead) is kept
        for the next call."""
        lines: list[str] = []
        got = 0  # data lines among them
        buf, self.pending = self.pending, b""
        heard = start = time.monotonic()
        deadline = start + timeout_s
        while True:
            *done, buf = buf.split(b"\n")
            for i, raw in enumerate(done):
                lines.append(raw.decode(errors="replace"))
                got += perf.is_data_line(lines[-1])
                if got == n_counters:
                    self.pending = b"\n".join([*done[i + 1:], buf])
                    return lines
            left = deadline - time.monotonic()
            if left <= 0:
                raise self.stuck(got, n_counters, timeout_s if heard == start else None,
                                 time.monotonic() - heard)
            ready, _, _ = select.select([self.log_r], [], [], min(left, NUDGE_S))
            if not ready:
                self._nudge(got > 0 or bool(buf))
                continue
            chunk = os.read(self.log_r, 1 << 16)
            if not chunk:
                self.proc.wait()
                # perf re-raises the SIGINT it caught once it has printed: that is a clean end.
                if self.stopping.is_set() and self.proc.returncode in (0, -signal.SIGINT) \
                        and not buf.strip() and got == 0:
                    return []
                raise self.failure()
            buf += chunk
            heard = time.monotonic()
            deadline = max(deadline, heard + SILENT_S)

    def stuck(self, got: int, expected: int, never_began: float | None, silent_s: float) -> HelperFailure:
        """Kill a perf that does not print; the failure, saying what it was doing."""
        try:
            where = self.whereabouts()
        finally:
            self.proc.kill()
        what = (f"perf did not print its counts within {never_began:g} s" if never_began is not None
                else f"perf stopped printing its counts for {silent_s:.1f} s")
        return HelperFailure("perf", f"{what} ({got} of {expected} lines; {where})")

    def linger(self) -> None:
        """After the report: disable the events but keep them open (see the module's doc)."""
        if self.proc.poll() is None and not self.stopping.is_set():
            try:
                os.write(self.ctl_w, b"disable\n")
            except OSError:
                pass

    def drain(self) -> None:
        """After the last read: perf goes on printing (zeros every window while it lingers,
        and perhaps once more on its way out); a full pipe would block it, and its close."""
        threading.Thread(target=self._drain, daemon=True).start()

    def close(self) -> int:
        """Let perf close its events and exit; its status. A perf that was stopped may still
        be waiting for its next tick (a SIGINT outside that wait only ends the loop there),
        so it is told once more."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.proc.wait()

    @staticmethod
    def another_counts() -> bool:
        return others_named(COUNTING) > 0

    def _drain(self) -> None:
        try:
            while os.read(self.log_r, 1 << 16):
                pass
        except OSError:
            pass
