"""--syscall: only the syscalls asked for are counted and shown, and the totals are theirs; a
name that is no syscall is refused before any helper starts. Real CLI, engine, BPF and perf."""

from __future__ import annotations

import json

import pytest

from .conftest import HELPER_LABEL, Target, run, start_spy, syscall, wait_no_helpers

pytestmark = pytest.mark.e2e
N = 1234
FORKS = 2


def counted(env: dict[str, str], target: Target, *args: str, forks: int = FORKS) -> dict:
    spy = start_spy(env, target.name, "-d", "3s", "--format", "json", "-l", "info", *args)
    spy.wait_counting()
    target.trigger(N, forks=forks)
    code, out, err = spy.finish()
    assert code == 0, err
    return json.loads(out)


def test_only_the_syscalls_asked_for_and_their_total(docker_env, helper_image, target: Target,
                                                     spy_engine: str) -> None:
    # The target also makes N failing fchdir, N getppid and polls: only the two asked for show.
    doc = counted(docker_env, target, "--engine", spy_engine, "--syscall", "getppid",
                  "--syscall", "sys_fork,clone")
    assert doc["engine"] == spy_engine and doc["only"] == ["clone", "fork", "getppid"]
    assert {row["name"] for row in doc["syscalls"]} == {"getppid", "fork"}  # clone: not called
    assert syscall(doc, "getppid")["calls"] == N and syscall(doc, "fork")["calls"] == FORKS
    assert doc["total"] == {"calls": N + FORKS, "errors": 0} == doc["targets"][0]["total"]
    assert wait_no_helpers() == []


def test_a_class_counts_its_syscalls_and_no_other(docker_env, helper_image, target: Target,
                                                  spy_engine: str) -> None:
    doc = counted(docker_env, target, "--engine", spy_engine, "--syscall", "process", "--all")
    names = {row["name"] for row in doc["syscalls"]}
    assert "getppid" in names and "fork" in names and "exit_group" in names
    assert "fchdir" not in names  # a file syscall, called N times
    assert syscall(doc, "getppid")["calls"] == N and syscall(doc, "exit_group")["calls"] == FORKS
    assert doc["total"]["calls"] == sum(row["calls"] for row in doc["syscalls"])
    assert "execve" in names and syscall(doc, "execve")["calls"] == 0  # --all: the class's zeros


def test_the_table_says_what_was_asked_for(docker_env, helper_image, target: Target) -> None:
    spy = start_spy(docker_env, target.name, "-d", "2s", "-l", "info", "--syscall", "fchdir")
    spy.wait_counting()
    target.trigger(N)
    code, out, err = spy.finish()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"{target.name} (") and f": {N:,} calls of fchdir in " in lines[0]
    rows = [line.split()[0] for line in lines[4:] if line and not line.startswith("-")]
    assert rows == ["fchdir", "total"]


def test_live_lines_carry_only_the_syscalls_asked_for(docker_env, helper_image, target: Target) -> None:
    spy = start_spy(docker_env, target.name, "-d", "3s", "-i", "1s", "--format", "json",
                    "-l", "info", "--syscall", "getppid")
    spy.wait_counting()
    target.trigger(N)
    code, out, err = spy.finish()
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert {row["name"] for line in lines for row in line["syscalls"]} <= {"getppid"}
    assert lines[-1]["kind"] == "report" and lines[-1]["total"]["calls"] == N


@pytest.mark.parametrize(("value", "says"), [
    ("getppidd", 'getppidd is not a syscall nor a class (did you mean getppid'),
    ("read,netwrk", "netwrk is not a syscall nor a class (did you mean network?)"),
    ("read,,write", "an empty name between commas"),
])
def test_an_unknown_name_is_refused_before_any_helper(docker_env, target: Target, value: str,
                                                      says: str) -> None:
    proc = run("docker", "spy", target.name, "-d", "1s", "--syscall", value, env=docker_env, check=False)
    assert proc.returncode == 125
    first = proc.stderr.splitlines()[0]
    assert first.startswith(f'invalid argument "{value}" for "--syscall" flag: {says}'), proc.stderr
    assert proc.stdout == ""
    spying = run("docker", "ps", "-a", "--filter", f"label={HELPER_LABEL}", "--format",
                 '{{.Label "io.docker-spy.target"}}', env=docker_env).stdout
    assert target.id not in spying  # no helper was made for it
