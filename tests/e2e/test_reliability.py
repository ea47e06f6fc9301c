"""Nothing lost, nothing left behind: signals, a target that stops, leftovers, concurrency,
an engine that goes away, and the catalogue of bad input. Real CLI, engine and perf."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from .conftest import (
    BASE_IMAGE,
    HELPER_LABEL,
    SESSION_TARGETS,
    Target,
    run,
    start_spy,
    start_target,
    syscall,
    wait_no_helpers,
)

pytestmark = pytest.mark.e2e
N = 54321


def interrupt(spy, sig: int) -> None:
    os.killpg(spy.proc.pid, sig)  # as a terminal does: the CLI and the plugin both get it


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_reports_what_was_counted(docker_env, helper_image, target: Target,
                                            sig: int, status: int, spy_engine: str) -> None:
    spy = start_spy(docker_env, target.name, "-d", "60s", "--format", "json", "-l", "info",
                    "--engine", spy_engine, new_session=True)
    spy.wait_counting()
    target.trigger(N)
    started = time.monotonic()
    interrupt(spy, sig)
    code, out, err = spy.finish()
    assert time.monotonic() - started < 10, f"stdout: {out[:400]}\nstderr: {err}"
    assert code == status, err
    doc = json.loads(out)
    assert doc["partial"] is True and doc["stopped"] == "interrupted"
    assert syscall(doc, "getppid")["calls"] == N and syscall(doc, "fchdir")["errors"] == N
    assert doc["window"]["measured_seconds"] < 60
    assert wait_no_helpers() == []


def test_interrupt_table_says_partial(docker_env, helper_image, target: Target) -> None:
    spy = start_spy(docker_env, target.name, "-d", "60s", "-l", "info", new_session=True)
    spy.wait_counting()
    interrupt(spy, signal.SIGINT)
    code, out, err = spy.finish()
    assert code == 130, err
    assert out.splitlines()[0].endswith("PARTIAL (interrupted)")


def test_until_ctrl_c_is_a_whole_report(docker_env, helper_image, target: Target) -> None:
    spy = start_spy(docker_env, target.name, "--format", "json", "-l", "info", new_session=True)
    spy.wait_counting()
    target.trigger(N)
    interrupt(spy, signal.SIGINT)
    code, out, err = spy.finish()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["partial"] is False and syscall(doc, "getppid")["calls"] == N
    assert doc["window"]["requested_seconds"] is None and doc["stopped"] is None


def test_target_stopping_during_the_window_five_times(docker_env, helper_image, workload: Path,
                                                     tmp_path: Path, spy_engine: str) -> None:
    # Back to back: with perf, each run's perf closes (~15 s) while the next one starts.
    for i in range(5):
        target = start_target(workload, tmp_path / f"spy{i}")
        try:
            spy = start_spy(docker_env, target.name, "-d", "60s", "--format", "json", "-l", "info",
                            "--engine", spy_engine)
            spy.wait_counting()
            target.trigger(N + i)
            run("docker", "kill", target.name)
            code, out, err = spy.finish()
            assert code == 0, f"run {i}: {err}"
            doc = json.loads(out)
            assert doc["partial"] is True and doc["stopped"] == "target-exited", f"run {i}"
            assert doc["targets"][0]["exited"] is True
            assert syscall(doc, "getppid")["calls"] == N + i, f"run {i}"
            assert f"container {target.name} stopped during the window" in err
            assert 0 < doc["window"]["measured_seconds"] < 60
        finally:
            run("docker", "rm", "-f", target.name, check=False)
    assert wait_no_helpers() == []


def test_a_short_lived_container_five_times(docker_env, helper_image) -> None:
    # A container that exits on its own 2.5 s after it started, spied for 5 s, five times
    # back to back (one run's helper still closing as the next starts): a partial report of
    # what it did, the warning, exit 0, every time. The default engine.
    for i in range(5):
        name = f"spy-e2e-short-{os.getpid()}-{i}"
        cid = run("docker", "run", "-d", "--name", name, BASE_IMAGE, "sleep", "2.5").stdout.strip()
        SESSION_TARGETS.add(cid)
        try:
            proc = run("docker", "spy", name, "-d", "5s", "--format", "json", env=docker_env,
                       check=False, timeout=60)
            assert proc.returncode == 0, f"run {i}: {proc.stderr}"
            doc = json.loads(proc.stdout)
            assert doc["partial"] is True and doc["stopped"] == "target-exited", f"run {i}"
            assert syscall(doc, "exit_group")["calls"] == 1  # sleep's own end, counted
            assert f"container {name} stopped during the window" in proc.stderr
        finally:
            run("docker", "rm", "-f", name, check=False)


def test_two_spies_on_one_container(docker_env, helper_image, target: Target, spy_engine: str) -> None:
    spies = [start_spy(docker_env, target.name, "-d", "8s", "--format", "json", "-l", "info",
                       "--engine", spy_engine) for _ in range(2)]
    for spy in spies:
        spy.wait_counting()
    target.trigger(N)
    for spy in spies:
        code, out, err = spy.finish()
        assert code == 0, err
        assert syscall(json.loads(out), "getppid")["calls"] == N


def test_two_spies_on_two_containers(docker_env, helper_image, target: Target,
                                     second_target: Target, spy_engine: str) -> None:
    pairs = [(t, start_spy(docker_env, t.name, "-d", "8s", "--format", "json", "-l", "info",
                           "--engine", spy_engine)) for t in (target, second_target)]
    for _, spy in pairs:
        spy.wait_counting()
    target.trigger(1111)
    second_target.trigger(2222)
    for t, spy in pairs:
        code, out, err = spy.finish()
        assert code == 0, err
        expected = 1111 if t is target else 2222
        assert syscall(json.loads(out), "getppid")["calls"] == expected


def test_millions_of_calls_per_second_are_all_counted(docker_env, helper_image,
                                                      target: Target, spy_engine: str) -> None:
    # Counted until Ctrl-C once the work is done (a fixed window would outlast it by minutes).
    many = 40_000_000
    spy = start_spy(docker_env, target.name, "--format", "json", "-l", "info",
                    "--engine", spy_engine, new_session=True)
    spy.wait_counting()
    started = time.monotonic()
    target.trigger(many, timeout=115)
    rate = 2 * many / (time.monotonic() - started)
    interrupt(spy, signal.SIGINT)
    code, out, err = spy.finish(timeout=200)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["partial"] is False and doc["stopped"] is None
    assert syscall(doc, "getppid")["calls"] == many
    assert syscall(doc, "fchdir")["calls"] == many and syscall(doc, "fchdir")["errors"] == many
    assert rate > 1_000_000, f"the target made only {rate:,.0f} calls/s"


def test_leftover_helpers_are_removed(docker_env, helper_image, target: Target) -> None:
    labels = ["--label", HELPER_LABEL]
    never_started = run("docker", "create", *labels, "--label", "io.docker-spy.expires=1",
                        BASE_IMAGE, "true").stdout.strip()
    expired = run("docker", "run", "-d", *labels, "--label", "io.docker-spy.expires=1",
                  BASE_IMAGE, "sleep", "600").stdout.strip()
    live = run("docker", "run", "-d", *labels, "--label", "io.docker-spy.expires=99999999999",
               BASE_IMAGE, "sleep", "600").stdout.strip()
    try:
        proc = run("docker", "spy", target.name, "-d", "1s", env=docker_env)
        assert "removing a helper an earlier run left behind" in proc.stderr
        ids = run("docker", "ps", "-aq", "--no-trunc").stdout.split()
        assert never_started not in ids and expired not in ids
        assert live in ids  # a running helper within its expiry belongs to a run going on
    finally:
        run("docker", "rm", "-f", never_started, expired, live, check=False)


def test_readers_that_leave_lose_no_report_and_leave_no_helper(docker_env, helper_image, target: Target,
                                                               tmp_path: Path) -> None:
    # `2>&1 >report | true` and `| true`: a reader of stderr or stdout that leaves at
    # once (the first write after the helper is created breaks the pipe). Timing decides where
    # the run is when it breaks: five times each.
    for i in range(5):
        out = tmp_path / f"report-{i}.json"
        stderr_gone = run("bash", "-c", f'docker spy {target.name} -d 1s -D --format json 2>&1 >"{out}" '
                          '| true; exit "${PIPESTATUS[0]}"', env=docker_env, check=False)
        assert stderr_gone.returncode == 0, f"run {i}: {stderr_gone.returncode}"
        doc = json.loads(out.read_text())  # the whole report, though nobody read the logs
        assert [t["name"] for t in doc["targets"]] == [target.name] and doc["window"]["measured_seconds"] > 0
        stdout_gone = run("bash", "-c", f'docker spy {target.name} -d 1s -l info | true; '
                          'exit "${PIPESTATUS[0]}"', env=docker_env, check=False)
        assert stdout_gone.returncode == 1 and "Traceback" not in stdout_gone.stderr, stdout_gone.stderr
    assert wait_no_helpers() == []


class Proxy:
    """A unix socket in front of the engine's, to make the engine 'go away' mid-run."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(16)
        self.conns: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect("/var/run/docker.sock")
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.closed = True
        self.server.close()
        os.unlink(self.path)
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass


