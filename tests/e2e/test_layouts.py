"""Exact on every cgroup layout this machine can make, with a second engine beside the host's
(tests/e2e/layout-engine.sh): one that sees only cgroup v2, as most distributions run, and
one that sees no cgroup2 at all, where only perf can count. The v1 layout moves the kernel's
perf_event controller to a v1 hierarchy while it runs, so these tests run last (conftest)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import BASE_IMAGE, Target, run, start_spy, start_target, syscall
from .test_engines import cgroup2_dir

pytestmark = [pytest.mark.e2e, pytest.mark.layouts]
N = 1717
SCRIPT = Path(__file__).with_name("layout-engine.sh")


@dataclass
class Layout:
    kind: str  # v2 or v1
    host: str  # its DOCKER_HOST
    env: dict[str, str]  # the plugin's environment, pointed at it
    engines: tuple[str, ...]  # the counting engines that can run there


@pytest.fixture(scope="module", params=["v2", "v1"])
def layout(request: pytest.FixtureRequest, docker_env: dict[str, str], helper_image: str) -> Iterator[Layout]:
    kind = request.param
    name = f"e2e-{kind}"
    host = run("bash", str(SCRIPT), "start", kind, name, timeout=120).stdout.strip()
    try:
        # No registry and no network there: the images come from the host's engine.
        save = subprocess.Popen(["docker", "save", BASE_IMAGE, helper_image], stdout=subprocess.PIPE)
        run_load = subprocess.run(["docker", "-H", host, "load", "-q"], stdin=save.stdout,
                                  capture_output=True, text=True, timeout=300)
        save.wait(60)
        assert run_load.returncode == 0, run_load.stderr
        info = run("docker", "-H", host, "info", "--format", "{{.CgroupVersion}}").stdout.strip()
        assert info == ("2" if kind == "v2" else "1")
        yield Layout(kind, host, {**docker_env, "DOCKER_HOST": host},
                     ("bpf", "perf") if kind == "v2" else ("perf",))
    finally:
        stopped = run("bash", str(SCRIPT), "stop", name, check=False, timeout=300)
        sys.stderr.write(stopped.stderr)  # how long perf_event took to come back, if it had to wait
    # With the v1 engine gone, perf_event is cgroup2's again (the script emptied and dropped
    # its v1 hierarchy): the host's perf engine can count.
    assert not any(":perf_event:" in line for line in Path("/proc/self/cgroup").read_text().splitlines())


@pytest.fixture
def there(layout: Layout, workload: Path, tmp_path: Path) -> Iterator[Target]:
    """A workload container on the layout's engine (no bridge there: no network)."""
    t = start_target(workload, tmp_path / "spy", "--network", "none", host=layout.host)
    try:
        yield t
    finally:
        run("docker", "-H", layout.host, "rm", "-f", t.name, check=False)


def spy_json(layout: Layout, target: Target, *args: str, kill: bool = False) -> tuple[dict, str]:
    spy = start_spy(layout.env, target.name, "-d", "30s" if kill else "3s", "--format", "json",
                    "-l", "info", *args)
    spy.wait_counting()
    target.trigger(N, forks=3, signals=5)
    if kill:
        run("docker", "-H", layout.host, "kill", target.name)
    code, out, err = spy.finish()
    assert code == 0, err
    return json.loads(out), err


def assert_exact(doc: dict) -> None:
    assert syscall(doc, "getppid")["calls"] == N
    assert syscall(doc, "fchdir")["calls"] == syscall(doc, "fchdir")["errors"] == N
    assert syscall(doc, "fork")["calls"] == 3 and syscall(doc, "exit_group")["calls"] == 3
    assert syscall(doc, "rt_sigreturn")["calls"] == 5


def test_exact_with_every_engine_that_runs_there(layout: Layout, there: Target) -> None:
    for engine in layout.engines:
        doc, _ = spy_json(layout, there, "--engine", engine)
        assert doc["engine"] == engine
        assert doc["host"]["cgroup_layout"] == layout.kind
        assert doc["host"]["cgroup_version"] == (2 if layout.kind == "v2" else 1)
        assert_exact(doc)


def test_auto_picks_the_engine_that_can_count(layout: Layout, there: Target) -> None:
    doc, err = spy_json(layout, there)
    if layout.kind == "v2":
        assert doc["engine"] == "bpf" and "counting with perf" not in err
    else:
        # No cgroup2 here: perf counts, and one warning line says why.
        assert doc["engine"] == "perf"
        warnings = [line for line in err.splitlines() if "counting with perf" in line]
        assert len(warnings) == 1 and "no cgroup2 is mounted" in warnings[0], err
    assert_exact(doc)


def test_the_bpf_engine_asked_for_by_name(layout: Layout, there: Target) -> None:
    proc = run("docker", "spy", there.name, "-d", "2s", "--engine", "bpf", "--format", "json",
               env=layout.env, check=False)
    if "bpf" in layout.engines:
        assert proc.returncode == 0 and json.loads(proc.stdout)["engine"] == "bpf", proc.stderr
    else:  # it runs or fails, never falls back
        assert proc.returncode == 1
        assert proc.stderr.strip() == ("docker spy: the helper failed (bpf): the BPF engine cannot "
                                       "count here: no cgroup2 is mounted (a cgroup v1 host)")


def test_a_target_that_stops_gives_its_partial_report(layout: Layout, there: Target) -> None:
    engine = layout.engines[-1]  # perf: the one whose crash lost this report
    doc, err = spy_json(layout, there, "--engine", engine, kill=True)
    assert doc["partial"] is True and doc["stopped"] == "target-exited"
    assert syscall(doc, "getppid")["calls"] == N
    assert f"container {there.name} stopped during the window" in err


@contextmanager
def moved_below(layout: Layout, pid: int) -> Iterator[None]:
    """The process moved into a cgroup made below its container's, in the hierarchy that
    counts it there: cgroup v2, or on the v1 layout the perf_event one, which exists only in
    that engine's mount namespace (so the moves are made from inside it)."""
    if layout.kind == "v2":
        own = cgroup2_dir(pid)
        commands = [f"mkdir {own}/spy-e2e-child", f"echo {pid} > {own}/spy-e2e-child/cgroup.procs"]
        undo = [f"echo {pid} > {own}/cgroup.procs", f"rmdir {own}/spy-e2e-child"]
        prefix: list[str] = []
    else:
        line = next(x for x in Path(f"/proc/{pid}/cgroup").read_text().splitlines() if ":perf_event:" in x)
        own = Path("/sys/fs/cgroup/perf_event" + line.split(":", 2)[2])
        commands = [f"mkdir {own}/spy-e2e-child", f"echo {pid} > {own}/spy-e2e-child/cgroup.procs"]
        undo = [f"echo {pid} > {own}/cgroup.procs", f"rmdir {own}/spy-e2e-child"]
        dockerd = Path(f"/run/spy-layout-e2e-{layout.kind}/docker.pid").read_text().strip()
        prefix = ["nsenter", "-t", dockerd, "-m"]
    run(*prefix, "sh", "-c", " && ".join(commands))
    try:
        yield
    finally:
        run(*prefix, "sh", "-c", " && ".join(undo), check=False)


def test_a_cgroup_below_the_target_is_counted(layout: Layout, there: Target) -> None:
    pid = int(run("docker", "-H", layout.host, "inspect", "-f", "{{.State.Pid}}", there.name).stdout)
    with moved_below(layout, pid):
        for engine in layout.engines:
            doc, _ = spy_json(layout, there, "--engine", engine)
            assert_exact(doc)
