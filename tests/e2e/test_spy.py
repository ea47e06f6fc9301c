"""The real plugin, through the real docker CLI, on a real engine, with real perf."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from .conftest import REPO, Target, run, start_spy, syscall, wait_no_helpers

pytestmark = pytest.mark.e2e

N = 12345
FORKS = 37
SIGNALS = 23


def test_metadata_is_the_plugin_protocol() -> None:
    proc = run(str(REPO / "docker-spy"), "docker-cli-plugin-metadata")
    meta = json.loads(proc.stdout)
    assert set(meta) == {"SchemaVersion", "Vendor", "Version", "ShortDescription", "URL"}
    assert meta["SchemaVersion"] == "0.1.0"
    assert proc.stderr == ""


def test_docker_info_lists_the_plugin(docker_env: dict[str, str]) -> None:
    info = run("docker", "info", "--format", "{{json .ClientInfo.Plugins}}", env=docker_env)
    plugins = {p["Name"]: p for p in json.loads(info.stdout)}
    assert "spy" in plugins, info.stdout
    assert "Err" not in plugins["spy"] or not plugins["spy"]["Err"], plugins["spy"]


def test_help_documents_every_option(docker_env: dict[str, str]) -> None:
    proc = run("docker", "spy", "--help", env=docker_env)
    for option in ("--duration", "--interval", "--filter", "--format", "--top", "--sort", "--all",
                   "--no-trunc", "--by-class", "--seccomp-profile", "--audit-profile",
                   "--helper-image", "--privileged", "--quiet", "--debug", "--log-level",
                   "--engine", "--latency", "--syscall",
                   "Examples:", "Commands:"):
        assert option in proc.stdout, option


def spy_triggered(env: dict[str, str], target: Target, n: int, *args: str,
                  forks: int = 0, signals: int = 0, sleeps: int = 0) -> tuple[int, str, str]:
    spy = start_spy(env, target.name, "--log-level", "info", *args)
    spy.wait_counting()
    target.trigger(n, forks, signals, sleeps)
    return spy.finish()


def test_exact_counts_of_calls_and_failed_calls(
        docker_env: dict[str, str], helper_image: str, target: Target, spy_engine: str) -> None:
    code, out, err = spy_triggered(docker_env, target, N, "--duration", "3s", "--format", "json",
                                   "--engine", spy_engine, forks=FORKS, signals=SIGNALS)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == 4 and doc["kind"] == "report" and doc["engine"] == spy_engine
    assert doc["partial"] is False
    (only,) = doc["targets"]
    assert only["id"] == target.id and only["name"] == target.name and only["exited"] is False
    assert only["total"] == doc["total"]
    assert syscall(doc, "getppid")["calls"] == N
    assert syscall(doc, "getppid")["errors"] == 0
    assert syscall(doc, "fchdir")["calls"] == N
    assert syscall(doc, "fchdir")["errors"] == N
    # fork returns twice (parent and child) but is one call; each child exits once.
    assert syscall(doc, "fork")["calls"] == FORKS
    assert syscall(doc, "fork")["errors"] == 0
    assert syscall(doc, "exit_group")["calls"] == FORKS
    # Each signal the handler caught returns through rt_sigreturn, counted where it enters.
    assert syscall(doc, "kill")["calls"] == SIGNALS
    assert syscall(doc, "rt_sigreturn")["calls"] == SIGNALS
    assert syscall(doc, "rt_sigreturn")["errors"] == 0
    assert doc["window"]["requested_seconds"] == 3.0
    assert 2.9 < doc["window"]["measured_seconds"] < 3.5
    assert doc["host"]["kernel"] == os.uname().release
    tool = "libbpf " if spy_engine == "bpf" else "perf "
    assert doc["host"]["engine_version"].startswith(tool)
    assert doc["host"]["cgroup_version"] in (1, 2)
    if spy_engine == "bpf":  # why the calls failed, and what counting cost
        assert syscall(doc, "fchdir")["errnos"] == {"EBADF": N}
        # Run times are measured 0.1 s of every second (bpfengine.STATS_ON_S), and scaled.
        cost = doc["cost"]
        assert 0.25 <= cost["sampled_seconds"] <= 0.45, cost
        assert cost["runs"] > 0 and cost["run_time_ns"] > 0 and cost["cpu_share"] > 0
    else:
        assert "errnos" not in syscall(doc, "fchdir") and "cost" not in doc
    assert all(row["calls"] or row["errors"] for row in doc["syscalls"])
    assert wait_no_helpers() == [], "a helper container was left behind"


def test_table_output(docker_env: dict[str, str], helper_image: str, target: Target,
                      spy_engine: str) -> None:
    code, out, err = spy_triggered(docker_env, target, N, "-d", "2s", "--top", "2", "--engine", spy_engine)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"{target.name} ({target.id[:12]}): ")
    rows = {line.split()[0]: line.split() for line in lines[2:] if line and line[0].isalpha()}
    errno = ["ERRNO"] if spy_engine == "bpf" else []  # only BPF tells why calls failed
    assert rows["SYSCALL"] == ["SYSCALL", "CALLS", "ERRORS", *errno, "CALLS/S", "SHARE"]
    assert rows["getppid"][1:3] == [f"{N:,}", "0"]
    assert rows["fchdir"][1:3] == [f"{N:,}", f"{N:,}"]
    if spy_engine == "bpf":
        assert rows["fchdir"][3:5] == ["EBADF", "100%"]
    assert "total" in rows
    assert len(rows) == 4  # the header, the two --top rows, the total
    assert "{" not in err.replace("{}", "")  # logs are not JSON dumped at the user


def test_runs_straight_after_each_other_are_exact(
        docker_env: dict[str, str], helper_image: str, target: Target, spy_engine: str) -> None:
    for n in (1000, 2000, 3000, 4000, 5000):
        code, out, err = spy_triggered(docker_env, target, n, "-d", "1s", "--format", "json",
                                       "--engine", spy_engine)
        assert code == 0, err
        assert syscall(json.loads(out), "getppid")["calls"] == n
    assert wait_no_helpers() == []


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("docker spy: ")
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_ambiguous_id_prefix_is_refused(docker_env: dict[str, str], engine: None) -> None:
    created: list[str] = []
    try:
        by_first: dict[str, str] = {}
        prefix = None
        while prefix is None:  # 17 ids always share a first hex digit
            cid = run("docker", "create", "--label", "spy-e2e=1", "debian:trixie-slim",
                      "true").stdout.strip()
            created.append(cid)
            prefix = cid[0] if cid[0] in by_first else None
            by_first[cid[0]] = cid
        proc = run("docker", "spy", prefix, "-d", "1s", env=docker_env, check=False)
        assert proc.returncode == 1
        assert "more than one container" in _one_error_line(proc)
    finally:
        if created:
            run("docker", "rm", "-f", *created, check=False)


def test_install_and_uninstall(tmp_path, engine: None) -> None:
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path)}
    link = tmp_path / "cli-plugins" / "docker-spy"
    run(str(REPO / "docker-spy"), "install", env=env)
    assert link.is_symlink() and link.resolve() == (REPO / "docker-spy").resolve()
    listed = run("docker", "info", "--format", "{{json .ClientInfo.Plugins}}", env=env).stdout
    assert any(p["Name"] == "spy" for p in json.loads(listed))
    run(str(REPO / "docker-spy"), "uninstall", env=env)
    assert not link.exists() and not link.is_symlink()
    listed = run("docker", "info", "--format", "{{json .ClientInfo.Plugins}}", env=env).stdout
    assert not any(p["Name"] == "spy" for p in json.loads(listed or "[]") or [])


def test_csv_sorted_by_name_with_every_syscall(docker_env: dict[str, str], helper_image: str,
                                               target: Target, spy_engine: str) -> None:
    import csv
    import io

    code, out, err = spy_triggered(docker_env, target, 500, "-d", "1s", "--format", "csv",
                                   "--sort", "name", "--all", "--engine", spy_engine)
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    extra = ["errnos"] if spy_engine == "bpf" else []
    assert rows[0] == ["container", "syscall", "calls", "errors", "calls_per_second", "share_percent", *extra]
    assert {r[0] for r in rows[1:]} == {target.name}
    names = [r[1] for r in rows[1:]]
    assert names == sorted(names) and len(names) > 300  # every syscall, the called or not
    by_name = {r[1]: r for r in rows[1:]}
    assert by_name["getppid"][2:4] == ["500", "0"] and by_name["fchdir"][2:4] == ["500", "500"]


@pytest.mark.parametrize("args, expected", [
    ([], "docker spy version {v}"), (["--short"], "{v}"), (["--format", "json"], '{{"version": "{v}"}}'),
])
def test_version_forms(docker_env: dict[str, str], args: list[str], expected: str) -> None:
    from plugin import __version__

    out = run("docker", "spy", "version", *args, env=docker_env).stdout.strip()
    assert out == expected.format(v=__version__)