def test_engine_going_away_mid_run(docker_env, helper_image, target: Target, tmp_path) -> None:
    proxy = Proxy(tmp_path / "engine.sock")
    env = {**docker_env, "DOCKER_HOST": f"unix://{proxy.path}"}
    spy = start_spy(env, target.name, "-d", "30s", "-l", "info")
    try:
        spy.wait_counting()
        proxy.close()
        code, out, err = spy.finish(timeout=60)
    finally:
        if not proxy.closed:
            proxy.close()
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("docker spy: the engine stopped answering"), err
    assert "Traceback" not in err and out == ""
    assert wait_no_helpers() == []  # the helper's stdin closed with the connection


# --- bad input: one line on stderr, a non-zero status, no traceback, no helper started ------

@pytest.fixture
def paused(target: Target):
    run("docker", "pause", target.name)
    yield target.name
    run("docker", "unpause", target.name, check=False)


@pytest.fixture
def created():
    name = f"spy-e2e-created-{os.getpid()}"
    run("docker", "create", "--name", name, BASE_IMAGE, "true")
    yield name
    run("docker", "rm", "-f", name, check=False)


CATALOGUE = [
    # (what, container or fixture, extra args, exit status, words in the line)
    ("unknown container", "no-such-container-spy", [], 1, "no such container"),
    ("empty name", "", [], 125, "the container name is empty"),
    ("shell metacharacters", "web;rm -rf /", [], 125, "not a container name"),
    ("command substitution", "$(id)", [], 125, "not a container name"),
    ("backticks", "`id`", [], 125, "not a container name"),
    ("created, not started", "@created", [], 1, "not running"),
    ("paused", "@paused", [], 1, "is paused"),
    ("duration with a bad unit", "@target", ["-d", "30x"], 125,
     'invalid argument "30x" for "-d, --duration" flag'),
    ("negative duration", "@target", ["-d", "-1s"], 125, 'invalid argument "-1s" for "-d, --duration" flag'),
    ("zero duration", "@target", ["-d", "0s"], 125, "flag: from 100ms to 24h"),
    ("empty duration", "@target", ["-d", ""], 125, 'invalid argument "" for "-d, --duration" flag'),
    ("absurd duration", "@target", ["-d", "100000h"], 125, "flag: from 100ms to 24h"),
    ("unknown format", "@target", ["--format", "yaml"], 125, 'invalid argument "yaml" for "--format" flag'),
    ("unknown flag", "@target", ["--frobnicate"], 125, "unknown flag: --frobnicate"),
    ("top zero", "@target", ["--top", "0"], 125, "not a positive"),
    ("helper image not ours", "@target", ["--helper-image", BASE_IMAGE], 1,
     "is not a docker spy helper image"),
    ("helper image missing", "@target", ["--helper-image", "no-such-image:1"], 1,
     "is not on the engine"),
    ("one of two containers unknown", "@target", ["no-such-container-spy"], 1, "no such container"),
    ("filter not KEY=VALUE", "@target", ["--filter", "nolabel"], 125, "bad filter"),
    ("filter key unknown", "@target", ["--filter", "bogus=1"], 125, "refused the filter"),
    ("interval longer than the window", "@target", ["-d", "1s", "-i", "5s"], 125,
     "--interval is longer than --duration"),
    ("latency with perf", "@target", ["--latency", "--engine", "perf"], 125,
     "--latency needs the BPF engine"),
    ("unknown engine", "@target", ["--engine", "dtrace"], 125,
     'invalid argument "dtrace" for "--engine" flag'),
    ("audit profile missing", "@target", ["--audit-profile", "/nonexistent/p.json"], 1,
     "cannot read the seccomp profile"),
    ("profile folder missing", "@target", ["--seccomp-profile", "/nonexistent/p.json"], 1,
     "not a writable folder"),
]


