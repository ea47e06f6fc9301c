"""The helper container's configuration, and the clean-up of leftovers, with a fake client at
the SDK object boundary (no HTTP is mocked)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from plugin import launcher
from plugin.target import Target

TARGET = Target(id="ab" * 32, name="web", pid=4242, image="nginx")
OTHER = Target(id="cd" * 32, name="db", pid=4343, image="postgres")


def config(targets: tuple[Target, ...] = (TARGET,), **kwargs) -> dict:
    return launcher.container_config(launcher.HelperRun("sha256:img", targets, 30.0, **kwargs), 1000.0)


def test_least_privilege() -> None:
    c = config()
    assert c["cap_drop"] == ["ALL"] and c["cap_add"] == ["SYS_ADMIN"]
    assert "privileged" not in c
    assert c["network_mode"] == "none"
    assert c["read_only"] is True and set(c["tmpfs"]) == {"/tmp"}
    assert c["security_opt"] == ["no-new-privileges"]
    assert c["pid_mode"] == "host" and c["cgroupns"] == "host" and c["userns_mode"] == "host"
    assert c["auto_remove"] is True
    assert c["log_config"]["Type"] == "none"  # nothing of the helper's is written on the host


def test_mounts_are_cgroupfs_read_only_and_a_tracefs_no_docker_socket() -> None:
    for by_volume in (False, True):
        mounts = {m["Target"]: m for m in config(tracefs_volume=by_volume)["mounts"]}
        assert set(mounts) == {"/sys/fs/cgroup", "/sys/kernel/tracing"}
        cgroupfs = mounts["/sys/fs/cgroup"]
        assert cgroupfs["Type"] == "bind" and cgroupfs["Source"] == "/sys/fs/cgroup" and cgroupfs["ReadOnly"]
        assert not any("docker.sock" in str(m) for m in mounts.values())
    # The host's tracefs, read-only; or one the engine mounts, whatever the host has mounted:
    # an anonymous volume, which the engine removes with the helper.
    bound = {m["Target"]: m for m in config()["mounts"]}["/sys/kernel/tracing"]
    assert (bound["Type"], bound["Source"], bound["ReadOnly"]) == ("bind", "/sys/kernel/tracing", True)
    volume = {m["Target"]: m for m in config(tracefs_volume=True)["mounts"]}["/sys/kernel/tracing"]
    assert volume["Type"] == "volume" and volume["Source"] is None and not volume["ReadOnly"]
    assert volume["VolumeOptions"]["DriverConfig"] == {"Name": "local",
                                                       "Options": {"type": "tracefs", "device": "tracefs"}}


@pytest.mark.parametrize(("kernel", "by_volume"), [
    ("6.12.117+deb13-amd64", True),  # the test VM's
    ("6.18.44-fc-v1252", True),  # this machine's
    ("6.10.14-linuxkit", True),  # Docker Desktop's
    ("6.0.0", True),
    ("10.1", True),
    ("5.19.17", False),  # before 6.0, a new tracefs mount resets the host's mode and group
    ("5.15.167.4-microsoft-standard-WSL2", False),
    ("5.15.0-91-generic", False),
    ("4.18.0-513.el8.x86_64", False),
    ("", False),  # an engine that does not say: the host's, as before
    ("unknown", False),
    ("v6.1", False),
])
def test_the_engine_mounts_tracefs_from_linux_6_0(kernel: str, by_volume: bool) -> None:
    assert launcher.tracefs_by_volume(kernel) is by_volume


def test_command_and_labels() -> None:
    c = config()
    assert c["command"] == ["--pid", "4242", "--duration", "30.0", "--engine", "auto", "--stop-on-stdin"]
    assert c["labels"][launcher.LABEL_TARGET] == TARGET.id
    assert c["labels"]["io.docker-spy.role"] == launcher.HELPER_ROLE
    assert int(c["labels"][launcher.LABEL_EXPIRES]) == 1000 + 30 + launcher.EXPIRY_SLACK_SECONDS
    assert c["name"].startswith("docker-spy-abababababab-")


def test_several_targets_and_an_interval() -> None:
    c = config((TARGET, OTHER), interval=2.0)
    assert c["command"] == ["--pid", "4242", "--pid", "4343", "--duration", "30.0", "--engine", "auto",
                            "--interval", "2.0", "--stop-on-stdin"]
    assert c["labels"][launcher.LABEL_TARGET] == f"{TARGET.id},{OTHER.id}"


def test_privileged_is_an_opt_in() -> None:
    c = config(privileged=True)
    assert c["privileged"] is True and "cap_add" not in c


@dataclass
class FakeContainer:
    name: str
    status: str
    labels: dict[str, str]
    removed: bool = False
    attrs: dict = field(default_factory=lambda: {"Created": "1970-01-01T00:16:30.123456789Z"})  # 990

    def remove(self, force: bool = False, v: bool = False) -> None:
        assert force and v  # its anonymous tracefs volume goes with it
        self.removed = True


@dataclass
class FakeContainers:
    items: list[FakeContainer]
    filters: list[dict] = field(default_factory=list)

    def list(self, all: bool = False, filters: dict | None = None) -> list[FakeContainer]:
        assert all
        self.filters.append(filters or {})
        return self.items


@dataclass
class FakeClient:
    containers: FakeContainers


def helper(name: str, status: str, expires: str | None, created: str | int | None = None) -> FakeContainer:
    labels = {"io.docker-spy.role": launcher.HELPER_ROLE}
    if expires is not None:
        labels[launcher.LABEL_EXPIRES] = expires
    container = FakeContainer(name, status, labels)
    if created is not None:
        container.attrs = {"Created": created}
    return container


def test_leftovers_are_removed_and_live_helpers_kept() -> None:
    items = [
        helper("live", "running", "2000"),
        helper("starting", "created", "2000"),
        helper("exited", "exited", "2000"),
        helper("expired", "running", "999"),
        helper("never-started-expired", "created", "10"),
        # A run interrupted while the engine created its helper never learnt its name.
        helper("created-long-ago", "created", "2000", "1970-01-01T00:15:00Z"),  # 900: 100 s old
        helper("created-long-ago-listed", "created", "2000", 930),  # 70 s old
        helper("no-label", "running", None),
        helper("bad-label", "running", "soon"),
    ]
    client = FakeClient(FakeContainers(items))
    removed = launcher.remove_leftovers(client, now=1000.0)
    assert removed == ["exited", "expired", "never-started-expired", "created-long-ago",
                       "created-long-ago-listed", "no-label", "bad-label"]
    assert [c.name for c in items if not c.removed] == ["live", "starting"]  # created 10 s ago
    assert client.containers.filters == [{"label": f"io.docker-spy.role={launcher.HELPER_ROLE}"}]
