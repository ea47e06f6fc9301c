"""docker spy's benchmark: one run, side by side, on this engine.

Methods: untraced; docker spy; the plain perf method (`perf stat -e 'syscalls:*' -a -G cg`
in a container with perf); perf on `syscalls:sys_enter_*` only; `strace -c -f -p`.
Figures, as medians of --reps repetitions: time to result for a 2 s window, time to counting
start, a syscall-bound loop's speed in the target, the speed of the same loop in a
neighbour container that is not spied, nginx's requests/s in the target (wrk from the host,
in the target's network namespace), the helper's peak memory and open files, and the same
with 5 and 20 containers in one run. Nothing here is a test: it prints figures. Run it
through bench/run, which sets up what it needs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASE = os.environ.get("SPY_BASE_IMAGE", "debian:trixie-slim")
HELPER_LABEL = "io.docker-spy.role=helper-container"
NGINX_IMAGE = "docker-spy-bench-nginx"
LOOP_S = 2.0
WRK_S = 3.0
METHODS = ("untraced", "docker spy", "perf syscalls:*", "perf sys_enter_*", "strace -c -f")


def sh(*args: str, check: bool = True, timeout: float = 600) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode:
        sys.exit(f"bench: {' '.join(args)} failed: {proc.stderr.strip()[-500:]}")
    return proc.stdout.strip()


def log(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


# --- set-up -----------------------------------------------------------------------------------

def build_loop(workdir: Path) -> Path:
    out = workdir / "loop"
    sh("gcc", "-static", "-O2", "-o", str(out), str(REPO / "bench" / "loop.c"))
    return out


def build_nginx() -> None:
    if subprocess.run(["docker", "image", "inspect", NGINX_IMAGE], capture_output=True).returncode == 0:
        return
    log(f"building {NGINX_IMAGE} from {BASE} and Debian's nginx")
    dockerfile = (f"FROM {BASE}\nRUN apt-get update && apt-get install -y --no-install-recommends "
                  "nginx-light && rm -rf /var/lib/apt/lists/*\n"
                  "RUN sed -i 's|access_log .*|access_log off;|' /etc/nginx/nginx.conf\n"
                  "CMD [\"nginx\", \"-g\", \"daemon off;\"]\n")
    subprocess.run(["docker", "build", "-q", "-t", NGINX_IMAGE, "-"], input=dockerfile, text=True,
                   check=True, capture_output=True)


class Loop:
    """A container running bench/loop.c; trigger() returns its getppid calls/s."""

    def __init__(self, name: str, binary: Path, workdir: Path) -> None:
        self.name = name
        self.dir = workdir / name
        self.dir.mkdir()
        shutil.copy(binary, self.dir / "loop")
        sh("docker", "rm", "-f", name, check=False)
        sh("docker", "run", "-d", "--name", name, "-v", f"{self.dir}:/b", BASE, "/b/loop")

    def trigger(self, seconds: float = LOOP_S) -> float:
        rate = self.dir / "rate"
        rate.unlink(missing_ok=True)
        (self.dir / "go.tmp").write_text(str(seconds))
        (self.dir / "go.tmp").rename(self.dir / "go")
        deadline = time.monotonic() + seconds + 30
        while not rate.exists():
            if time.monotonic() > deadline:
                sys.exit(f"bench: the loop in {self.name} did not report")
            time.sleep(0.02)
        return float(rate.read_text())


def start_nginx() -> str:
    sh("docker", "rm", "-f", "bench-nginx", check=False)
    sh("docker", "run", "-d", "--name", "bench-nginx", "--network", "none", NGINX_IMAGE)
    for _ in range(100):
        probe = subprocess.run(_wrk("-d1s", "-c1"), capture_output=True, text=True)
        if "Requests/sec" in probe.stdout and "Socket errors" not in probe.stdout:
            return "bench-nginx"
        time.sleep(0.1)
    sys.exit("bench: nginx did not answer")


def _wrk(*args: str) -> list[str]:
    # wrk from the host, run in nginx's network namespace against its loopback: no proxy and
    # no bridge in the path, and wrk itself stays outside the spied cgroup.
    return ["nsenter", "-t", str(pid_of("bench-nginx")), "-n", "wrk", "-t1", *args,
            "http://127.0.0.1:80/"]


def wrk_rps() -> float:
    out = sh(*_wrk("-c32", f"-d{WRK_S:g}s"))
    line = next(line for line in out.splitlines() if line.startswith("Requests/sec:"))
    return float(line.split()[1])


def pid_of(container: str) -> int:
    return int(sh("docker", "inspect", "-f", "{{.State.Pid}}", container))


def cgroup_of(container: str) -> str:
    """The cgroup2 path, as perf -G wants it on this host's cgroup2 mount."""
    text = Path(f"/proc/{pid_of(container)}/cgroup").read_text()
    return next(line.split(":", 2)[2] for line in text.splitlines() if line.startswith("0::"))


