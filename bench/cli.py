"""The cli section: what docker spy costs the rest of the docker CLI, and its own start.

The docker CLI runs every installed plugin's `docker-cli-plugin-metadata` on each `docker
--help`, `docker info`, completion, and before every `docker spy`. Measured side by side,
interleaved (so a busy moment hits every row alike), the median of N runs each:

- `docker --help` with no plugin, and with docker spy installed (a private DOCKER_CONFIG each);
- the metadata answer: the docker-spy front (sh), and the same answer from Python;
- `docker spy --help` and `docker spy version --short` through the docker CLI;
- the Python the front runs, doing nothing (`-c pass`): the floor of anything Python answers.

Needs no engine: `python3 bench/cli.py [--runs N]` prints this section alone.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FRONT = REPO / "docker-spy"
RUNS = 20
ROWS = ("docker --help, no plugin", "docker --help, docker spy installed",
        "metadata: the docker-spy front (sh)", "metadata: Python (before the front)",
        "docker spy --help", "docker spy version --short", "python3 -c pass")


def _python() -> str:
    return os.environ.get("DOCKER_SPY_PYTHON") or shutil.which("python3") or sys.executable


def commands(plain: Path, installed: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    without, with_spy = {**env, "DOCKER_CONFIG": str(plain)}, {**env, "DOCKER_CONFIG": str(installed)}
    python = _python()
    return dict(zip(ROWS, (
        (["docker", "--help"], without),
        (["docker", "--help"], with_spy),
        ([str(FRONT), "docker-cli-plugin-metadata"], with_spy),
        ([python, str(REPO / "plugin" / "__main__.py"), "docker-cli-plugin-metadata"], with_spy),
        (["docker", "spy", "--help"], with_spy),
        (["docker", "spy", "version", "--short"], with_spy),
        ([python, "-c", "pass"], with_spy),
    ), strict=True))


def once(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    took = time.perf_counter() - started
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.decode()[-300:]}")
    return took


def measure(runs: int = RUNS) -> dict[str, dict[str, list[float]]]:
    with tempfile.TemporaryDirectory(prefix="spy-bench-cli-") as tmp:
        plain, installed = Path(tmp) / "plain", Path(tmp) / "installed"
        plain.mkdir()
        (installed / "cli-plugins").mkdir(parents=True)
        (installed / "cli-plugins" / "docker-spy").symlink_to(FRONT)
        todo = commands(plain, installed)
        for argv, env in todo.values():  # warm the page cache; the first of each is not counted
            once(argv, env)
        times: dict[str, list[float]] = {row: [] for row in todo}
        for _ in range(runs):
            for row, (argv, env) in todo.items():
                times[row].append(once(argv, env))
    return {row: {"seconds": values} for row, values in times.items()}


def section(values: dict[str, dict[str, list[float]]]) -> list[str]:
    runs = max(len(v["seconds"]) for v in values.values())
    med = {row: statistics.median(v["seconds"]) for row, v in values.items()}
    lines = [f"the docker CLI with docker spy installed (medians of {runs}, side by side), "
             f"Python: {_python()}"]
    width = max(len(row) for row in med)
    lines += [f"  {row.ljust(width)}  {1000 * s:7.1f} ms" for row, s in med.items()]
    extra = med[ROWS[1]] - med[ROWS[0]]
    lines.append(f"  docker spy adds {1000 * extra:.1f} ms to docker --help; docker spy --help takes "
                 f"{1000 * (med[ROWS[4]] - med[ROWS[0]]):.1f} ms more than docker --help")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS, help=f"runs of each command (default {RUNS})")
    args = parser.parse_args()
    print("\n".join(section(measure(args.runs))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
