"""docker spy as a first-party plugin: several containers, --filter, the live view, shell
completion and contexts. Real CLI, engine and perf."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest

from .conftest import REPO, Target, run, start_spy, start_target, syscall, wait_no_helpers

pytestmark = pytest.mark.e2e


def test_several_containers_exact_counts_in_their_own_columns(
        docker_env: dict[str, str], helper_image: str, target: Target, second_target: Target,
        spy_engine: str) -> None:
    spy = start_spy(docker_env, target.name, second_target.name, "-d", "3s", "--format", "json",
                    "-l", "info", "--engine", spy_engine)
    spy.wait_counting()
    target.trigger(1111, forks=3)
    second_target.trigger(2222)
    code, out, err = spy.finish()
    assert code == 0, err
    doc = json.loads(out)
    first, second = doc["targets"]
    assert (first["name"], second["name"]) == (target.name, second_target.name)
    assert syscall(first, "getppid")["calls"] == 1111 and syscall(first, "fork")["calls"] == 3
    assert syscall(second, "getppid")["calls"] == 2222 and syscall(second, "fchdir")["errors"] == 2222
    assert "fork" not in {r["name"] for r in second["syscalls"]}
    assert syscall(doc, "getppid")["calls"] == 3333
    assert doc["total"]["calls"] == first["total"]["calls"] + second["total"]["calls"]


def test_several_containers_table(docker_env: dict[str, str], helper_image: str, target: Target,
                                  second_target: Target, spy_engine: str) -> None:
    spy = start_spy(docker_env, target.name, second_target.name, "-d", "2s", "--no-trunc",
                    "-l", "info", "--engine", spy_engine)
    spy.wait_counting()
    target.trigger(1234)
    second_target.trigger(4321)
    code, out, err = spy.finish()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"2 containers ({target.name}, {second_target.name}): ")
    assert lines[2].split()[:3] == ["SYSCALL", target.name, second_target.name]
    rows = {line.split()[0]: line.split() for line in lines[4:] if line[:1].isalpha()}
    assert rows["getppid"][1:4] == ["1,234", "4,321", "5,555"]


def test_filter_picks_a_labelled_group(docker_env: dict[str, str], helper_image: str,
                                       workload: Path, tmp_path: Path, target: Target,
                                       spy_engine: str) -> None:
    group = f"spy-e2e-{secrets.token_hex(3)}"
    members = [start_target(workload, tmp_path / f"member{i}", "--label", f"shop={group}")
               for i in range(2)]
    try:
        spy = start_spy(docker_env, "--filter", f"label=shop={group}", "-d", "2s",
                        "--format", "json", "-l", "info", "--engine", spy_engine)
        spy.wait_counting()
        for i, member in enumerate(members):
            member.trigger(100 * (i + 1))
        target.trigger(999)  # not in the group: not counted
        code, out, err = spy.finish()
        assert code == 0, err
        doc = json.loads(out)
        assert sorted(t["name"] for t in doc["targets"]) == sorted(m.name for m in members)
        by_name = {t["name"]: t for t in doc["targets"]}
        for i, member in enumerate(members):
            assert syscall(by_name[member.name], "getppid")["calls"] == 100 * (i + 1)
        assert syscall(doc, "getppid")["calls"] == 300
        none = run("docker", "spy", "--filter", "label=shop=nobody", "-d", "1s", env=docker_env,
                   check=False)
        assert none.returncode == 1 and "no running container matches" in none.stderr
    finally:
        run("docker", "rm", "-f", *(m.name for m in members), check=False)


def test_live_json_lines_add_up(docker_env: dict[str, str], helper_image: str, target: Target,
                                spy_engine: str) -> None:
    spy = start_spy(docker_env, target.name, "-d", "3500ms", "--interval", "1s", "-l", "info",
                    "--engine", spy_engine)
    spy.wait_counting()
    target.trigger(3000)
    code, out, err = spy.finish()
    assert code == 0, err
    *lines, final = [json.loads(line) for line in out.splitlines()]  # a pipe: JSON lines
    # 1 s, 2 s, 3 s and the last half second: four lines, then the report's line
    assert [d["index"] for d in lines] == [1, 2, 3, 4]
    assert all(d["kind"] == "interval" for d in lines) and final["kind"] == "report"
    assert syscall(final, "getppid")["calls"] == 3000 and syscall(final, "fchdir")["errors"] == 3000
    last = lines[-1]
    assert syscall(last, "getppid")["calls"] == 3000 and syscall(last, "fchdir")["errors"] == 3000
    assert sum(d["interval"]["calls"] for d in lines) == last["total"]["calls"]
    assert sum(syscall(d, "getppid")["interval_calls"] for d in lines
               if "getppid" in {r["name"] for r in d["syscalls"]}) == 3000
    assert 3.4 < last["elapsed_seconds"] < 3.7
    assert wait_no_helpers() == []


def test_completion_through_the_docker_cli(docker_env: dict[str, str], target: Target) -> None:
    out = run("docker", "__complete", "spy", "", env=docker_env).stdout.splitlines()
    assert target.name in out and out[-1] == ":4"
    assert not any(line.startswith("docker-spy-") for line in out)  # helpers are not targets
    out = run("docker", "__complete", "spy", target.name, "--format", "", env=docker_env).stdout
    assert out.splitlines() == ["table", "json", "csv", ":4"]
    out = run("docker", "__complete", "spy", "--by", env=docker_env).stdout
    assert out.splitlines() == ["--by-class", "--by-process", ":4"]


def test_a_context_that_is_not_the_current_one(helper_image: str, target: Target,
                                               tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "config")}
    env.pop("DOCKER_HOST", None)
    env.pop("DOCKER_CONTEXT", None)
    run(str(REPO / "docker-spy"), "install", env=env)
    engine = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    run("docker", "context", "create", "spy-e2e-real", "--docker", f"host={engine}", env=env)
    run("docker", "context", "create", "spy-e2e-broken", "--docker",
        f"host=unix://{tmp_path}/nothing.sock", env=env)
    run("docker", "context", "use", "spy-e2e-broken", env=env)

    def spy(*flags: str, extra: dict[str, str] | None = None) -> tuple[int, str, str]:
        spy = start_spy({**env, **(extra or {})}, target.name, "-d", "2s", "--format", "json",
                        "-l", "info", docker_flags=flags)
        spy.wait_counting()
        target.trigger(777)
        return spy.finish()

    code, out, err = spy("--context", "spy-e2e-real")
    assert code == 0, err
    assert syscall(json.loads(out), "getppid")["calls"] == 777
    code, out, err = spy(extra={"DOCKER_CONTEXT": "spy-e2e-real"})
    assert code == 0, err
    assert syscall(json.loads(out), "getppid")["calls"] == 777
    # The current context is broken: never a silent fall-back to the local socket.
    proc = run("docker", "spy", target.name, "-d", "1s", env=env, check=False)
    assert proc.returncode == 1 and "cannot reach the Docker engine" in proc.stderr
    assert "spy-e2e-broken" in proc.stderr


def test_diff_of_two_windows(docker_env: dict[str, str], helper_image: str, target: Target,
                             tmp_path: Path) -> None:
    reports = []
    for n in (1000, 3000):
        spy = start_spy(docker_env, target.name, "-d", "2s", "--format", "json", "-l", "info")
        spy.wait_counting()
        target.trigger(n)
        code, out, err = spy.finish()
        assert code == 0, err
        reports.append(tmp_path / f"{n}.json")
        reports[-1].write_text(out)
    out = run("docker", "spy", "diff", *map(str, reports), "--format", "json", env=docker_env).stdout
    doc = json.loads(out)
    getppid = syscall(doc, "getppid")
    assert getppid["before"]["calls"] == 1000 and getppid["after"]["calls"] == 3000
    assert getppid["status"] == "changed" and getppid["change_ratio"] > 1.8
    table = run("docker", "spy", "diff", *map(str, reports), env=docker_env).stdout
    assert table.startswith(f"A: {target.name} @ ") and "getppid" in table
    bad = run("docker", "spy", "diff", str(reports[0]), str(tmp_path / "missing.json"),
              env=docker_env, check=False)
    assert bad.returncode == 125 and bad.stderr.count("\n") == 1 and "does not exist" in bad.stderr
