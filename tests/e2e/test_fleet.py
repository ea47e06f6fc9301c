"""--service: the tasks of Swarm services, counted on whichever node they run, through a real
two-node Swarm made of two more engines on this machine (tests/e2e/layout-engine.sh, both in
one network namespace of their own), with exact counts per task. swa sees the host's hybrid
cgroups; swb is a cgroup-v2-only engine, where Docker gives every container (a helper too) a
cgroup namespace of its own, as on most distributions today."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import BASE_IMAGE, COUNTING_LOG, run, start_spy, syscall

pytestmark = pytest.mark.e2e
SCRIPT = Path(__file__).with_name("layout-engine.sh")
NETNS = "spy-swarm-e2e"


@dataclass
class Swarm:
    manager: str  # DOCKER_HOST of swa, the manager
    env: dict[str, str]  # the plugin's environment, pointed at the manager
    nodes: dict[str, str]  # hostname -> node id
    hosts: dict[str, str]  # hostname -> DOCKER_HOST


@pytest.fixture(scope="module")
def swarm(docker_env: dict[str, str], helper_image: str) -> Iterator[Swarm]:
    env = {**os.environ, "SPY_NETNS": NETNS}
    hosts = {}
    try:
        for name, kind in (("swa", "host"), ("swb", "v2")):
            hosts[name] = run("bash", str(SCRIPT), "start", kind, name, env=env,
                              timeout=120).stdout.strip()
        assert "Cgroup Version: 2" in run("docker", "-H", hosts["swb"], "info").stdout
        a, b = hosts["swa"], hosts["swb"]
        run("docker", "-H", a, "swarm", "init", "--advertise-addr", "127.0.0.1:2477",
            "--listen-addr", "127.0.0.1:2477")
        token = run("docker", "-H", a, "swarm", "join-token", "-q", "worker").stdout.strip()
        run("docker", "-H", b, "swarm", "join", "--token", token, "--advertise-addr", "127.0.0.1:2478",
            "--listen-addr", "127.0.0.1:2478", "127.0.0.1:2477")
        for host in (a, b):  # no registry: each node gets the images from the host's engine
            run("sh", "-c", f"docker save {BASE_IMAGE} {helper_image} | docker -H {host} load -q",
                timeout=300)
        ids = run("docker", "-H", a, "node", "ls", "--format", "{{.Hostname}} {{.ID}}").stdout.split()
        yield Swarm(a, {**docker_env, "DOCKER_HOST": a}, dict(zip(ids[::2], ids[1::2], strict=True)),
                    hosts)
    finally:
        for name in hosts:
            run("bash", str(SCRIPT), "stop", name, env=env, check=False, timeout=300)
        run("ip", "netns", "del", NETNS, check=False)


@dataclass
class Service:
    name: str
    slots: Path  # slot number -> its workload's trigger folder

    def trigger(self, slot: int | str, n: int, timeout: float = 30) -> None:
        folder = self.slots / str(slot)
        (folder / "done").unlink(missing_ok=True)
        (folder / "go.tmp").write_text(f"{n} 1")
        (folder / "go.tmp").rename(folder / "go")
        deadline = time.monotonic() + timeout
        while not (folder / "done").exists():
            assert time.monotonic() < deadline, f"slot {slot} did not finish"
            time.sleep(0.01)


@pytest.fixture
def make_service(swarm: Swarm, workload: Path, tmp_path: Path) -> Iterator:
    made: list[str] = []

    def make(*options: str, slots: int = 3, mode: str = "replicated") -> Service:
        name = f"spy-e2e-{secrets.token_hex(3)}"
        root = tmp_path / name
        # A task's own trigger folder: by slot, or for a global service (no slot) by node.
        folders = [str(i) for i in range(1, slots + 1)] if mode == "replicated" else list(swarm.nodes)
        for folder in folders:
            (root / folder).mkdir(parents=True)
            shutil.copy(workload, root / folder / "workload")
        by = "{{.Task.Slot}}" if mode == "replicated" else "{{.Node.Hostname}}"
        mount = f"type=bind,source={root}/{by},target=/spy"
        run("docker", "-H", swarm.manager, "service", "create", "-d", "--name", name, "--mode", mode,
            "--mount", mount, *options, BASE_IMAGE, "/spy/workload")
        made.append(name)
        deadline = time.monotonic() + 60
        while True:
            states = run("docker", "-H", swarm.manager, "service", "ps", name, "--filter",
                         "desired-state=running", "--format", "{{.CurrentState}}").stdout.split("\n")
            running = [s for s in states if s]
            if all(s.startswith("Running") for s in running) \
                    and len(running) >= (slots if mode == "replicated" else 2):
                return Service(name, root)
            assert time.monotonic() < deadline, states
            time.sleep(0.5)

    yield make
    for name in made:
        run("docker", "-H", swarm.manager, "service", "rm", name, check=False)


def jobs_left(swarm: Swarm) -> list[str]:
    return run("docker", "-H", swarm.manager, "service", "ls", "--filter",
               "label=io.docker-spy.role=helper-job", "--format", "{{.Name}}").stdout.split()


def wait_every_node(proc, nodes: int, timeout: float = 120) -> None:
    """Each node's helper says when it counts: wait for all of them."""
    deadline = time.monotonic() + timeout
    while sum(bool(COUNTING_LOG.search(line)) for line in proc.stderr_lines) < nodes:
        assert time.monotonic() < deadline and proc.proc.poll() is None, "".join(proc.stderr_lines)
        time.sleep(0.05)


