"""Where the users run: a Linux VM with a kernel of its own, Debian's Docker engine under
systemd (the systemd cgroup driver, cgroup v2 only, AppArmor on), reached from here through an
ssh docker context, as Lima, colima and cloud VM users reach theirs (tests/vm/up). Real CLI,
real plugin over ssh, real BPF and perf in the guest's kernel.

The guest is emulated (TCG) here, several times slower than the host: windows are few and
long, and every wait is bounded. SPY_VM_ARCH picks the guest (x86_64, the default and CI's;
arm64 by hand: tests/vm/run-arm64)."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .conftest import GUEST_FACTS, REPO, SpyRun, run, start_spy, syscall, unavailable

pytestmark = [pytest.mark.e2e, pytest.mark.vm]
ARCH = os.environ.get("SPY_VM_ARCH", "x86_64")
SLOW = {"x86_64": 1.0, "arm64": 4.0}[ARCH]  # how much longer each wait may take there
FORK = {"x86_64": "fork", "arm64": "clone"}[ARCH]  # arm64 has no fork: clone with fork's flags
N = 1717
HELPER_ROLE = "io.docker-spy.role=helper-container"
OUR_PROGRAMS = ("count_exit", "count_enter", "stamp_enter")  # spy.bpf.c's programs
SEEN = "/var/lib/spy-e2e"  # the tests' folder in the guest


@dataclass
class Guest:
    arch: str
    context: str
    port: str
    env: dict[str, str]  # DOCKER_CONFIG with the plugin installed and the context in it

    def ssh(self, command: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A command in the guest, outside every container (as an admin's shell there)."""
        return run("ssh", "-o", "BatchMode=yes", "-p", self.port, "root@127.0.0.1", command,
                   timeout=timeout * SLOW, check=check)

    def docker(self, *args: str, timeout: float = 120,
               check: bool = True) -> subprocess.CompletedProcess[str]:
        return run("docker", "--context", self.context, *args, env=self.env, timeout=timeout * SLOW,
                   check=check)

    def spy(self, *args: str, new_session: bool = False) -> SpyRun:
        return start_spy(self.env, *args, docker_flags=("--context", self.context), new_session=new_session)


