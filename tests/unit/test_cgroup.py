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


def expected(layout: str) -> dict[str, dict[str, object]]:
    return json.loads((FIXTURES / layout / "expected.json").read_text())


@pytest.mark.parametrize("layout", LAYOUTS)
def test_recorded_layouts_resolve_to_the_cgroup_perf_is_given(layout: str) -> None:
    # expected.json pins the name perf's -G is given and where perf will find it (README.md
    # there says how each value follows from the recorded texts).
    got = cgroup.resolve(*texts(layout))
    want = expected(layout)["perf"]
    assert (got.version, got.layout, got.mount_point, got.name, got.path, got.directory) == (
        want["version"], want["layout"], want["mount_point"], want["name"], want["path"], want["directory"])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_recorded_layouts_resolve_to_the_cgroup_v2_the_bpf_engine_counts(layout: str) -> None:
    got = cgroup.resolve_v2(*texts(layout))
    want = expected(layout)["v2"]
    assert (got.path, got.directory, got.level) == (want["path"], want["directory"], want["level"])


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


def test_the_perf_event_line_must_be_there_when_perf_counts_v1() -> None:
    # The v1 host's mounts, with the /proc/<pid>/cgroup of a host whose perf_event is not on v1.
    with pytest.raises(cgroup.CgroupError, match="has no the perf_event line"):
        cgroup.resolve(texts("hybrid-cgroupfs")[0], texts("v1-perf-event-cgroupfs")[1])


def test_the_cgroup2_line_must_be_there_when_perf_counts_v2() -> None:
    v1_lines = "".join(line + "\n" for line in texts("hybrid-cgroupfs")[0].splitlines()
                       if not line.startswith("0::"))
    with pytest.raises(cgroup.CgroupError, match=r"has no the cgroup2 line \(0::\)"):
        cgroup.resolve(v1_lines, texts("hybrid-cgroupfs")[1])
    with pytest.raises(cgroup.CgroupError, match="no 0:: line"):
        cgroup.resolve_v2(v1_lines, texts("hybrid-cgroupfs")[1])


def test_a_cgroup_below_no_visible_cgroup2_mount_is_refused_for_bpf() -> None:
    # The systemd layout's cgroup, seen through the mount whose root is /docker.
    with pytest.raises(cgroup.CgroupError, match="below no cgroup2 mount visible here"):
        cgroup.resolve_v2(texts("systemd-driver-scope")[0], texts("mount-root-docker")[1])


@pytest.mark.parametrize("line", [
    "1 2 0:9 / - cgroup2 cgroup2 rw",  # the separator before the mount's fields
    "1 2 0:9 / /sys/fs/x rw - cgroup2",  # no source and no super options after it
    "1 2 0:9 / /sys/fs/x rw - cgroup2 cgroup2",  # no super options after it
    "1 2 0:9 / /sys/fs/x rw cgroup2 cgroup2 rw",  # no separator at all
])
def test_mountinfo_lines_without_their_fields_are_skipped(line: str) -> None:
    proc_cgroup, mountinfo = texts("systemd-driver-scope")
    got = cgroup.resolve(proc_cgroup, mountinfo + line + "\n")
    assert got.mount_point == expected("systemd-driver-scope")["perf"]["mount_point"]
    assert cgroup.parse_mountinfo(line) == []