def spy(swarm: Swarm, service: Service, triggers: dict[int | str, int],
        *args: str) -> tuple[int, dict, str]:
    proc = start_spy(swarm.env, "--service", service.name, "-d", "6s", "--format", "json", "-l", "info",
                     *args)
    wait_every_node(proc, len(set(run("docker", "-H", swarm.manager, "service", "ps", service.name,
                                      "--format", "{{.Node}}").stdout.split())))
    for slot, n in triggers.items():
        service.trigger(slot, n)
    code, out, err = proc.finish(timeout=180)
    return code, json.loads(out) if out else {}, err


def by_task(doc: dict) -> dict[str, dict]:
    return {t["name"]: t for t in doc["targets"]}


def test_three_replicas_on_one_node(swarm: Swarm, make_service) -> None:
    service = make_service("--replicas", "3", "--constraint", "node.hostname==swa")
    code, doc, err = spy(swarm, service, {1: 1000, 2: 2000, 3: 3000})
    assert code == 0, err
    tasks = by_task(doc)
    assert sorted(tasks) == [f"{service.name}.{i}" for i in (1, 2, 3)]
    for i in (1, 2, 3):
        task = tasks[f"{service.name}.{i}"]
        assert task["node"] == "swa" and task["pid"] == 0
        assert syscall(task, "getppid")["calls"] == 1000 * i
        assert syscall(task, "fchdir")["errnos"] == {"EBADF": 1000 * i}
        assert syscall(task, "fork")["calls"] == 1
    assert syscall(doc, "getppid")["calls"] == 6000
    assert doc["partial"] is False and "missing" not in doc
    assert jobs_left(swarm) == []


def test_by_process_and_syscall_through_a_job(swarm: Swarm, make_service) -> None:
    # A task's helper has a pid namespace of its own: the processes come with the kernel's
    # names and host pids, and no pid in the container (docs/reference.md says so).
    service = make_service("--replicas", "1", "--constraint", "node.hostname==swa", slots=1)
    code, doc, err = spy(swarm, service, {1: 1234}, "--by-process", "--syscall", "getppid,fchdir")
    assert code == 0, err
    assert doc["by_process"] is True and doc["only"] == ["fchdir", "getppid"]
    (task,) = doc["targets"]
    (proc,) = task["processes"]
    assert proc["comm"] == "workload" and proc["pid"] is None and proc["cmdline"] is None
    assert proc["host_pid"] > 0 and proc["exited"] is False
    assert {r["name"]: r["calls"] for r in proc["syscalls"]} == {"getppid": 1234, "fchdir": 1234}
    assert task["other_processes"] is None and task["total"] == proc["total"]
    assert jobs_left(swarm) == []


