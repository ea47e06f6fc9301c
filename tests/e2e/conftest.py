"""E2E fixtures: a real engine, the plugin installed for the real docker CLI, real targets.

They never skip in CI (CI=true): a missing engine or compiler fails the run there.
Everything they create is force-removed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BASE_IMAGE = os.environ.get("SPY_BASE_IMAGE", "debian:trixie-slim")
HELPER_LABEL = "io.docker-spy.role=helper-container"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ENGINES = ("bpf", "perf")
# The plugin's -l info line when counting starts; not "waiting for the helper to start
# counting", nor the warning "counting with perf: ...".
COUNTING_LOG = re.compile(r"\[info\s*\] counting\s")


GUEST_FACTS: dict[str, object] = {}  # what the VM tests ran on (test_vm.py), for the summary


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The layout tests after the others: their v1 engine takes perf_event from cgroup2 while
    it runs. The VM tests last: their guest's emulation takes this machine's two cores."""
    items.sort(key=lambda item: (item.get_closest_marker("vm") is not None,
                                 item.get_closest_marker("layouts") is not None))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if GUEST_FACTS:
        terminalreporter.section("the VM the vm tests ran in")
        for key, value in GUEST_FACTS.items():
            terminalreporter.write_line(f"{key}: {value}")


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"e2e prerequisite missing in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 300,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def engine() -> None:
    if shutil.which("docker") is None:
        unavailable("no docker CLI on PATH")
    if run("docker", "info", check=False, timeout=30).returncode != 0:
        unavailable("no Docker engine answers (bash .ci/provision starts one)")
    if run("docker", "image", "inspect", BASE_IMAGE, check=False).returncode != 0:
        unavailable(f"{BASE_IMAGE} is not on the engine (bash .ci/provision makes it)")


