"""--by-process: each process of a container apart, as the container sees it (its pid there,
its command name and line), with exact counts; the bound on the processes kept, whose rest is
one row that says how many it holds; and what it refuses. The target is family.c, a process
family of known shape triggered from the host. Real CLI, engine and BPF."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import REPO, Target, run, start_spy, start_target, wait_no_helpers

pytestmark = pytest.mark.e2e
A, B, C, D = 1500, 700, 900, 1100  # parent's getppid, child-b's and child-c's getpgid, thread's getuid


@pytest.fixture(scope="session")
def family(workload: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("family") / "family"
    run("gcc", "-static", "-O2", "-pthread", "-o", str(out), str(REPO / "tests/e2e/family.c"))
    return out


@pytest.fixture
def target(family: Path, tmp_path: Path) -> Iterator[Target]:
    started = start_target(family, tmp_path / "spy")
    try:
        yield started
    finally:
        run("docker", "rm", "-f", started.name, check=False)


def host_pids(target: Target) -> dict[str, tuple[int, int]]:
    """comm -> (host pid, pid in the container) of the family's processes, from the host's /proc."""
    main = int(run("docker", "inspect", "-f", "{{.State.Pid}}", target.name).stdout)
    found: dict[str, tuple[int, int]] = {}
    deadline = time.monotonic() + 10
    while len(found) < 3 and time.monotonic() < deadline:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                status = (proc / "status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
            if proc.name == str(main) or fields.get("PPid") == str(main):
                found[fields["Name"]] = (int(proc.name), int(fields["NSpid"].split()[-1]))
        time.sleep(0.05)
    assert set(found) == {"parent", "child-b", "child-c"}, found
    return found


def go(target: Target, *numbers: int, timeout: float = 30) -> None:
    tmp = target.spy_dir / "go.tmp"
    tmp.write_text(" ".join(map(str, numbers)))
    tmp.rename(target.spy_dir / "go")
    deadline = time.monotonic() + timeout
    for who in ("parent", "thread", "child-b", "child-c"):
        while not (target.spy_dir / f"done-{who}").exists():
            assert time.monotonic() < deadline, f"the family's {who} did not finish"
            time.sleep(0.01)


def calls(entry: dict, name: str) -> int:
    return next((row["calls"] for row in entry["syscalls"] if row["name"] == name), 0)


@pytest.mark.parametrize("rep", range(3))  # child-c exits mid-window: once passing is luck
def test_each_process_with_its_pid_name_and_exact_counts(docker_env, helper_image, target: Target,
                                                         rep: int) -> None:
    pids = host_pids(target)
    spy = start_spy(docker_env, target.name, "-d", "4s", "--by-process", "--format", "json", "-l", "info")
    spy.wait_counting()
    go(target, A, B, C, D)
    code, out, err = spy.finish()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["by_process"] is True and doc["engine"] == "bpf"
    (t,) = doc["targets"]
    procs = {p["comm"]: p for p in t["processes"]}
    assert set(procs) == {"parent", "child-b", "child-c"}, t["processes"]
    assert t["other_processes"] is None  # three processes: all kept
    parent, b, c = procs["parent"], procs["child-b"], procs["child-c"]
    # As the container sees them (docker top's PID column is the host's).
    assert parent["pid"] == 1 and (parent["host_pid"], parent["pid"]) == pids["parent"]
    assert (b["host_pid"], b["pid"]) == pids["child-b"] and (c["host_pid"], c["pid"]) == pids["child-c"]
    assert calls(parent, "getppid") == A and calls(parent, "getuid") == D  # its thread's are its own
    assert calls(b, "getpgid") == B and calls(c, "getpgid") == C
    assert calls(parent, "getpgid") == calls(b, "getppid") == calls(c, "getuid") == 0
    assert (parent["exited"], b["exited"], c["exited"]) == (False, False, True)
    assert parent["cmdline"] == b["cmdline"] == c["cmdline"] == "/spy/workload"
    # The target's counts are exact as ever, and its processes add up to them.
    target_calls = {row["name"]: row["calls"] for row in t["syscalls"]}
    assert (target_calls["getppid"], target_calls["getuid"], target_calls["getpgid"]) == (A, D, B + C)
    assert sum(p["total"]["calls"] for p in t["processes"]) == t["total"]["calls"]
    assert sum(p["total"]["errors"] for p in t["processes"]) == t["total"]["errors"]
    for name, n in target_calls.items():
        assert sum(calls(p, name) for p in t["processes"]) == n, name
    assert wait_no_helpers() == []


def test_a_fork_storm_keeps_a_hundred_and_sums_the_rest(docker_env, helper_image, target: Target) -> None:
    host_pids(target)
    storm = 150  # children, one after the other, 10 getppid each
    spy = start_spy(docker_env, target.name, "-d", "6s", "--by-process", "--format", "json", "-l", "info")
    spy.wait_counting()
    go(target, A, B, C, D, storm, timeout=60)
    code, out, err = spy.finish()
    assert code == 0, err
    (t,) = json.loads(out)["targets"]
    procs, rest = t["processes"], t["other_processes"]
    assert len(procs) == 100 and rest["processes"] == 3 + storm - 100 and rest["more"] is False
    stormers = [p for p in procs if p["comm"] == "storm"]
    assert len(stormers) == 97 and all(calls(p, "getppid") == 10 and p["exited"] for p in stormers)
    assert calls(rest, "getppid") == 10 * (storm - 97)  # nothing lost: the target less its processes
    assert calls(t, "getppid") == A + 10 * storm
    assert sum(p["total"]["calls"] for p in procs) + rest["total"]["calls"] == t["total"]["calls"]


def test_the_table_lists_the_processes(docker_env, helper_image, target: Target) -> None:
    pids = host_pids(target)
    spy = start_spy(docker_env, target.name, "-d", "3s", "--by-process", "-l", "info")
    spy.wait_counting()
    go(target, A, B, C, D)
    code, out, err = spy.finish()
    assert code == 0, err
    text = out.split(f"\n{target.name}: 3 processes\n\n", 1)[1].splitlines()
    assert text[0].split() == ["PID", "COMMAND", "CALLS", "ERRORS", "TOP", "SYSCALL", "TOP", "ERRNO",
                               "CALLS/S", "SHARE", "COMMAND", "LINE"]
    rows = {line.split()[1]: line.split() for line in text[2:]}
    assert rows["parent"][0] == "1" and rows["child-b"][0] == str(pids["child-b"][1])
    assert rows["child-c"][2] == "(exited)" and rows["parent"][-1] == "/spy/workload"


@pytest.mark.parametrize(("args", "says"), [
    (["--engine", "perf"], "docker spy: --by-process needs the BPF engine (perf counts per cgroup "
                           "only) (leave --engine perf out)"),
])
def test_what_it_refuses(docker_env, engine: None, args: list[str], says: str) -> None:
    proc = run("docker", "spy", "web", "--by-process", *args, "-d", "1s", env=docker_env, check=False)
    assert (proc.returncode, proc.stderr.strip(), proc.stdout) == (125, says, "")


def test_diff_compares_the_processes_of_two_windows_by_name(docker_env, helper_image, target: Target,
                                                            tmp_path: Path) -> None:
    host_pids(target)
    # A quiet window (the family only polls /spy/go: ~1,200 calls a waiter in 3 s, and the
    # parent has two), then one with the work, well above that.
    code, quiet, err = start_spy(docker_env, target.name, "-d", "3s", "--by-process", "--format",
                                 "json").finish()
    assert code == 0, err
    work = {"parent": 5000 + 3000, "child-b": 4000, "child-c": 4500}
    spy = start_spy(docker_env, target.name, "-d", "3s", "--by-process", "--format", "json", "-l", "info")
    spy.wait_counting()
    go(target, 5000, 4000, 4500, 3000)
    code, busy, err = spy.finish()
    assert code == 0, err
    (tmp_path / "a.json").write_text(quiet)
    (tmp_path / "b.json").write_text(busy)
    out = run("docker", "spy", "diff", str(tmp_path / "a.json"), str(tmp_path / "b.json"),
              "--format", "json", env=docker_env).stdout
    changes = {c["name"]: c for c in json.loads(out)["processes"]}
    assert set(changes) == set(work)  # matched by name: the pids are the same here, the names count
    for name, n in work.items():
        assert changes[name]["before"]["calls"] < 3000 and changes[name]["after"]["calls"] >= n, name
        assert changes[name]["status"] == "changed"


def test_the_live_lines_carry_the_processes_and_end_where_the_report_does(docker_env, helper_image,
                                                                         target: Target) -> None:
    host_pids(target)
    spy = start_spy(docker_env, target.name, "-d", "3s", "-i", "1s", "--by-process", "--format", "json",
                    "-l", "info")
    spy.wait_counting()
    go(target, A, B, C, D)
    code, out, err = spy.finish()
    assert code == 0, err
    *intervals, final = [json.loads(line) for line in out.splitlines()]
    assert [line["kind"] for line in intervals] == ["interval"] * 3 and final["kind"] == "report"
    live = {p["host_pid"]: p for p in intervals[-1]["targets"][0]["processes"]}
    # The last interval is read with counting off, as the report is: the same counts.
    for p in final["targets"][0]["processes"]:
        assert live[p["host_pid"]]["calls"] == p["total"]["calls"], p["comm"]
        assert live[p["host_pid"]]["comm"] == p["comm"]
    assert sum(p["interval_calls"] for line in intervals for p in line["targets"][0]["processes"]
               if p["comm"] == "parent") == next(p["total"]["calls"] for p in final["targets"][0]["processes"]
                                                 if p["comm"] == "parent")
