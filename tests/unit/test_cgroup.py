"""cgroup.py against /proc/<pid>/cgroup and mountinfo texts recorded on real layouts
(tests/fixtures/cgroup/README.md says how each was made)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plugin.helper import cgroup

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cgroup"
LAYOUTS = sorted(p.name for p in FIXTURES.iterdir() if (p / "expected.json").is_file())


def texts(layout: str) -> tuple[str, str]:
    return (FIXTURES / layout / "cgroup").read_text(), (FIXTURES / layout / "mountinfo").read_text()


def test_every_layout_has_a_fixture() -> None:
    assert set(LAYOUTS) >= {"hybrid-cgroupfs", "v1-perf-event-cgroupfs", "systemd-driver-scope",
                            "rootless-user-slice", "mount-root-docker"}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_recorded_layouts_resolve(layout: str) -> None:
    expected = json.loads((FIXTURES / layout / "expected.json").read_text())
    proc_cgroup, mountinfo = texts(layout)
    got = cgroup.resolve(proc_cgroup, mountinfo)
    assert got.version == expected["version"]
    assert got.layout == expected["layout"]
    assert got.mount_point == expected["mount_point"]
    assert got.name.startswith(expected["name_prefix"])
    assert got.name.endswith(got.path.rsplit("/", 1)[1])  # the target's own cgroup, not a parent
    assert got.directory == got.mount_point + got.name


def test_v1_uses_the_perf_event_line_not_the_unified_one() -> None:
    proc_cgroup, mountinfo = texts("v1-perf-event-cgroupfs")
    perf_line = next(line for line in proc_cgroup.splitlines() if ":perf_event:" in line)
    assert cgroup.resolve(proc_cgroup, mountinfo).path == perf_line.split(":", 2)[2]


def test_mount_root_is_stripped() -> None:
    proc_cgroup, mountinfo = texts("mount-root-docker")
    got = cgroup.resolve(proc_cgroup, mountinfo)
    assert got.path.startswith("/docker/") and got.name == got.path[len("/docker"):]


def _hybrid_without_cgroup2() -> str:
    _, mountinfo = texts("hybrid-cgroupfs")
    return "\n".join(line for line in mountinfo.splitlines() if " - cgroup2 " not in line)


REFUSED = [
    # (what, /proc/<pid>/cgroup, mountinfo, words of the error)
    ("path outside the mount's root", texts("systemd-driver-scope")[0],
     texts("mount-root-docker")[1], "not below the mount's root"),
    ("the root cgroup", "0::/\n", texts("systemd-driver-scope")[1], "root cgroup"),
    ("a path from another cgroup namespace", "0::/../../system.slice/docker-1.scope\n",
     texts("systemd-driver-scope")[1], "outside this cgroup namespace"),
    # Seen on this machine: perf_event bound to a v1 hierarchy that nobody had mounted;
    # perf cannot count cgroup2 paths then (it crashed with SIGSEGV).
    ("perf_event on an unmounted v1 hierarchy", "11:perf_event:/\n" + texts("hybrid-cgroupfs")[0],
     texts("hybrid-cgroupfs")[1], "perf_event controller is on cgroup v1"),
    ("no usable mount", texts("hybrid-cgroupfs")[0], _hybrid_without_cgroup2(), "no cgroup mount"),
    ("a comma, which perf -G splits on", "0::/a,b\n", texts("systemd-driver-scope")[1], "comma"),
]


@pytest.mark.parametrize("what, proc_cgroup, mountinfo, words", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused(what: str, proc_cgroup: str, mountinfo: str, words: str) -> None:
    with pytest.raises(cgroup.CgroupError, match=words):
        cgroup.resolve(proc_cgroup, mountinfo)


def test_escaped_mount_point() -> None:
    proc_cgroup, mountinfo = texts("systemd-driver-scope")
    escaped = mountinfo.replace(" /sys/fs/cgroup ", " /sys/fs/my\\040cgroup ")
    assert cgroup.resolve(proc_cgroup, escaped).mount_point == "/sys/fs/my cgroup"


@pytest.mark.parametrize("line", ["garbage", "x::/a", "0::relative", "1:cpu"])
def test_malformed_proc_cgroup(line: str) -> None:
    _, mountinfo = texts("systemd-driver-scope")
    with pytest.raises(cgroup.CgroupError, match="unexpected line"):
        cgroup.resolve(line + "\n", mountinfo)