def count_events(helper_image: str) -> dict[str, int]:
    """How many tracepoints `syscalls:*` and `syscalls:sys_enter_*` match on this kernel."""
    names = sh("docker", "run", "--rm", "--cap-drop", "ALL", "--cap-add", "SYS_ADMIN",
               "--entrypoint", "sh", helper_image, "-c",
               "mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null; "
               "ls /sys/kernel/tracing/events/syscalls").split()
    return {"syscalls:*": sum(n.startswith("sys_") for n in names),
            "syscalls:sys_enter_*": sum(n.startswith("sys_enter_") for n in names)}


def quiesce() -> None:
    """Wait until no helper, perf or strace is left: their teardown slows every process."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        helpers = sh("docker", "ps", "-aq", "--filter", f"label={HELPER_LABEL}")
        busy = subprocess.run(["pgrep", "-x", "perf|strace"], capture_output=True).returncode == 0
        if not helpers and not busy:
            time.sleep(1)
            return
        time.sleep(0.5)
    sys.exit("bench: helpers or perf did not go away")


# --- the methods: start counting a container, know when it counts, stop ------------------------

class Session:
    def __init__(self, proc: subprocess.Popen[str] | None, started: float) -> None:
        self.proc = proc
        self.started = started
        self.counting_at: float | None = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.communicate(timeout=300)


def _wait_stderr(proc: subprocess.Popen[str], needle: str, count: int = 1) -> float:
    assert proc.stderr is not None
    seen = 0
    for line in proc.stderr:
        if needle in line:
            seen += 1
            if seen >= count:
                return time.monotonic()
    sys.exit(f"bench: never saw {needle!r}")


def _perf_fds_open(container: str, expected: int, timeout: float = 120) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if len(os.listdir(f"/proc/{pid_of(container)}/fd")) >= expected:
                return time.monotonic()
        except (OSError, ValueError, SystemExit):
            pass
        time.sleep(0.02)
    sys.exit("bench: perf did not open its events")


def perf_container(name: str, method: str, container: str, helper_image: str,
                   *command: str) -> list[str]:
    """The plain perf method: perf stat in a container with perf, on a cgroup, system-wide."""
    events = "syscalls:*" if method == "perf syscalls:*" else "syscalls:sys_enter_*"
    return ["docker", "run", "--rm", "--name", name, "--pid=host", "--cgroupns=host",
            "--cap-add", "SYS_ADMIN", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
            "--entrypoint", "perf", helper_image, "stat", "-e", events, "-a",
            "-G", cgroup_of(container), "--", *command]


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


def perf_fds(method: str, n_events: dict[str, int]) -> int:
    events = "syscalls:*" if method == "perf syscalls:*" else "syscalls:sys_enter_*"
    return n_events[events] * (os.cpu_count() or 1)


def start(method: str, container: str, helper_image: str, n_events: dict[str, int]) -> Session:
    t0 = time.monotonic()
    if method == "untraced":
        return Session(None, t0)
    if method == "docker spy":
        proc = subprocess.Popen(["docker", "spy", container, "-q", "--log-level", "info"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        session = Session(proc, t0)
        session.counting_at = _wait_stderr(proc, "counting")
        # Ctrl-C as a terminal sends it: to the whole foreground group (CLI and plugin).
        session.stop = lambda: (os.killpg(proc.pid, signal.SIGINT),  # type: ignore[method-assign]
                                proc.communicate(timeout=300))
        return session
    if method.startswith("perf"):
        name = f"bench-perf-{os.getpid()}"
        proc = subprocess.Popen(perf_container(name, method, container, helper_image, "sleep", "3600"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        session = Session(None, t0)
        session.counting_at = _perf_fds_open(name, perf_fds(method, n_events))
        session.proc = proc
        session.stop = lambda: (ctrl_c_container(name), proc.wait(600))  # type: ignore[method-assign]
        return session
    pids = sh("docker", "top", container, "-eo", "pid").split()[1:]
    args = ["strace", "-c", "-f", "-o", "/dev/null"]
    for pid in pids:
        args += ["-p", pid]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    session = Session(proc, t0)
    session.counting_at = _wait_stderr(proc, "attached", len(pids))
    return session


# --- the figures -------------------------------------------------------------------------------

def time_to_result(method: str, container: str, helper_image: str,
                   n_events: dict[str, int]) -> tuple[float, float]:
    """(seconds to the result of a 2 s window, seconds to counting start)."""
    t0 = time.monotonic()
    if method == "docker spy":
        proc = subprocess.Popen(["docker", "spy", container, "-d", "2s", "-q", "--log-level", "info"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        counting = _wait_stderr(proc, "counting") - t0
        proc.communicate(timeout=300)
        return time.monotonic() - t0, counting
    if method.startswith("perf"):
        name = f"bench-ttr-{os.getpid()}"
        proc = subprocess.Popen(perf_container(name, method, container, helper_image, "sleep", "2"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        counting = _perf_fds_open(name, perf_fds(method, n_events)) - t0
        proc.wait(600)
        return time.monotonic() - t0, counting
    session = start(method, container, helper_image, n_events)
    time.sleep(2.0)
    session.stop()
    return time.monotonic() - t0, (session.counting_at or t0) - t0


@contextmanager
def helper_watch(interval: float = 0.2) -> Iterator[dict[str, float]]:
    """Peak memory (bytes) and open files of docker spy's helper while the block runs."""
    import threading

    peak = {"memory": 0.0, "fds": 0.0}
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            for cid in sh("docker", "ps", "-q", "--no-trunc", "--filter", f"label={HELPER_LABEL}",
                          check=False).split():
                for f in (f"/sys/fs/cgroup/memory/docker/{cid}/memory.max_usage_in_bytes",
                          f"/sys/fs/cgroup/docker/{cid}/memory.peak",
                          f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/memory.peak"):
                    try:
                        peak["memory"] = max(peak["memory"], float(Path(f).read_text()))
                        break
                    except (OSError, ValueError):
                        continue
                fds = 0
                for pid in sh("docker", "top", cid, "-eo", "pid", check=False).split()[1:]:
                    try:
                        fds += len(os.listdir(f"/proc/{pid}/fd"))
                    except OSError:
                        pass
                peak["fds"] = max(peak["fds"], fds)
            stop.wait(interval)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


def measure(method: str, loop: Loop, neighbour: Loop, nginx: str, helper_image: str,
            n_events: dict[str, int]) -> dict[str, float]:
    quiesce()
    ttr, tcs = time_to_result(method, loop.name, helper_image, n_events)
    quiesce()
    session = start(method, loop.name, helper_image, n_events)
    target_rate = loop.trigger()
    neighbour_rate = neighbour.trigger()
    session.stop()
    quiesce()
    session = start(method, nginx, helper_image, n_events)
    rps = wrk_rps()
    session.stop()
    return {"time to result (2 s window), s": ttr, "time to counting start, s": tcs,
            "target loop, calls/s": target_rate, "neighbour loop, calls/s": neighbour_rate,
            "server, requests/s": rps}


def helper_footprint(loop: Loop) -> dict[str, float]:
    figures = {}
    for seconds in (5, 30):
        quiesce()
        with helper_watch() as peak:
            sh("docker", "spy", loop.name, "-d", f"{seconds}s", "-q")
            time.sleep(0.5)
        figures[f"helper peak memory, MiB ({seconds} s window)"] = peak["memory"] / (1 << 20)
        figures[f"helper open files ({seconds} s window)"] = peak["fds"]
    return figures


def many_containers(sizes: tuple[int, ...] = (5, 20)) -> dict[str, float]:
    """Several idle containers in one run: time to the result of a 2 s window, and the
    helper's peak memory and open files (perf's events grow with the containers)."""
    figures = {}
    group = f"bench-many-{os.getpid()}"
    names: list[str] = []
    try:
        for size in sizes:
            while len(names) < size:
                names.append(f"{group}-{len(names)}")
                sh("docker", "run", "-d", "--name", names[-1], "--label", f"{group}=1", BASE,
                   "sleep", "infinity")
            quiesce()
            with helper_watch() as peak:
                t0 = time.monotonic()
                sh("docker", "spy", "--filter", f"label={group}=1", "-d", "2s", "-q")
                figures[f"time to result (2 s window), {size} containers, s"] = time.monotonic() - t0
                time.sleep(0.5)
            figures[f"helper peak memory, MiB ({size} containers)"] = peak["memory"] / (1 << 20)
            figures[f"helper open files ({size} containers)"] = peak["fds"]
    finally:
        if names:
            sh("docker", "rm", "-f", *names, check=False)
    return figures


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                               enumerate(zip(r, widths, strict=True))) for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--methods", default=",".join(METHODS))
    args = parser.parse_args()
    methods = [m for m in METHODS if m in args.methods.split(",")]
    with tempfile.TemporaryDirectory(prefix="spy-bench-") as tmp:
        workdir = Path(tmp)
        binary = build_loop(workdir)
        build_nginx()
        sh(str(REPO / "docker-spy"), "install")
        helper_image = sh("docker", "spy", "build-helper").split()[0]
        n_events = count_events(helper_image)
        loop, neighbour = Loop("bench-target", binary, workdir), Loop("bench-neighbour", binary, workdir)
        nginx = start_nginx()
        try:
            results: dict[str, dict[str, list[float]]] = {m: {} for m in methods}
            for rep in range(args.reps):
                for method in methods:
                    log(f"rep {rep + 1}/{args.reps}: {method}")
                    for key, value in measure(method, loop, neighbour, nginx, helper_image,
                                              n_events).items():
                        results[method].setdefault(key, []).append(value)
            footprint = {**helper_footprint(loop), **many_containers()} if "docker spy" in methods else {}
        finally:
            sh("docker", "rm", "-f", loop.name, neighbour.name, nginx, check=False)
    print(report(results, methods, args.reps, footprint))
    return 0