def test_a_service_spread_over_two_nodes(swarm: Swarm, make_service) -> None:
    service = make_service("--replicas", "2", "--replicas-max-per-node", "1", slots=2)
    code, doc, err = spy(swarm, service, {1: 1111, 2: 2222}, "--latency")
    assert code == 0, err
    tasks = by_task(doc)
    assert {t["node"] for t in tasks.values()} == {"swa", "swb"}  # each labelled with its node
    for i in (1, 2):
        assert syscall(tasks[f"{service.name}.{i}"], "getppid")["calls"] == 1111 * i
    # Each node's helper counted in a window of its own; the rate is the sum of the tasks' own.
    assert all(5.9 < t["window"]["measured_seconds"] < 6.1 for t in tasks.values())
    rates = sum(syscall(t, "getppid")["calls_per_second"] for t in tasks.values())
    assert syscall(doc, "getppid")["calls_per_second"] == pytest.approx(rates, abs=0.01)
    assert doc["latency"] is True and syscall(doc, "getppid")["time_ns"] > 0
    assert doc["engine"] == "bpf"  # on the hybrid node and in the v2 node's cgroup namespace alike
    assert jobs_left(swarm) == []


def test_perf_counts_a_task_on_each_layout_too(swarm: Swarm, make_service) -> None:
    service = make_service("--replicas", "2", "--replicas-max-per-node", "1", slots=2)
    code, doc, err = spy(swarm, service, {1: 1212, 2: 2121}, "--engine", "perf")
    assert code == 0, err
    tasks = by_task(doc)
    assert {t["node"] for t in tasks.values()} == {"swa", "swb"}
    assert [syscall(tasks[f"{service.name}.{i}"], "fchdir")["errors"] for i in (1, 2)] == [1212, 2121]
    assert doc["engine"] == "perf" and jobs_left(swarm) == []


def test_a_node_without_the_helper_image_is_missing_and_the_others_reported(
        swarm: Swarm, make_service, helper_image: str) -> None:
    service = make_service("--replicas", "2", "--replicas-max-per-node", "1", slots=2)
    slot_on_swa = next(int(name.rsplit(".", 1)[1]) for name, node in pairs(run(
        "docker", "-H", swarm.manager, "service", "ps", service.name, "--filter", "desired-state=running",
        "--format", "{{.Name}} {{.Node}}").stdout) if node == "swa")
    # The job names the image by its id. -f: it goes even while stopped task containers of
    # earlier jobs still use it.
    swb = swarm.hosts["swb"]
    image_id = run("docker", "-H", swb, "image", "inspect", "-f", "{{.Id}}", helper_image).stdout.strip()
    # A helper of an earlier test may still be closing (perf's events take ~15 s): a running
    # container's image cannot be removed.
    deadline = time.monotonic() + 120
    while run("docker", "-H", swb, "ps", "-q", "--filter", f"ancestor={image_id}").stdout.strip():
        assert time.monotonic() < deadline, "a helper of an earlier test is still running on swb"
        time.sleep(1)
    run("docker", "-H", swb, "rmi", "-f", image_id)
    assert subprocess.run(["docker", "-H", swb, "image", "inspect", image_id],
                          capture_output=True, check=False).returncode != 0
    try:
        proc = start_spy(swarm.env, "--service", service.name, "-d", "5s", "--format", "json",
                         "-l", "info")
        wait_every_node(proc, 1)
        service.trigger(slot_on_swa, 4444)
        code, out, err = proc.finish(timeout=180)
    finally:
        run("sh", "-c", f"docker save {helper_image} | docker -H {swarm.hosts['swb']} load -q", timeout=300)
    assert code == 4, err  # a partial report: one node is missing
    doc = json.loads(out)
    assert doc["partial"] is True
    [missing] = doc["missing"]
    assert missing["node"] == "swb" and "No such image" in missing["reason"], missing
    assert "swb" in err and "No such image" in err
    [task] = doc["targets"]
    assert task["node"] == "swa" and syscall(task, "getppid")["calls"] == 4444
    assert jobs_left(swarm) == []


def pairs(text: str) -> list[tuple[str, str]]:
    return [tuple(line.split()) for line in text.splitlines() if line.strip()]  # type: ignore[misc]


def test_a_global_service_names_its_tasks_by_node(swarm: Swarm, make_service) -> None:
    service = make_service(mode="global")
    code, doc, err = spy(swarm, service, {"swa": 321, "swb": 123})
    assert code == 0, err
    tasks = by_task(doc)
    for host, n in (("swa", 321), ("swb", 123)):
        task = tasks[f"{service.name}.{swarm.nodes[host]}"]
        assert task["node"] == host and syscall(task, "getppid")["calls"] == n
    names = sorted(t["name"] for t in doc["targets"])
    assert names == sorted(f"{service.name}.{i}" for i in swarm.nodes.values())