@pytest.fixture(scope="session")
def docker_env(engine: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment whose docker CLI has docker spy installed as a plugin, via install."""
    config = tmp_path_factory.mktemp("docker-config")
    env = {**os.environ, "DOCKER_CONFIG": str(config)}
    run(str(REPO / "docker-spy"), "install", env=env)
    return env


@pytest.fixture(scope="session")
def helper_image(docker_env: dict[str, str]) -> str:
    """The helper image, built through the plugin once per session."""
    proc = run("docker", "spy", "build-helper", env=docker_env, timeout=900)
    return proc.stdout.split()[0]


@pytest.fixture(scope="session")
def workload(engine: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        unavailable("no gcc to build the e2e workload (apt-get install gcc libc6-dev)")
    out = tmp_path_factory.mktemp("workload") / "workload"
    run("gcc", "-static", "-O2", "-o", str(out), str(Path(__file__).parent / "workload.c"))
    return out


@dataclass
class Target:
    name: str
    id: str
    spy_dir: Path

    def trigger(self, n: int, forks: int = 0, signals: int = 0, sleeps: int = 0,
                timeout: float = 30) -> tuple[int, int]:
        """Make the target do exactly n getppid calls, n failing fchdir calls, `forks` fork
        calls, `signals` signals to itself (as many rt_sigreturn) and `sleeps` clock_nanosleep
        calls of 20 ms, now. Returns the nanoseconds those sleeps took in all and the longest,
        as the target measured them around each call."""
        done = self.spy_dir / "done"
        done.unlink(missing_ok=True)
        tmp = self.spy_dir / "go.tmp"
        tmp.write_text(f"{n} {forks} {signals} {sleeps}")
        tmp.rename(self.spy_dir / "go")
        deadline = time.monotonic() + timeout
        while not done.exists():
            assert time.monotonic() < deadline, "the workload did not finish"
            time.sleep(0.01)
        slept, longest = (int(x) for x in done.read_text().split())
        return slept, longest


SESSION_TARGETS: set[str] = set()  # ids of the containers this session spied, to tell its helpers


def start_target(workload: Path, spy_dir: Path, *docker_args: str, host: str | None = None) -> Target:
    """Start a container running the workload, its trigger folder bound at /spy."""
    spy_dir.mkdir()
    shutil.copy(workload, spy_dir / "workload")
    name = f"spy-e2e-{secrets.token_hex(4)}"
    cid = run("docker", *(("-H", host) if host else ()), "run", "-d", "--name", name,
              "-v", f"{spy_dir}:/spy", *docker_args, BASE_IMAGE, "/spy/workload").stdout.strip()
    SESSION_TARGETS.add(cid)
    return Target(name, cid, spy_dir)


def running_target(workload: Path, spy_dir: Path) -> Iterator[Target]:
    """A container running the workload, its trigger folder bound at /spy; removed after."""
    started = start_target(workload, spy_dir)
    try:
        yield started
    finally:
        run("docker", "rm", "-f", started.name, check=False)


@pytest.fixture
def target(workload: Path, tmp_path: Path) -> Iterator[Target]:
    yield from running_target(workload, tmp_path / "spy")


@pytest.fixture
def second_target(workload: Path, tmp_path: Path) -> Iterator[Target]:
    yield from running_target(workload, tmp_path / "spy-second")


@pytest.fixture(params=ENGINES)
def spy_engine(request: pytest.FixtureRequest) -> str:
    """Each exactness test runs on both engines: `--engine bpf` and `--engine perf`."""
    return request.param


@dataclass
class SpyRun:
    """A `docker spy` process whose stderr is watched for the moment counting starts. Every
    wait is bounded: a plugin that hangs fails its test, and is killed, instead of hanging CI."""

    proc: subprocess.Popen[str]
    stderr_lines: list[str] = field(default_factory=list)
    stdout_parts: list[str] = field(default_factory=list)
    counting: threading.Event = field(default_factory=threading.Event)

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line)
            if COUNTING_LOG.search(line):
                self.counting.set()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        while chunk := self.proc.stdout.read(65536):
            self.stdout_parts.append(chunk)

    def wait_counting(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not self.counting.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"counting never started (exit {self.proc.poll()}):\n"
                                     + "".join(self.stderr_lines))

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"docker spy did not end within {timeout:g} s:\n"
                                 + "".join(self.stderr_lines)) from None
        self._out.join(10)
        self._thread.join(10)
        return code, "".join(self.stdout_parts), "".join(self.stderr_lines)


def start_spy(env: dict[str, str], *args: str, new_session: bool = False,
              docker_flags: tuple[str, ...] = (), wrapper: tuple[str, ...] = ()) -> SpyRun:
    """`[WRAPPER] docker [DOCKER_FLAGS] spy ARGS` in the background; with new_session, in a
    process group of its own that a test can signal as a terminal would."""
    proc = subprocess.Popen([*wrapper, "docker", *docker_flags, "spy", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=new_session)
    spy = SpyRun(proc)
    spy._thread = threading.Thread(target=spy._pump, daemon=True)  # type: ignore[attr-defined]
    spy._out = threading.Thread(target=spy._read_stdout, daemon=True)  # type: ignore[attr-defined]
    spy._thread.start()  # type: ignore[attr-defined]
    spy._out.start()  # type: ignore[attr-defined]
    return spy


def helpers_left() -> list[str]:
    """This session's helpers still on the engine (another user of the engine may have its own:
    a helper is this session's when it spies one of this session's containers)."""
    out = run("docker", "ps", "-a", "--filter", f"label={HELPER_LABEL}",
              "--format", '{{.Names}} {{.Label "io.docker-spy.target"}}').stdout
    return [line.split()[0] for line in out.splitlines()
            if set(line.split()[1:2] and line.split()[1].split(",")) & SESSION_TARGETS]


def wait_no_helpers(timeout: float = 120) -> list[str]:
    """Helpers remove themselves once perf has closed its events (~15 s here)."""
    deadline = time.monotonic() + timeout
    while (left := helpers_left()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def syscall(doc: dict, name: str) -> dict:
    rows = {row["name"]: row for row in doc["syscalls"]}
    assert name in rows, f"{name} not in the report: {json.dumps(doc)[:500]}"
    return rows[name]
