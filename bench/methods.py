"""The methods: each starts counting one container, for a 2 s window or until stopped as its user
would stop it (Ctrl-C), and knows when it started counting."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from common import BenchError, Run, Watched, cgroup2_mount, cgroup_of, log, pid_of, quiesce, sh, tried
from workloads import Loop, Nginx

SPY_ARGS = {"spy bpf": ["--engine", "bpf"], "spy bpf --latency": ["--engine", "bpf", "--latency"],
            "spy perf": ["--engine", "perf"],
            # --syscall: perf opens the events of the syscalls asked for only; BPF sees every call
            "spy perf --syscall getppid": ["--engine", "perf", "--syscall", "getppid"],
            "spy bpf --syscall getppid": ["--engine", "bpf", "--syscall", "getppid"],
            # --by-process: each call also counted for its process, in a hash map
            "spy bpf --by-process": ["--engine", "bpf", "--by-process"]}
METHODS = ("untraced", *SPY_ARGS, "perf syscalls:*", "bpf prototype", "strace -c -f")
PROTOTYPE = Path(os.environ.get("SPY_BENCH_PROTOTYPE", "/work/shared/measurements/bpf-prototype"))
WINDOW_S = 2.0
FOREVER_S = 86400  # "until stopped", for the methods that need a length
COUNTING = r"\]\s+counting\s"  # docker spy's info log line once the window has started
NAMES = itertools.count()


@dataclass(frozen=True)
class Tools:
    """What the methods need besides the target: the run (its helper image), how many files the
    plain perf method opens once it counts, and the prototype built for this run."""

    run: Run
    perf_fds: int
    prototype: Path | None


@dataclass
class Session:
    started: float
    counting_at: float
    proc: Watched | None = None
    interrupt: Callable[[], None] | None = None
    # docker spy's exit status is checked; perf's and the prototype's are an interrupted program's
    must_succeed: bool = False

    def stop(self) -> str:
        """Stop counting as its user would (Ctrl-C); what the method printed on stdout."""
        if self.interrupt is not None:
            self.interrupt()
        return self.wait()

    def wait(self) -> str:
        if self.proc is None:
            return ""
        out = self.proc.finish()
        if self.must_succeed and self.proc.proc.returncode:
            said = self.proc.stderr().strip().splitlines() or ["nothing"]
            raise BenchError(f"{self.proc.proc.args[0]} {self.proc.proc.args[1]} exited "
                             f"{self.proc.proc.returncode}: {said[-1][:300]}")
        return out


def spy_argv(run: Run, method: str, *targets: str, window: float | None) -> list[str]:
    # debug: the log names the helper container (for its memory and files) and the counting start
    argv = ["docker", "spy", *targets, *SPY_ARGS[method], "--helper-image", run.helper_image,
            "--format", "json", "-q", "--log-level", "debug"]
    return [*argv, "-d", f"{window:g}s"] if window else argv


def start(method: str, container: str, tools: Tools, window: float | None = None) -> Session:
    """Start counting container with method: for window seconds, or until stop() without one."""
    t0 = time.monotonic()
    if method == "untraced":
        return Session(t0, t0)
    if method in SPY_ARGS:
        proc = Watched(spy_argv(tools.run, method, container, window=window), group=True, stdout=True)
        counting, _ = proc.wait_for(COUNTING)
        return Session(t0, counting, proc, lambda: ctrl_c_plugin(proc), must_succeed=True)
    if method == "perf syscalls:*":
        return _start_perf(container, tools, window, t0)
    if method == "bpf prototype":
        return _start_prototype(container, tools, window, t0)
    return _start_strace(container, t0)


def ctrl_c_plugin(spy: Watched) -> None:
    """Ctrl-C as a terminal delivers it to docker spy: SIGINT to the plugin, which the docker CLI
    runs as its child (the CLI ignores it then). Not to the CLI too: with its output not a
    terminal, the CLI then also cancels the plugin through DOCKER_CLI_PLUGIN_SOCKET, and that
    first Ctrl-C is lost while the plugin waits for the helper (measured here: 4 of 4 windows of
    the BPF engine went on until a second one). One left unanswered is sent again."""
    for _ in range(5):
        for child in _children(spy.proc.pid):
            try:
                os.kill(child, signal.SIGINT)
            except ProcessLookupError:
                pass
        try:
            spy.wait_for(r"\]\s+interrupted: stopping", timeout=3)
            return
        except BenchError:
            if spy.done:
                return
            log("docker spy did not answer a Ctrl-C: sending another")


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def _start_perf(container: str, tools: Tools, window: float | None, t0: float) -> Session:
    """The plain perf method: perf stat in a container with perf, on a cgroup, system-wide."""
    name = f"bench-{tools.run.id}-perf-{next(NAMES)}"
    proc = Watched(["docker", "run", "--rm", "--name", name, *tools.run.label(), "--pid=host",
                    "--cgroupns=host", "--cap-add", "SYS_ADMIN", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
                    "--entrypoint", "perf", tools.run.helper_image, "stat", "-e", "syscalls:*", "-a",
                    "-G", cgroup_of(pid_of(container)), "--", "sleep", f"{window or FOREVER_S:g}"])
    return Session(t0, _fds_open(name, tools.perf_fds), proc, lambda: ctrl_c_container(name))


def _fds_open(container: str, expected: int, timeout: float = 120) -> float:
    """When perf (the container's first process) holds all its events: it prints nothing then."""
    deadline = time.monotonic() + timeout
    pid = 0
    while time.monotonic() < deadline:
        try:
            pid = pid or int(sh("docker", "inspect", "-f", "{{.State.Pid}}", container, check=False) or 0)
            if pid and len(os.listdir(f"/proc/{pid}/fd")) >= expected:
                return time.monotonic()
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    raise BenchError("perf did not open its events")


def ctrl_c_container(name: str) -> None:
    """SIGINT to perf and its `sleep`, as a terminal's Ctrl-C reaches the foreground group;
    perf alone would go on waiting for its workload."""
    pid = pid_of(name)
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for p in (*children, str(pid)):
        try:
            os.kill(int(p), signal.SIGINT)
        except ProcessLookupError:
            pass


def _start_prototype(container: str, tools: Tools, window: float | None, t0: float) -> Session:
    # It counts one cgroup2 directory exactly, with no subtree: the container's own.
    assert tools.prototype is not None
    cgroup = cgroup2_mount() / cgroup_of(pid_of(container)).lstrip("/")
    proc = Watched([str(tools.prototype / "load"), str(tools.prototype / "count.bpf.o"), str(cgroup),
                    str(int(window or FOREVER_S))])
    counting, _ = proc.wait_for(r"^counting")
    return Session(t0, counting, proc, lambda: proc.signal(signal.SIGINT))


def _start_strace(container: str, t0: float) -> Session:
    pids = sh("docker", "top", container, "-eo", "pid").split()[1:]
    proc = Watched(["strace", "-c", "-f", "-o", "/dev/null", *(a for p in pids for a in ("-p", p))])
    counting, _ = proc.wait_for("attached", len(pids))
    return Session(t0, counting, proc, lambda: proc.signal(signal.SIGINT))


def build_prototype(workdir: Path) -> Path | None:
    """The prototype's loader and program, built for this run only (never kept: it is not ours)."""
    if os.uname().machine != "x86_64":
        log("the BPF prototype reads pt_regs at x86_64's offsets: left out on this machine")
        return None
    for tool in ("clang", "gcc"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} is missing (bench/run installs clang and libbpf-dev)")
    out = workdir / "prototype"
    out.mkdir()
    sh("clang", "-O2", "-g", "-target", "bpf", f"-I/usr/include/{os.uname().machine}-linux-gnu",
       "-c", str(PROTOTYPE / "count.bpf.c"), "-o", str(out / "count.bpf.o"))
    sh("gcc", "-O2", "-o", str(out / "load"), str(PROTOTYPE / "load.c"), "-lbpf")
    return out


def time_to_result(method: str, container: str, tools: Tools) -> tuple[float, float, float]:
    """(seconds to the result of a 2 s window, seconds to counting start, when the result came)."""
    t0 = time.monotonic()
    if method in ("untraced", "strace -c -f"):  # no window of their own: stopped after 2 s
        session = start(method, container, tools)
        time.sleep(WINDOW_S)
        session.stop()
    else:
        session = start(method, container, tools, WINDOW_S)
        session.wait()
    end = time.monotonic()
    return end - t0, session.counting_at - session.started, end


def cost_figures(stdout: str, workload: str) -> dict[str, float]:
    """What the BPF engine's report says its programs cost, over the whole session."""
    cost = json.loads(stdout).get("cost") if stdout.strip() else None
    if not cost:
        return {}
    return {f"cost.cpu_share, {workload} run": cost["cpu_share"],
            f"ns per program run, {workload} run": cost["run_time_ns"] / max(cost["runs"], 1)}


def measure(method: str, loop: Loop, neighbour: Loop, nginx: Nginx, tools: Tools,
            problems: list[str]) -> dict[str, float]:
    """All figures of one method; a part that fails is left out and said in problems."""
    def window() -> dict[str, float]:
        ttr, tcs, _ = time_to_result(method, loop.name, tools)
        return {"time to result, s": ttr, "time to counting start, s": tcs}

    def loop_run() -> dict[str, float]:
        session = start(method, loop.name, tools)
        with stopped_on_error(session):
            rates = {"target loop, calls/s": loop.trigger(), "neighbour loop, calls/s": neighbour.trigger()}
        return rates | tried(problems, f"{method}, loop run", stopped, session, "loop")

    def nginx_run() -> dict[str, float]:
        session = start(method, nginx.name, tools)
        with stopped_on_error(session):
            rps = {"nginx, requests/s": nginx.requests_per_second()}
        return rps | tried(problems, f"{method}, nginx run", stopped, session, "nginx")

    figures: dict[str, float] = {}
    for part, action in (("2 s window", window), ("loop run", loop_run), ("nginx run", nginx_run)):
        quiesce(tools.run)
        figures |= tried(problems, f"{method}, {part}", action)
    return figures


@contextmanager
def stopped_on_error(session: Session) -> Iterator[None]:
    """A workload that fails leaves no method counting behind it (quiesce would wait for it)."""
    try:
        yield
    except BenchError:
        with suppress(BenchError):
            session.stop()
        raise


def stopped(session: Session, workload: str) -> dict[str, float]:
    return cost_figures(session.stop(), workload)