@pytest.mark.parametrize("by_process", [False, True])
def test_ctrl_c_mid_window_gives_the_report_so_far_and_removes_the_job(swarm: Swarm, make_service,
                                                                      by_process: bool) -> None:
    # With --by-process the reports so far are read while counting goes on: the processes
    # must still add up to their task (the plugin refuses a report where they do not).
    service = make_service("--replicas", "2", "--replicas-max-per-node", "1", slots=2)
    for i in range(2):
        proc = start_spy(swarm.env, "--service", service.name, "-d", "60s", "--format", "json",
                         "-l", "debug", *(["--by-process"] if by_process else []),
                         new_session=True)  # debug: how each log read went
        wait_every_node(proc, 2)
        service.trigger(1, 500 + i)
        service.trigger(2, 700 + i)
        time.sleep(2.5)  # the helpers report every second: the last report holds the calls
        os.killpg(proc.proc.pid, signal.SIGINT)
        code, out, err = proc.finish(timeout=60)
        assert code == 130, err
        doc = json.loads(out)
        assert doc["partial"] is True and doc["stopped"] == "interrupted"
        tasks = by_task(doc)
        # A task without a report fails here with what the run said and what it missed.
        assert {f"{service.name}.1", f"{service.name}.2"} <= set(tasks), (doc.get("missing"), err)
        assert syscall(tasks[f"{service.name}.1"], "getppid")["calls"] == 500 + i
        assert syscall(tasks[f"{service.name}.2"], "getppid")["calls"] == 700 + i
        if by_process:
            # The workload, and the child it forked (which made no getppid): by name, as diff matches.
            workers = [p for p in tasks[f"{service.name}.1"]["processes"] if p["comm"] == "workload"]
            assert sum(row["calls"] for p in workers for row in p["syscalls"]
                       if row["name"] == "getppid") == 500 + i
        assert jobs_left(swarm) == []


def test_timeout_mid_window_gives_the_report_so_far_and_removes_the_job(swarm: Swarm, make_service) -> None:
    service = make_service("--replicas", "2", "--replicas-max-per-node", "1", slots=2)
    proc = start_spy(swarm.env, "--service", service.name, "-d", "60s", "--format", "json", "-l", "info",
                     new_session=True, wrapper=("timeout", "-s", "INT", "25"))
    wait_every_node(proc, 2)
    service.trigger(1, 901)
    service.trigger(2, 902)
    code, out, err = proc.finish(timeout=90)
    assert code == 124, err  # timeout(1) says it timed out; the report is there all the same
    tasks = by_task(json.loads(out))
    assert set(tasks) == {f"{service.name}.1", f"{service.name}.2"}, err
    assert syscall(tasks[f"{service.name}.1"], "getppid")["calls"] == 901
    assert syscall(tasks[f"{service.name}.2"], "getppid")["calls"] == 902
    assert jobs_left(swarm) == []


def test_clear_errors(swarm: Swarm, make_service, docker_env: dict[str, str]) -> None:
    def one_line(*args: str, env: dict[str, str] = swarm.env) -> tuple[int, str]:
        proc = run("docker", "spy", *args, env=env, check=False, timeout=120)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and proc.stdout == "", proc.stderr
        return proc.returncode, lines[0]

    assert one_line("--service", "nope", "-d", "1s") == (
        1, "docker spy: no such service: nope (docker service ls lists them)")
    service = make_service("--replicas", "0", slots=0)
    assert one_line("--service", service.name, "-d", "1s") == (
        1, f"docker spy: service {service.name} has no running task (docker service ps {service.name})")
    assert one_line("--service", service.name, "web") == (
        125, "docker spy: --service counts a service's tasks: name no container and no --filter with it")
    code, line = one_line("--service", "web", "-d", "1s", env=docker_env)  # the host's engine: no swarm
    assert (code, line) == (1, "docker spy: this engine is not a Swarm manager "
                               "(run it where `docker node ls` works)")
    assert jobs_left(swarm) == []