def report(results: dict[str, dict[str, list[float]]], methods: list[str], reps: int,
           footprint: dict[str, float]) -> str:
    median = {m: {k: statistics.median(v) for k, v in results[m].items()} for m in methods}
    keys = list(next(iter(median.values())).keys())
    out = [f"docker spy benchmark: medians of {reps} runs; {os.cpu_count()} CPUs, "
           f"kernel {os.uname().release}, engine {sh('docker', 'version', '-f', '{{.Server.Version}}')}",
           ""]
    rows = [("figure", *methods)]
    for key in keys:
        rows.append((key, *(f"{median[m][key]:,.2f}" if "s" == key[-1] else f"{median[m][key]:,.0f}"
                            for m in methods)))
    out.append(table(rows))
    if "untraced" in methods:
        out += ["", "ratio to untraced (1.00 = no cost)"]
        rows = [("figure", *methods)]
        for key in ("target loop, calls/s", "neighbour loop, calls/s", "server, requests/s"):
            base = median["untraced"][key]
            rows.append((key, *(f"{median[m][key] / base:.2f}" for m in methods)))
        out.append(table(rows))
    if "docker spy" in methods:
        out += ["", "ratio to docker spy (time: > 1 is slower than docker spy; speed: > 1 is faster)"]
        rows = [("figure", *methods)]
        for key in keys:
            base = median["docker spy"][key]
            rows.append((key, *(f"{median[m][key] / base:.2f}" if base else "-" for m in methods)))
        out.append(table(rows))
    if footprint:
        out += ["", "docker spy's helper"]
        out.append(table([(k, f"{v:,.1f}") for k, v in footprint.items()]))
    out.append("")
    out.append("raw: " + json.dumps(results))
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