@pytest.mark.parametrize("what, ref, extra, status, words", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_bad_input(request, docker_env, what: str, ref: str, extra: list[str], status: int,
                   words: str) -> None:
    if ref.startswith("@"):
        value = request.getfixturevalue(ref[1:])
        ref = value.name if isinstance(value, Target) else value
    # To the microsecond (the engine takes fractions): a helper the test before created a
    # second ago is not this run's.
    since = f"{time.time():.6f}"
    proc = run("docker", "spy", ref, *extra, env=docker_env, check=False)
    until = f"{time.time() + 1:.6f}"
    assert proc.returncode == status, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert words in lines[0], proc.stderr
    if lines[0].startswith("docker spy: "):
        assert len(lines) == 1, proc.stderr
    else:  # a wrong flag, in the docker CLI's layout: the line, the usage, where help is
        assert lines[1:3] == ["", "Usage:  docker spy [OPTIONS] CONTAINER [CONTAINER...]"], proc.stderr
        assert lines[-1] == "Run 'docker spy --help' for more information", proc.stderr
    assert proc.stdout == ""
    created_helpers = run("docker", "events", "--since", since, "--until", until,
                          "--filter", "type=container", "--filter", "event=create",
                          "--filter", f"label={HELPER_LABEL}", "--format", "{{.ID}}").stdout
    assert created_helpers.strip() == "", f"{what}: a helper was started"


def test_twenty_containers_in_one_run(docker_env, helper_image, workload: Path,
                                      tmp_path: Path, spy_engine: str) -> None:
    group = f"spy-e2e-{os.getpid()}-{time.monotonic_ns()}"
    members: list[Target] = []
    try:
        for i in range(20):
            members.append(start_target(workload, tmp_path / f"member{i}",
                                        "--label", f"spy-e2e-group={group}"))
        spy = start_spy(docker_env, "--filter", f"label=spy-e2e-group={group}", "-d", "10s",
                        "--format", "json", "-l", "info", "--engine", spy_engine)
        spy.wait_counting(timeout=180)
        for i, member in enumerate(members):
            member.trigger(100 * (i + 1))
        code, out, err = spy.finish(timeout=300)
        assert code == 0, err
        doc = json.loads(out)
        assert doc["partial"] is False and len(doc["targets"]) == 20
        by_name = {t["name"]: t for t in doc["targets"]}
        for i, member in enumerate(members):
            assert syscall(by_name[member.name], "getppid")["calls"] == 100 * (i + 1), member.name
            assert syscall(by_name[member.name], "fchdir")["errors"] == 100 * (i + 1), member.name
        assert syscall(doc, "getppid")["calls"] == 100 * 20 * 21 // 2
        assert wait_no_helpers() == []
    finally:
        if members:
            run("docker", "rm", "-f", *(m.name for m in members), check=False)
