"""Ctrl-C, SIGTERM, timeout(1) and a slow start, through the real docker CLI with its plugin
socket, on a real engine: the report is never lost nor faked, and nothing hangs. Where timing
decides, five times in a row."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from .conftest import HELPER_LABEL, Target, run, start_spy, syscall, wait_no_helpers

pytestmark = pytest.mark.e2e
N = 3210
FIVE = range(5)


def interrupt(spy, sig: int = signal.SIGINT) -> None:
    os.killpg(spy.proc.pid, sig)  # as a terminal or timeout(1) does: the CLI and the plugin


@pytest.mark.parametrize("args", [[], ["--format", "json", "-d", "60s"]], ids=["table", "json-60s"])
def test_timeout_int_prints_the_report_every_time(docker_env, helper_image, target: Target,
                                                  args: list[str]) -> None:
    # `timeout -s INT` signals the whole group; the docker CLI, whose output is a pipe, then
    # closes the plugin's socket, sometimes well after: still one interrupt, and the report.
    for i in FIVE:
        spy = start_spy(docker_env, target.name, "--top", "2", "-l", "info", *args,
                        new_session=True, wrapper=("timeout", "-s", "INT", "10"))
        spy.wait_counting()
        target.trigger(N + i)
        code, out, err = spy.finish(timeout=60)
        assert code == 124, f"run {i}: {err}"  # timeout(1) says it timed out
        if args:
            doc = json.loads(out)
            assert doc["partial"] is True and doc["stopped"] == "interrupted", f"run {i}"
            assert syscall(doc, "getppid")["calls"] == N + i
        else:
            rows = {line.split()[0]: line.split() for line in out.splitlines() if line[:1].isalpha()}
            assert rows["getppid"][1] == f"{N + i:,}", f"run {i}: {out}"
            assert "PARTIAL" not in out  # until Ctrl-C: the interrupt is the window's end
        assert "docker spy: interrupted" not in err, f"run {i}: {err}"
    assert wait_no_helpers() == []


@pytest.fixture
def closing_helper() -> Iterator[None]:
    """A process named as a helper whose perf is closing its events: a new perf helper waits for
    it before it counts (helper/peers.py), so the start is slow, on purpose."""
    proc = subprocess.Popen(["python3", "-c", "import ctypes, time; "
                             "ctypes.CDLL(None).prctl(15, b'spy-helper:cls', 0, 0, 0); time.sleep(600)"])
    for _ in range(100):
        if open(f"/proc/{proc.pid}/comm").read().strip() == "spy-helper:cls":
            break
        time.sleep(0.05)
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def test_a_slow_start_says_what_it_waits_for_and_ctrl_c_then_reports_nothing(
        docker_env, helper_image, target: Target, closing_helper: None) -> None:
    for i in FIVE:
        spy = start_spy(docker_env, target.name, "-d", "30s", "--engine", "perf", new_session=True)
        deadline = time.monotonic() + 30
        said = "waiting for another docker spy helper's perf to close its events (about 15 s)..."
        while not any(said in line for line in spy.stderr_lines):
            assert time.monotonic() < deadline, "".join(spy.stderr_lines)
            time.sleep(0.1)
        interrupt(spy)
        code, out, err = spy.finish(timeout=30)
        assert code == 130, f"run {i}: {err}"
        assert out == ""  # no table: nothing was counted
        assert err.strip().splitlines()[-1] == "docker spy: interrupted before counting started"
    assert wait_no_helpers(timeout=30) == []  # each helper stopped waiting when told


def test_ctrl_c_as_counting_starts(docker_env, helper_image, target: Target) -> None:
    # Anywhere in the helper's start (from its creation on): before counting, one line; once
    # counting, a report. Never a fake one, never a helper left behind.
    for i, delay in enumerate((0.0, 0.1, 0.2, 0.35, 0.5)):
        spy = start_spy(docker_env, target.name, "-d", "30s", "--format", "json", "-l", "debug",
                        new_session=True)
        deadline = time.monotonic() + 60
        while not any("helper created" in line for line in spy.stderr_lines):
            assert time.monotonic() < deadline and spy.proc.poll() is None, "".join(spy.stderr_lines)
            time.sleep(0.01)
        time.sleep(delay)
        interrupt(spy)
        code, out, err = spy.finish(timeout=60)
        assert code == 130, f"run {i}: {err}"
        if spy.counting.is_set():
            doc = json.loads(out)
            assert doc["partial"] is True and doc["stopped"] == "interrupted"
        else:
            assert out == "" and err.strip().endswith("interrupted before counting started"), err
    assert wait_no_helpers() == []


def test_ctrl_c_in_the_live_view(docker_env, helper_image, target: Target) -> None:
    for i in FIVE:
        spy = start_spy(docker_env, target.name, "-d", "60s", "-i", "1s", "-l", "info", new_session=True)
        spy.wait_counting()
        target.trigger(N + i)
        time.sleep(1.5)
        interrupt(spy)
        code, out, err = spy.finish(timeout=60)
        assert code == 130, f"run {i}: {err}"
        *lines, final = [json.loads(line) for line in out.splitlines()]
        assert lines and syscall(lines[-1], "getppid")["calls"] == N + i, f"run {i}"
        # after the intervals, the report of the window so far, on one line
        assert final["kind"] == "report" and syscall(final, "getppid")["calls"] == N + i, f"run {i}"
    assert wait_no_helpers() == []


def test_ctrl_c_as_the_window_ends(docker_env, helper_image, target: Target) -> None:
    # The interrupt lands just before, at or just after the end of a 2 s window: the whole
    # report or the partial one, never none.
    for i, late in enumerate((-0.2, -0.05, 0.0, 0.05, 0.2)):
        spy = start_spy(docker_env, target.name, "-d", "2s", "--format", "json", "-l", "info",
                        new_session=True)
        spy.wait_counting()
        counting_at = time.monotonic()
        target.trigger(N + i)
        time.sleep(max(0.0, 2.0 + late - (time.monotonic() - counting_at)))
        interrupt(spy)
        code, out, err = spy.finish(timeout=60)
        assert code in (0, 130), f"run {i}: {err}"
        doc = json.loads(out)
        assert syscall(doc, "getppid")["calls"] == N + i, f"run {i}"
    assert wait_no_helpers() == []


def test_a_second_ctrl_c_quits_at_once(docker_env, helper_image, target: Target) -> None:
    """The first Ctrl-C asks the helper for its report; while the helper cannot answer (it is
    paused here), a second one quits at once."""
    spy = start_spy(docker_env, target.name, "-d", "60s", "-l", "info", new_session=True)
    spy.wait_counting()
    helper = run("docker", "ps", "-q", "--filter", f"label={HELPER_LABEL}",
                 "--filter", f"label=io.docker-spy.target={target.id}").stdout.split()
    assert len(helper) == 1
    run("docker", "pause", helper[0])
    try:
        interrupt(spy)
        time.sleep(1.0)
        assert spy.proc.poll() is None  # the first one waits for the report
        second = time.monotonic()
        interrupt(spy)
        code, out, err = spy.finish(timeout=30)
        assert time.monotonic() - second < 5
        assert code == 130 and out == ""
        assert err.strip().splitlines()[-1] == "docker spy: interrupted"
    finally:
        run("docker", "unpause", helper[0], check=False)
    assert wait_no_helpers() == []  # its stdin closed: it stops and goes


def test_sigterm_reports_and_exits_143(docker_env, helper_image, target: Target) -> None:
    for _ in range(2):
        spy = start_spy(docker_env, target.name, "-d", "60s", "--format", "json", "-l", "info",
                        new_session=True)
        spy.wait_counting()
        target.trigger(N)
        interrupt(spy, signal.SIGTERM)
        code, out, err = spy.finish(timeout=60)
        assert code == 143, err
        assert syscall(json.loads(out), "getppid")["calls"] == N


def test_a_window_too_short_for_rates_says_so(docker_env, helper_image, target: Target) -> None:
    spy = start_spy(docker_env, target.name, "-d", "30s", "-l", "info", new_session=True)
    spy.wait_counting()
    interrupt(spy)
    code, out, err = spy.finish(timeout=60)
    assert code == 130, err
    title = out.splitlines()[0]
    seconds = float(title.split(" syscalls in ")[1].split(" s")[0])
    if seconds < 0.1:
        assert "too short for rates" in title
    else:
        assert "too short" not in title
