"""--seccomp-profile and --audit-profile through the real plugin, and the engine enforcing what
the plugin wrote: the workload runs again under its own profile, and a call it never made is
denied."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .conftest import BASE_IMAGE, SESSION_TARGETS, Target, run, start_spy, unavailable

pytestmark = pytest.mark.e2e

N = 4321
PROBE = Path(__file__).with_name("seccomp_probe.c")


@pytest.fixture(scope="session")
def probe(engine: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A static program that makes the syscalls named on its command line (seccomp_probe.c)."""
    if shutil.which("gcc") is None:
        unavailable("no gcc to build the seccomp probe (apt-get install gcc libc6-dev)")
    folder = tmp_path_factory.mktemp("probe")
    run("gcc", "-static", "-O2", "-o", str(folder / "probe"), str(PROBE))
    return folder


def spy_triggered(env: dict[str, str], target: Target, n: int, *args: str) -> tuple[int, str, str]:
    spy = start_spy(env, target.name, "--log-level", "info", "--duration", "3s", *args)
    spy.wait_counting()
    target.trigger(n)
    return spy.finish()


@contextmanager
def workload_under(profile: Path, workload: Path, spy_dir: Path) -> Iterator[Target]:
    """The workload in a new container from the same image, under the seccomp profile."""
    spy_dir.mkdir()
    shutil.copy(workload, spy_dir / "workload")
    name = f"spy-e2e-seccomp-{secrets.token_hex(4)}"
    try:
        cid = run("docker", "run", "-d", "--name", name, "--security-opt", f"seccomp={profile}",
                  "-v", f"{spy_dir}:/spy", BASE_IMAGE, "/spy/workload").stdout.strip()
        SESSION_TARGETS.add(cid)
        yield Target(name, cid, spy_dir)
    finally:
        run("docker", "rm", "-f", name, check=False)


def probe_under(probe: Path, *security_opt: str) -> subprocess.CompletedProcess[str]:
    return run("docker", "run", "--rm", "--name", f"spy-e2e-probe-{secrets.token_hex(4)}",
               *security_opt, "-v", f"{probe}:/probe:ro", BASE_IMAGE, "/probe/probe", "uname",
               check=False)


def audit_rows(out: str) -> tuple[str, dict[str, list[str]]]:
    """The audit's title line and its rows by syscall, from the output after the usual table."""
    lines = out.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("seccomp audit against ")]
    assert len(starts) == 1, out
    rows = {}
    for line in lines[starts[0] + 1:]:
        fields = line.split()
        if fields and fields[0] != "SYSCALL" and not set(fields[0]) <= {"-"}:
            rows[fields[0]] = fields
    return lines[starts[0]], rows


def test_a_generated_profile_runs_the_workload_and_denies_what_it_never_did(
        docker_env: dict[str, str], helper_image: str, target: Target, workload: Path,
        probe: Path, tmp_path: Path) -> None:
    profile = tmp_path / "profile.json"
    code, out, err = spy_triggered(docker_env, target, N, "--seccomp-profile", str(profile))
    assert code == 0, err
    assert out.splitlines()[0].startswith(f"{target.name} ({target.id[:12]}): ")  # the usual table
    doc = json.loads(profile.read_text())
    assert doc["defaultAction"] == "SCMP_ACT_ERRNO"
    allowed = set(doc["syscalls"][0]["names"])
    assert {"getppid", "fchdir", "openat"} <= allowed  # seen in the window
    assert {"execve", "arch_prctl", "rt_sigreturn"} <= allowed  # made while a container starts
    assert "uname" not in allowed

    # The same image and command start under the profile and do their work.
    with workload_under(profile, workload, tmp_path / "rerun") as again:
        again.trigger(N)  # waits for /spy/done
        state = run("docker", "inspect", "-f", "{{.State.Running}}", again.name).stdout.strip()
        assert state == "true"

    # A call the workload never made is denied under it, and only because of it.
    denied = probe_under(probe, "--security-opt", f"seccomp={profile}")
    assert (denied.returncode, denied.stdout) == (1, "uname EPERM\n"), denied.stderr
    default = probe_under(probe)
    assert (default.returncode, default.stdout) == (0, "uname ok\n"), default.stderr


def no_getppid(folder: Path) -> Path:
    """A profile that allows everything but getppid, which the workload calls."""
    profile = folder / "no-getppid.json"
    profile.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}))
    return profile


def test_an_audit_names_the_denied_syscall_and_its_calls(
        docker_env: dict[str, str], helper_image: str, target: Target, tmp_path: Path) -> None:
    profile = no_getppid(tmp_path)
    code, out, err = spy_triggered(docker_env, target, N, "--audit-profile", str(profile))
    assert code == 3, err
    assert out.splitlines()[0].startswith(f"{target.name} ({target.id[:12]}): ")
    title, rows = audit_rows(out)
    assert title.startswith(f"seccomp audit against {profile} (")
    assert ": 1 of " in title and title.endswith(" observed syscalls would be denied")
    assert list(rows) == ["getppid"]
    assert rows["getppid"][1:4] == [f"{N:,}", "denied", "ERRNO"]


def test_an_audit_with_json_is_part_of_the_one_document(
        docker_env: dict[str, str], helper_image: str, target: Target, tmp_path: Path) -> None:
    profile = no_getppid(tmp_path)
    code, out, err = spy_triggered(docker_env, target, N, "--audit-profile", str(profile),
                                   "--format", "json")
    assert code == 3, err
    doc = json.loads(out)  # one document: `| jq` works
    assert doc["kind"] == "report" and doc["total"]["calls"] > 2 * N
    audit = doc["audit"]
    assert audit["would_deny"] is True and audit["denied"] == 1
    denied = [row for row in audit["syscalls"] if row["verdict"] == "denied"]
    assert [(row["name"], row["calls"], row["errno_name"]) for row in denied] == [
        ("getppid", N, "EPERM")]


def test_the_workload_passes_an_audit_against_its_own_profile_and_the_default(
        docker_env: dict[str, str], helper_image: str, target: Target, tmp_path: Path) -> None:
    profile = tmp_path / "profile.json"
    code, _, err = spy_triggered(docker_env, target, N, "--seccomp-profile", str(profile))
    assert code == 0, err
    for against in (str(profile), "default"):
        code, out, err = spy_triggered(docker_env, target, N, "--audit-profile", against)
        assert code == 0, err
        title, rows = audit_rows(out)
        assert ": 0 of " in title, out
        assert all(fields[2] != "denied" for fields in rows.values()), out


def test_an_unreadable_audit_profile_is_one_line(docker_env: dict[str, str], target: Target,
                                                 tmp_path: Path) -> None:
    proc = run("docker", "spy", target.name, "-d", "1s", "--audit-profile",
               str(tmp_path / "missing.json"), env=docker_env, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("docker spy: cannot read the seccomp profile "), proc.stderr
    assert proc.stdout == ""
