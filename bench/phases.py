"""The phases section: where a 2 s window's time to result goes, from the command to its exit.

Two kinds of runs of `docker spy TARGET -d 2s --format json`, alternated, on a quiet target (a
shell that sleeps 0.1 s in a loop) and then on a busy one (`dd bs=1`: a CPU's worth of syscalls):

- plain, as a user runs it: the time to result, whole (the figure the target is set on:
  at most the window + 0.8 s);
- with `-D`: the plugin's debug log stamps each step to the microsecond, so the same run is cut
  into phases: the docker CLI, its metadata call to the plugin and Python's start (until docker
  spy's first module runs: `plugin.STARTED`, logged as "plugin started"), the plugin's start
  (imports, the command line, and the debug log's own set-up), the engine's API (target, image,
  leftover helpers, create), the engine starting the helper container, the helper starting to
  count (its Python, the BPF program's load and self-test), the window, the report (validated
  and drawn) and the exit (the plugin's, then the docker CLI's). A -D run costs its log's
  set-up more than a plain one; the section prints both totals.

Needs an engine and the helper image (`docker spy build-helper`): `python3 bench/phases.py
[--runs N]` prints this section alone; bench.py runs it after the build section.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WINDOW = 2.0
# The quiet target wakes every 0.1 s; the busy one keeps a CPU (of two, here) busy with syscalls
# (read and write of one byte: millions a second), as a busy server would.
TARGETS = {"quiet": "while :; do sleep 0.1; done", "busy": "dd if=/dev/zero of=/dev/null bs=1"}
BASE = os.environ.get("SPY_BASE_IMAGE", "debian:trixie-slim")
FRONT = Path(__file__).resolve().parents[1] / "docker-spy"
RUNS = 5
# (phase, the debug event that ends it); the first starts at the command, the last ends at exit.
STEPS = (("docker CLI, metadata, Python start", "plugin started"),
         ("plugin start (imports, command line, log set-up)", "connecting to the engine"),
         ("engine API (target, image, leftovers, create)", "helper created"),
         ("container start (the engine)", "helper started"),
         ("helper start (Python, BPF load, self-test)", "counting"),
         ("counting (the window)", "report received"),
         ("report (validated, drawn)", "report printed"),
         ("exit (the plugin, then the docker CLI)", None))
ROWS = ("time to result", "time to result, -D", *(phase for phase, _ in STEPS))
LINE = re.compile(r"^(\d\d:\d\d:\d\d\.\d{6}) \[\w+\s*\] (\S+(?: \S+)*?)(?:\s{2,}|\s*$)(.*)")


def stamps(stderr: str, day: datetime.date) -> dict[str, float]:
    """The debug log's events and their times (seconds since the epoch); "plugin started" is
    when the plugin's code began (its `at=`), not when it logged it."""
    found: dict[str, float] = {}
    for line in stderr.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        clock, event, fields = m.groups()
        if event == "plugin started":
            clock = re.search(r"at=(\S+)", fields).group(1)  # type: ignore[union-attr]
        at = datetime.datetime.combine(day, datetime.time.fromisoformat(clock))
        found.setdefault(event, at.timestamp())
    return found


def cut(started: float, ended: float, events: dict[str, float]) -> dict[str, float]:
    """The phases of one -D run, in seconds."""
    missing = [event for _, event in STEPS if event and event not in events]
    if missing:
        raise RuntimeError(f"the debug log lacks {missing}")
    bounds = [started, *(events[e] for _, e in STEPS if e), ended]
    return {phase: bounds[i + 1] - bounds[i] for i, (phase, _) in enumerate(STEPS)}


def one(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    day = datetime.date.today()
    started = time.time()
    proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120)
    ended = time.time()
    if proc.returncode or not proc.stdout.strip():
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.strip()[-400:]}")
    if datetime.date.today() != day:
        raise RuntimeError("the run crossed midnight")  # the log's clock has no date
    return started, ended, proc.stderr


def measure(runs: int = RUNS, config: str | None = None, helper_image: str | None = None,
            label: str = "phases") -> dict[str, dict[str, list[float]]]:
    """{row: {target: seconds of each run}}. config: a DOCKER_CONFIG with this checkout's docker
    spy, else one is made; helper_image: the bench run's (else the plugin's own tag); label: the
    bench run's id, for its clean-up."""
    values: dict[str, dict[str, list[float]]] = {row: {t: [] for t in TARGETS} for row in ROWS}
    with tempfile.TemporaryDirectory(prefix="spy-bench-phases-") as tmp:
        if config is None:
            config = tmp
            (Path(tmp) / "cli-plugins").mkdir()
            (Path(tmp) / "cli-plugins" / "docker-spy").symlink_to(FRONT)
        env = {**os.environ, "DOCKER_CONFIG": config}
        for target, command in TARGETS.items():
            name = f"spy-bench-phases-{target}-{os.getpid()}"
            subprocess.run(["docker", "run", "-d", "--name", name, "--label", f"io.docker-spy.bench={label}",
                            BASE, "sh", "-c", command], env=env, check=True, capture_output=True, timeout=120)
            try:
                plain = ["docker", "spy", name, "-d", f"{WINDOW:g}s", "--format", "json",
                         *(["--helper-image", helper_image] if helper_image else [])]
                one(plain, env)  # the page cache warm, the helper image there; not counted
                for _ in range(runs):
                    started, ended, _ = one(plain, env)
                    values["time to result"][target].append(ended - started)
                    started, ended, stderr = one([*plain, "-D"], env)
                    values["time to result, -D"][target].append(ended - started)
                    for phase, took in cut(started, ended, stamps(stderr, datetime.date.today())).items():
                        values[phase][target].append(took)
            finally:
                subprocess.run(["docker", "rm", "-f", name], env=env, capture_output=True, timeout=120)
    return values


def section(values: dict[str, dict[str, list[float]]]) -> list[str]:
    targets = [t for t in TARGETS if values["time to result"].get(t)]
    runs = len(values["time to result"][targets[0]])
    med = {row: {t: statistics.median(values[row][t]) for t in targets} for row in ROWS}
    lines = [f"phases: a {WINDOW:g} s window's time to result, from the command to its exit, s "
             f"(medians of {runs}; the phases from -D runs' debug log; target: the window + 0.8 s)",
             *(f"  {t}: {TARGETS[t]}" for t in targets)]
    width = max(len(row) for row in ROWS)
    lines.append(f"  {'':{width}}" + "".join(f"  {t:>7}" for t in targets))
    for row in ROWS:
        lines.append(f"  {row:{width}}" + "".join(f"  {med[row][t]:7.3f}" for t in targets))
    lines.append(f"  {'over the window':{width}}"
                 + "".join(f"  {med['time to result'][t] - WINDOW:+7.3f}" for t in targets))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS, help=f"runs of each kind (default {RUNS})")
    args = parser.parse_args()
    print("\n".join(section(measure(args.runs))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
