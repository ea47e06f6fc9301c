"""What the parts of the benchmark share: commands, watched processes, the run and its clean-up,
waiting for quiet, cgroup paths and text tables."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASE = os.environ.get("SPY_BASE_IMAGE", "debian:trixie-slim")
# Every container and image a bench run makes carries this label, valued with the run's id, so that
# the clean-up finds them whatever failed, and never touches what other runs on the engine made.
LABEL = "io.docker-spy.bench"
HELPER_LABEL = "io.docker-spy.role=helper-container"


class BenchError(Exception):
    """The bench cannot go on; main prints it in one line."""


def sh(*args: str, check: bool = True, timeout: float = 600) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode:
        raise BenchError(f"{' '.join(args)} failed: {proc.stderr.strip()[-500:]}")
    return proc.stdout.strip()


def log(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def tried(problems: list[str], what: str, action: Callable[..., dict[str, float]],
          *args: object) -> dict[str, float]:
    """The figures of action, or none when it fails: the bench reports, it does not stop there.
    (A method stopped with its figures still counts: its workload ran traced.)"""
    try:
        return action(*args)
    except BenchError as e:
        log(f"{what}: {e}")
        problems.append(f"{what}: {e}")
        return {}


LIVE: set[Watched] = set()  # processes still running, for the clean-up


class Watched:
    """A process whose stderr is read as it comes, each line with the time it arrived, so that
    "counting started" is timed when the line is written, not when someone looks."""

    def __init__(self, argv: list[str], *, group: bool = False, stdout: bool = False) -> None:
        # group: its own session, so that a Ctrl-C can go to all of it (the docker CLI and the
        # plugin it runs), as a terminal sends it to the foreground group.
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, text=True, start_new_session=group,
                                     stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        self.group = group
        self.lines: list[tuple[float, str]] = []
        self.done = False
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        LIVE.add(self)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self.changed:
                self.lines.append((time.monotonic(), line))
                self.changed.notify_all()
        with self.changed:
            self.done = True
            self.changed.notify_all()

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 180) -> tuple[float, re.Match[str]]:
        """The arrival time and match of the count-th stderr line that matches pattern."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                hits = [(t, m) for t, line in self.lines if (m := regex.search(line))]
                if len(hits) >= count:
                    return hits[count - 1]
                left = deadline - time.monotonic()
                if self.done or left <= 0:
                    tail = "".join(line for _, line in self.lines[-5:]).strip()[-400:]
                    raise BenchError(f"{self.proc.args[0]} never said {pattern!r}: {tail}")
                self.changed.wait(left)

    def signal(self, sig: int) -> None:
        try:
            if self.group:
                os.killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)
        except ProcessLookupError:
            pass

    def finish(self, timeout: float = 600) -> str:
        """Wait for the end; its stdout."""
        out = self.proc.stdout.read() if self.proc.stdout else ""
        self.proc.wait(timeout)
        self.reader.join(timeout)
        LIVE.discard(self)
        return out

    def stderr(self) -> str:
        return "".join(line for _, line in self.lines)


@dataclass
class Run:
    """One bench run: its id (the label's value), its temp dir, what it built."""

    id: str
    workdir: Path
    helper_image: str = ""  # the image id every docker spy and perf of this run uses
    fresh_images: list[str] = field(default_factory=list)  # ids made by cold builds, oldest first

    def label(self) -> list[str]:
        return ["--label", f"{LABEL}={self.id}"]


def clean_up(run: Run) -> None:
    """Remove all this run made: processes, containers (its own and the helpers docker spy started
    from its helper image), images. Safe to call at any point of the run."""
    for proc in list(LIVE):
        proc.signal(signal.SIGKILL)
        LIVE.discard(proc)
    ids = sh("docker", "ps", "-aq", "--filter", f"label={LABEL}={run.id}", check=False).split()
    if run.helper_image:
        ids += sh("docker", "ps", "-aq", "--filter", f"ancestor={run.helper_image}", check=False).split()
    if ids:
        sh("docker", "rm", "-f", *sorted(set(ids)), check=False)
    remove_images(run)


def remove_images(run: Run) -> None:
    """The images of this run: labelled ones first (removing them removes their untagged parents),
    then what is left of cold builds that an interruption cut short (those lack the label)."""
    labelled = sh("docker", "images", "-aq", "--filter", f"label={LABEL}={run.id}", check=False).split()
    tops = sh("docker", "images", "-q", "--filter", f"label={LABEL}={run.id}", check=False).split()
    for image in dict.fromkeys([*tops, *labelled, *reversed(run.fresh_images)]):
        sh("docker", "rmi", "-f", image, check=False)


def quiesce(run: Run, others_grace: float = 30) -> None:
    """Wait until this run's helpers and perf containers are gone, and for a while for other runs'
    helpers: perf's teardown slows every process on the host."""
    deadline = time.monotonic() + 180
    while sh("docker", "ps", "-q", "--filter", f"ancestor={run.helper_image}"):
        if time.monotonic() > deadline:
            raise BenchError("this run's helpers did not go away in 180 s")
        time.sleep(0.5)
    deadline = time.monotonic() + others_grace
    while sh("docker", "ps", "-q", "--filter", f"label={HELPER_LABEL}"):
        if time.monotonic() > deadline:
            log("helpers of other runs are still counting: this figure is noisier")
            break
        time.sleep(0.5)
    time.sleep(1)


def pid_of(container: str) -> int:
    return int(sh("docker", "inspect", "-f", "{{.State.Pid}}", container))


def cgroup2_mount() -> Path:
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if fields[2] == "cgroup2":
            return Path(fields[1])
    raise BenchError("no cgroup2 mount on this host")


def cgroup_of(pid: int, controller: str = "") -> str:
    """The task's cgroup path in the v1 hierarchy of that controller, or in cgroup2 ("")."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    raise BenchError(f"process {pid} has no {controller or 'cgroup2'} cgroup")


def table(rows: list[tuple[str, ...]]) -> str:
    """Left-aligned first column, right-aligned numbers, a rule under the header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    rows = [rows[0], tuple("-" * w for w in widths), *rows[1:]]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                               enumerate(zip(r, widths, strict=True))).rstrip() for r in rows)