def guest_running(arch: str) -> bool:
    pid_file = Path(os.environ.get("SPY_VM_RUN", "/run/docker-spy-vm")) / arch / "qemu.pid"
    try:
        os.kill(int(pid_file.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def bring_up(docker_env: dict[str, str]) -> Guest:
    started = time.monotonic()
    proc = run(str(REPO / "tests" / "vm" / "up"), ARCH, env=docker_env, timeout=1800 * SLOW, check=False)
    if proc.returncode != 0:
        unavailable(f"the {ARCH} test guest did not come up:\n{proc.stderr[-3000:]}")
    context = proc.stdout.splitlines()[-1]
    host = run("docker", "context", "inspect", "-f", "{{.Endpoints.docker.Host}}", context,
               env=docker_env).stdout.strip()
    assert host.startswith("ssh://root@127.0.0.1:"), host
    g = Guest(ARCH, context, host.rsplit(":", 1)[1], docker_env)
    info = json.loads(g.docker("info", "--format", "{{json .}}").stdout)
    GUEST_FACTS.update({
        "arch": ARCH, "context": f"{context} ({host})", "up_seconds": round(time.monotonic() - started),
        "kernel": info["KernelVersion"], "engine": info["ServerVersion"],
        "api": g.docker("version", "--format", "{{.Server.APIVersion}}").stdout.strip(),
        "cgroup": f"driver {info['CgroupDriver']}, v{info['CgroupVersion']}",
        "security": ", ".join(info.get("SecurityOptions") or []),
        "accel": Path(os.environ.get("SPY_VM_RUN", "/run/docker-spy-vm"), ARCH, "accel").read_text().strip(),
    })
    g.ssh(f"mkdir -p {SEEN}")
    return g


@pytest.fixture(scope="module")
def guest(docker_env: dict[str, str]) -> Iterator[Guest]:
    """The guest, brought up for these tests; stopped after them (whatever failed, also while
    it came up) unless it ran before or SPY_VM_KEEP is set."""
    was_running = guest_running(ARCH)
    try:
        yield bring_up(docker_env)
    finally:
        if not was_running and not os.environ.get("SPY_VM_KEEP"):
            run(str(REPO / "tests" / "vm" / "down"), ARCH, check=False, timeout=300)


@pytest.fixture(autouse=True)
def guest_kernel_survives(guest: Guest) -> Iterator[None]:
    """A test fails when the guest's kernel oopsed or panicked meanwhile (its serial console,
    kept by tests/vm/up): the report ends with what the kernel said."""
    console = Path(os.environ.get("SPY_VM_RUN", "/run/docker-spy-vm"), ARCH, "console.log")
    before = console.stat().st_size if console.exists() else 0
    yield
    text = console.read_bytes()[before:].decode(errors="replace") if console.exists() else ""
    said = [line for line in text.splitlines() if any(w in line for w in ("Oops", "BUG:", "Kernel panic"))]
    assert not said, "the guest's kernel failed:\n" + text[-4000:]


@pytest.fixture(scope="module")
def guest_helper(guest: Guest) -> str:
    """The helper image, built in the guest by the plugin, as a user's first run there builds
    it (apt in the guest's engine, through the guest's network)."""
    started = time.monotonic()
    image = guest.docker("spy", "build-helper", timeout=1800).stdout.split()[0]
    GUEST_FACTS["helper_build_seconds"] = round(time.monotonic() - started)
    return image


def guest_binary(guest: Guest, source: str, folder: Path) -> str:
    """tests/e2e/SOURCE (C), built here for the guest's architecture, copied into the guest."""
    name = source.removesuffix(".c")
    out = folder / name
    # arm64: clang with Debian's arm64 libc, not gcc-aarch64-linux-gnu, which Debian will not
    # install beside gcc-multilib (the i386 workload's).
    cc = {"x86_64": ["gcc"], "arm64": ["clang", "--target=aarch64-linux-gnu", "-fuse-ld=lld"]}[ARCH]
    built = run(*cc, "-static", "-O2", "-o", str(out), str(Path(__file__).with_name(source)), check=False)
    if built.returncode != 0:
        unavailable(f"cannot build {source} for {ARCH} (bash tests/vm/run-arm64 installs what it needs): "
                    f"{built.stderr[-300:]}")
    path = f"{SEEN}/{name}"
    with out.open("rb") as binary:
        subprocess.run(["ssh", "-o", "BatchMode=yes", "-p", guest.port, "root@127.0.0.1",
                        f"cat > {path}.tmp && chmod 755 {path}.tmp && mv {path}.tmp {path}"],
                       stdin=binary, check=True, timeout=120 * SLOW)
    return path


@pytest.fixture(scope="module")
def guest_workload(guest: Guest, tmp_path_factory: pytest.TempPathFactory) -> str:
    return guest_binary(guest, "workload.c", tmp_path_factory.mktemp("guest-workload"))


@dataclass
class GuestTarget:
    guest: Guest
    name: str
    id: str
    pid: int
    folder: str  # bound at /spy in the container


def trigger_script(target: GuestTarget, n: int, forks: int = 0, signals: int = 0, sleeps: int = 0) -> str:
    """Shell for the guest: start the work of conftest.Target.trigger (write /spy/go whole)."""
    f = target.folder
    return (f"rm -f {f}/done && printf '%s' '{n} {forks} {signals} {sleeps}' > {f}/go.tmp"
            f" && mv {f}/go.tmp {f}/go")


def trigger(guest: Guest, *work: tuple[GuestTarget, int, int, int, int]) -> list[tuple[int, int]]:
    """Each (target, n, forks, signals, sleeps) at once, from the guest's own shell (never
    `docker exec`, which would be counted), in one ssh; waits for every /spy/done. Returns
    what each target measured of its sleeps: the nanoseconds in all and the longest."""
    waits = int(120 * SLOW / 0.05)
    script = " && ".join(trigger_script(*w) for w in work)
    for target, *_ in work:
        f = target.folder
        script += (f" && i=0 && while [ ! -e {f}/done ]; do sleep 0.05; i=$((i+1));"
                   f" [ $i -lt {waits} ] || exit 3; done && cat {f}/done")
    lines = guest.ssh(script).stdout.split("\n")
    return [(int(line.split()[0]), int(line.split()[1])) for line in lines if line.strip()]


@dataclass
class Targets:
    guest: Guest
    workload: str
    names: list[str] = field(default_factory=list)  # of every container started

    def start(self, *configs: tuple[str, ...]) -> list[GuestTarget]:
        """One container running the workload per config (its docker run arguments), started
        at once: the emulated engine takes seconds for each."""
        names = [f"spy-vm-{secrets.token_hex(4)}" for _ in configs]
        self.names += names  # removed afterwards, whatever fails from here
        self.guest.ssh("mkdir -p " + " ".join(f"{SEEN}/{n}" for n in names))
        procs = [subprocess.Popen(["docker", "--context", self.guest.context, "run", "-d", "--name", name,
                                   "-v", f"{SEEN}/{name}:/spy", "-v", f"{self.workload}:/workload:ro",
                                   *config, "debian:trixie-slim", "/workload"], env=self.guest.env,
                                  text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for name, config in zip(names, configs, strict=True)]
        for proc in procs:
            _, err = proc.communicate(timeout=180 * SLOW)
            assert proc.returncode == 0, err
        pids = self.guest.docker("inspect", "-f", "{{.Id}} {{.State.Pid}}", *names).stdout.split("\n")
        return [GuestTarget(self.guest, name, line.split()[0], int(line.split()[1]), f"{SEEN}/{name}")
                for name, line in zip(names, pids, strict=False)]

    def remove_all(self) -> None:
        if self.names:
            self.guest.docker("rm", "-f", *self.names, check=False)
            self.guest.ssh("rm -rf " + " ".join(shlex.quote(f"{SEEN}/{n}") for n in self.names), check=False)
        self.names.clear()


@pytest.fixture(scope="module")
def before(guest: Guest) -> dict[str, str]:
    """What the guest holds before any test spies there (see the last test)."""
    return leftovers(guest)


@pytest.fixture(scope="module")
def targets(guest: Guest, before: dict[str, str], guest_helper: str,
            guest_workload: str) -> Iterator[Targets]:
    made = Targets(guest, guest_workload)
    try:
        yield made
    finally:
        made.remove_all()


@dataclass
class Group:
    """Four containers where a VM's containers live: the systemd driver's own scope, a slice of
    the user's (--cgroup-parent), one whose process moved into a cgroup below its scope (as
    systemd or Docker inside a container do), all labelled; and one unlabelled beside them."""

    label: str
    plain: GuestTarget
    sliced: GuestTarget
    below: GuestTarget
    other: GuestTarget


@pytest.fixture(scope="module")
def group(guest: Guest, targets: Targets) -> Group:
    label = f"spy-e2e-shop={secrets.token_hex(3)}"
    plain, sliced, below, other = targets.start(("--label", label), ("--label", label, "--cgroup-parent",
                                                                    "spy-e2e-shop.slice"),
                                                ("--label", label), ())
    scope = f"/sys/fs/cgroup/system.slice/docker-{below.id}.scope"
    guest.ssh(f"mkdir {scope}/spy-child && echo {below.pid} > {scope}/spy-child/cgroup.procs")
    assert guest.ssh(f"cat /proc/{below.pid}/cgroup").stdout.strip().endswith(".scope/spy-child")
    return Group(label, plain, sliced, below, other)


def finish(spy: SpyRun) -> tuple[dict, str]:
    code, out, err = spy.finish(timeout=240 * SLOW)
    assert code == 0, err
    return json.loads(out), err


def spy_json(guest: Guest, target: GuestTarget, *args: str, n: int = N) -> tuple[dict, str]:
    """One window over `target` while it does a known amount of work; the report and stderr.
    The window must outlast the work: a test whose work did not fit says so (not a miscount)."""
    spy = guest.spy(target.name, "--format", "json", "-l", "info", *args)
    spy.wait_counting(timeout=180 * SLOW)
    began = time.monotonic()
    trigger(guest, (target, n, 3, 5, 0))
    took = time.monotonic() - began
    doc, err = finish(spy)
    assert took < doc["window"]["requested_seconds"], f"the work took {took:.1f} s: longer than the window"
    return doc, err


def until_done(spy: SpyRun, guest: Guest, *work: tuple[GuestTarget, int, int, int, int]
               ) -> tuple[dict, str, list[tuple[int, int]]]:
    """The report of a long window that a Ctrl-C, as a terminal sends it, ends once the work is
    done: it holds all of the work, however long that took. (A window of fixed length must
    outlast the work, whose time under emulation is anyone's guess: the four targets of
    test_exact_wherever_the_containers_live took 8.6 s under perf, and had a 6 s window.)
    Also the returns of trigger()."""
    spy.wait_counting(timeout=180 * SLOW)
    measured = trigger(guest, *work)
    started = time.monotonic()
    os.killpg(spy.proc.pid, signal.SIGINT)
    code, out, err = spy.finish(timeout=240 * SLOW)
    assert code == 130, err
    assert time.monotonic() - started < 30 * SLOW, err
    doc = json.loads(out)
    assert doc["partial"] is True and doc["stopped"] == "interrupted"
    assert doc["window"]["measured_seconds"] < 600
    return doc, err, measured


def assert_exact(rows: list[dict], n: int = N, forks: int = 3, signals: int = 5) -> None:
    doc = {"syscalls": rows}
    assert syscall(doc, "getppid")["calls"] == n
    assert syscall(doc, "fchdir")["calls"] == syscall(doc, "fchdir")["errors"] == n
    assert syscall(doc, FORK)["calls"] == forks and syscall(doc, "exit_group")["calls"] == forks
    assert syscall(doc, "rt_sigreturn")["calls"] == signals and syscall(doc, "kill")["calls"] == signals


def warnings_of(err: str) -> list[str]:
    """The warnings of a run but its cost's (said when counting took much of the CPU, as it
    may in an emulated machine)."""
    return [line for line in err.splitlines() if "warning" in line.lower() and "counting took" not in line]


def test_the_guest_is_what_its_users_run(guest: Guest) -> None:
    info = json.loads(guest.docker("info", "--format", "{{json .}}").stdout)
    assert info["CgroupDriver"] == "systemd" and info["CgroupVersion"] == "2"
    assert info["Architecture"] == {"x86_64": "x86_64", "arm64": "aarch64"}[ARCH]
    assert any("apparmor" in opt for opt in info["SecurityOptions"])
    major, minor = (int(x) for x in GUEST_FACTS["api"].split("."))
    assert (major, minor) >= (1, 44)  # a current engine (Docker 25 and later)
    assert guest.ssh("uname -r").stdout.strip() == info["KernelVersion"] != os.uname().release


@pytest.mark.parametrize("counter", ["bpf", "perf"])
def test_exact_wherever_the_containers_live(guest: Guest, group: Group, counter: str) -> None:
    """One window over the labelled three, picked by --filter: each exact in its own column,
    the unlabelled one not there; with BPF also each call's time and its errnos."""
    extra = ("--latency",) if counter == "bpf" else ()
    spy = guest.spy("--filter", f"label={group.label}", "--format", "json", "-l", "info", "-d", "600s",
                    "--engine", counter, *extra, new_session=True)
    doc, err, ((slept, longest), *_) = until_done(
        spy, guest, (group.plain, N, 3, 5, 20), (group.sliced, 2 * N, 3, 5, 0), (group.below, 3 * N, 3, 5, 0),
        (group.other, 4 * N, 3, 5, 0))
    assert doc["engine"] == counter
    assert doc["host"]["cgroup_version"] == 2 and doc["host"]["cgroup_layout"] == "v2"
    assert doc["host"]["arch"] == {"x86_64": "x86_64", "arm64": "aarch64"}[ARCH]
    assert doc["host"]["kernel"] == GUEST_FACTS["kernel"]
    columns = {t["name"]: t["syscalls"] for t in doc["targets"]}
    assert set(columns) == {group.plain.name, group.sliced.name, group.below.name}
    assert_exact(columns[group.plain.name])
    assert_exact(columns[group.sliced.name], n=2 * N)
    assert_exact(columns[group.below.name], n=3 * N)
    assert syscall(doc, "getppid")["calls"] == 6 * N  # the sum, without the other's 4 N
    # Where they are: the systemd driver's scopes, the slice nested by its dashes.
    assert f"'/system.slice/docker-{group.plain.id}.scope'" in err
    assert f"'/spy.slice/spy-e2e.slice/spy-e2e-shop.slice/docker-{group.sliced.id}.scope'" in err
    assert warnings_of(err) == []  # nothing to warn of where AppArmor confines the helper
    if counter == "bpf":
        assert doc["latency"] is True
        assert syscall(doc, "fchdir")["errnos"] == {"EBADF": 6 * N} and syscall(doc, "getppid")["errors"] == 0
        sleep = {r["name"]: r for r in columns[group.plain.name]}["clock_nanosleep"]
        assert sleep["calls"] == 20  # the target waits with poll(): these are all its sleeps
        # The kernel's time for the calls is what the target measured around them, a little less.
        assert sleep["time_ns"] <= slept and sleep["time_ns"] == pytest.approx(slept, rel=0.02)
        assert sleep["max_ns"] <= longest and sleep["max_ns"] == pytest.approx(longest, rel=0.05)
        assert sleep["time_ns"] >= 20 * 20_000_000 and sleep["max_ns"] >= 20_000_000


@pytest.fixture(scope="module")
def guest_probe(guest: Guest, tmp_path_factory: pytest.TempPathFactory) -> str:
    return guest_binary(guest, "seccomp_probe.c", tmp_path_factory.mktemp("guest-probe"))


def test_a_profile_written_from_the_guest_runs_there_and_denies_what_was_never_done(
        guest: Guest, group: Group, targets: Targets, guest_probe: str, tmp_path: Path) -> None:
    profile = tmp_path / "profile.json"
    doc, _ = spy_json(guest, group.plain, "-d", "4s", "--seccomp-profile", str(profile))
    assert_exact(doc["syscalls"])
    written = json.loads(profile.read_text())
    assert written["defaultAction"] == "SCMP_ACT_ERRNO"
    seccomp_arch = {"x86_64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64"}[ARCH]
    assert written["archMap"][0]["architecture"] == seccomp_arch
    allowed = set(written["syscalls"][0]["names"])
    assert {"getppid", "fchdir", FORK, "rt_sigreturn", "execve"} <= allowed and "uname" not in allowed

    # The docker CLI here reads the file and hands it to the guest's engine: the workload
    # starts under it there and does its work, and a call it never made is denied.
    (again,) = targets.start(("--security-opt", f"seccomp={profile}"))
    trigger(guest, (again, N, 3, 5, 0))
    assert guest.docker("inspect", "-f", "{{.State.Running}}", again.name).stdout.strip() == "true"
    probe = ["run", "--rm", "-v", f"{guest_probe}:/probe:ro"]
    denied = guest.docker(*probe, "--security-opt", f"seccomp={profile}", "debian:trixie-slim", "/probe",
                          "uname", check=False)
    assert (denied.returncode, denied.stdout) == (1, "uname EPERM\n"), denied.stderr
    default = guest.docker(*probe, "debian:trixie-slim", "/probe", "uname", check=False)
    assert (default.returncode, default.stdout) == (0, "uname ok\n"), default.stderr


def test_a_target_that_exits_mid_window_five_times(guest: Guest, targets: Targets) -> None:
    for i, target in enumerate(targets.start(*[()] * 5)):
        spy = guest.spy(target.name, "-d", "120s", "--format", "json", "-l", "info")
        spy.wait_counting(timeout=180 * SLOW)
        trigger(guest, (target, N + i, 0, 0, 0))
        guest.docker("kill", target.name)
        doc, err = finish(spy)
        assert doc["partial"] is True and doc["stopped"] == "target-exited", f"run {i}"
        assert doc["targets"][0]["exited"] is True
        assert syscall(doc, "getppid")["calls"] == N + i, f"run {i}"
        assert f"container {target.name} stopped during the window" in err
        assert 0 < doc["window"]["measured_seconds"] < 120


def test_ctrl_c_keeps_the_report_five_times(guest: Guest, group: Group) -> None:
    """A terminal's Ctrl-C reaches the docker CLI and the plugin, not the plugin's ssh
    connections (a session of their own): the helper is stopped through them, and its
    report so far is shown."""
    for i in range(5):
        spy = guest.spy(group.plain.name, "-d", "600s", "--format", "json", "-l", "info", new_session=True)
        doc, _, _ = until_done(spy, guest, (group.plain, N + i, 0, 0, 0))
        assert syscall(doc, "getppid")["calls"] == N + i, f"run {i}"
        assert syscall(doc, "fchdir")["errors"] == N + i, f"run {i}"


@pytest.fixture
def desktop_conditions(guest: Guest) -> Iterator[None]:
    """The guest made to look like Docker Desktop's VM: no tracefs mounted (LinuxKit mounts
    none), no debugfs (its tracing folder would be a tracefs), no bpffs at /sys/fs/bpf. Put
    back afterwards as systemd had them (bpffs is one of its early mounts, with no unit)."""
    restore = ("systemctl start sys-kernel-tracing.mount sys-kernel-debug.mount && "
               "{ mountpoint -q /sys/fs/bpf || "
               "mount -t bpf -o nosuid,nodev,noexec,relatime,mode=700 bpf /sys/fs/bpf; }")
    guest.ssh("umount -R /sys/kernel/tracing; umount -R /sys/kernel/debug; umount /sys/fs/bpf; true")
    try:
        mounted = guest.ssh("findmnt -rn -o TARGET -t tracefs,debugfs,bpf | grep -c ^/sys/", check=False)
        assert mounted.stdout.strip() == "0"
        yield
    finally:
        guest.ssh(restore)
    mounts = ("/sys/kernel/tracing", "/sys/kernel/debug", "/sys/fs/bpf")
    guest.ssh(" && ".join(f"mountpoint -q {m}" for m in mounts))


def test_desktop_conditions(guest: Guest, group: Group, guest_helper: str, desktop_conditions: None) -> None:
    """No tracefs on the host: the engine mounts one for the helper (its tracefs volume), as
    AppArmor here denies the helper every mount of its own; perf counts through the plugin.
    Then the helper run by hand as the plugin runs it, with /sys/kernel/btf hidden from it as
    on Desktop releases whose kernel has no BTF: the BPF object needs none."""
    spy = guest.spy(group.plain.name, "--format", "json", "-l", "info", "-d", "600s", "--engine", "perf",
                    new_session=True)
    doc, err, _ = until_done(spy, guest, (group.plain, N, 3, 5, 0))
    assert doc["engine"] == "perf" and warnings_of(err) == []
    assert_exact(doc["syscalls"])

    args = ["run", "--rm", "-i", "--pid", "host", "--cgroupns", "host", "--userns", "host",
            "--network", "none", "--cap-drop", "ALL", "--cap-add", "SYS_ADMIN", "--read-only",
            "--tmpfs", "/tmp",
            "--security-opt", "no-new-privileges", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
            "--mount", "type=volume,dst=/sys/kernel/tracing,volume-driver=local,"
                       "volume-opt=type=tracefs,volume-opt=device=tracefs",
            "--mount", "type=tmpfs,destination=/sys/kernel/btf"]
    hidden = guest.docker(*args, "--entrypoint", "ls", guest_helper, "-A", "/sys/kernel/btf").stdout
    assert hidden == ""  # no vmlinux in there
    helper = subprocess.Popen(["docker", "--context", guest.context, *args, guest_helper,
                               "--pid", str(group.plain.pid), "--duration", "15", "--engine", "bpf"],
                              env=guest.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        said = read_until(helper, '"counting"', timeout=180 * SLOW)
        assert '"counting"' in said, "the helper never counted:\n" + said
        began = time.monotonic()
        trigger(guest, (group.plain, N, 3, 5, 0))
        took = time.monotonic() - began
        out, _ = helper.communicate(timeout=240 * SLOW)
    finally:
        if helper.poll() is None:
            helper.kill()  # the docker CLI here; the helper there stops with its stdin
    doc = json.loads(out)
    assert took < doc["window"]["requested_seconds"], f"the work took {took:.1f} s: longer than the window"
    assert doc["kind"] == "report" and doc["engine"] == "bpf"
    assert_exact(doc["targets"][0]["syscalls"])


def read_until(proc: subprocess.Popen[str], word: str, timeout: float) -> str:
    """What proc writes on stderr until a line with word, or until timeout: never longer."""
    assert proc.stderr is not None
    lines: list[str] = []
    found = threading.Event()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if word in line:
                found.set()
                return

    threading.Thread(target=pump, daemon=True).start()
    found.wait(timeout)
    return "".join(lines)


OUR_MAPS = ("control", "targets", "counts", "touched", "times", "other", "errnos", "lost", "started")
LEFTOVERS = f"""
bpftool prog show | grep -oE 'name ({"|".join(OUR_PROGRAMS)})( |$)' | sort | tr '\\n' ' '; echo
bpftool map show | grep -oE 'name ({"|".join(OUR_MAPS)}|spy_bpf[^ ]*)( |$)' | sort | tr '\\n' ' '; echo
docker ps -aq --filter label={HELPER_ROLE} | tr '\\n' ' '; echo
docker volume ls -q | sort | tr '\\n' ' '; echo
findmnt -rn -o TARGET,FSTYPE | grep -E ' (tracefs|bpf|debugfs)$|/var/lib/docker/volumes/' \\
    | sort | tr '\\n' ' '; echo
"""


def leftovers(guest: Guest) -> dict[str, str]:
    """What a helper could leave in the guest: its BPF programs and maps, the helper container,
    its tracefs volume, and mounts of tracefs, bpffs, debugfs or of a volume."""
    lines = guest.ssh(LEFTOVERS).stdout.split("\n")
    keys = ("programs", "maps", "helpers", "volumes", "mounts")
    return dict(zip(keys, (x.strip() for x in lines), strict=False))


def test_nothing_is_left_behind_in_the_guest(guest: Guest, group: Group, before: dict[str, str]) -> None:
    """After every run of this module, and two that end badly: the guest holds what it held
    before the first (the module's `before`)."""
    assert before["programs"] == "" and before["helpers"] == ""
    # Ctrl-C twice, 1 s apart (two within 0.5 s are one, as a terminal and the docker CLI both
    # pass it on): the second quits at once, unless the report came first; either way 130.
    spy = guest.spy(group.plain.name, "-d", "120s", "-l", "info", new_session=True)
    spy.wait_counting(timeout=180 * SLOW)
    os.killpg(spy.proc.pid, signal.SIGINT)
    time.sleep(1.0)
    os.killpg(spy.proc.pid, signal.SIGINT)
    code, _, err = spy.finish(timeout=240 * SLOW)
    assert code == 130, err
    # Killed outright, the docker CLI and the plugin: their ssh connections lose their other
    # end and go, and with the attach stream the helper's stdin closes: it stops itself.
    spy = guest.spy(group.plain.name, "-d", "120s", "-l", "info", new_session=True)
    spy.wait_counting(timeout=180 * SLOW)
    os.killpg(spy.proc.pid, signal.SIGKILL)
    code, _, _ = spy.finish(timeout=60 * SLOW)
    assert code == -signal.SIGKILL
    # A name that is no container: one line, nothing started.
    bad = guest.docker("spy", "no-such-container-here", "-d", "2s", check=False)
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    deadline = time.monotonic() + 180 * SLOW  # perf closes its events slowly, more so emulated
    while (now := leftovers(guest)) != before and time.monotonic() < deadline:
        time.sleep(2)
    assert now == before
    # Nor here: no ssh of the plugin's still running (each one's input closed with its plugin).
    dialing = run("pgrep", "-af", "--", f"-p {guest.port} -- 127.0.0.1 docker system dial-stdio", check=False)
    assert dialing.stdout == "", dialing.stdout
