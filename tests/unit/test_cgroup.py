"""cgroup.py against /proc/<pid>/cgroup and mountinfo texts recorded on real layouts
(tests/fixtures/cgroup/README.md says how each was made)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plugin.helper import cgroup

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cgroup"
LAYOUTS = sorted(p.name for p in FIXTURES.iterdir() if (p / "expected.json").is_file())


def recorded_files(layout: str) -> set[str]:
    """The files at the top of the reader's cgroup mounts, where the recording listed them."""
    top = FIXTURES / layout / "top"
    return set(top.read_text().split()) if top.is_file() else set()


def texts(layout: str) -> tuple[str, str]:
    """The target's /proc/<pid>/cgroup and the reader's mountinfo, as the helper reads it (its
    host_view: the true roots of mounts a cgroup namespace of its own shows as outside)."""
    mountinfo = (FIXTURES / layout / "mountinfo").read_text()
    return ((FIXTURES / layout / "cgroup").read_text(),
            cgroup.host_view(mountinfo, recorded_files(layout).__contains__))


def test_every_layout_has_a_fixture() -> None:
    assert set(LAYOUTS) >= {"hybrid-cgroupfs", "v1-perf-event-cgroupfs", "systemd-driver-scope",
                            "rootless-user-slice", "mount-root-docker", "swarm-task-private-ns"}


SWARM = "swarm-task-private-ns"


def test_a_private_cgroup_namespace_shows_the_hosts_cgroup2_outside_itself() -> None:
    # What a Swarm task sees: the bound host's cgroup2 with root /../.. and itself at 0::/.
    raw = (FIXTURES / SWARM / "mountinfo").read_text()
    target, _ = texts(SWARM)
    [v2] = [m for m in cgroup.parse_mountinfo(raw) if m.fstype == "cgroup2"]
    assert v2.root.startswith("/..")
    with pytest.raises(cgroup.CgroupError, match="is below no cgroup2 mount visible here"):
        cgroup.resolve_v2(target, raw)
    with pytest.raises(cgroup.CgroupError, match="is not below the mount's root"):
        cgroup.resolve(target, raw)
    own = (FIXTURES / SWARM / "self-cgroup").read_text()
    assert "0::/\n" in own
    with pytest.raises(cgroup.CgroupError, match="root cgroup v2"):  # so the helper looks itself up by id
        cgroup.resolve_v2(own, texts(SWARM)[1])


def test_host_view_gives_the_true_root_only_to_a_mount_of_the_hierarchys_top() -> None:
    raw = (FIXTURES / SWARM / "mountinfo").read_text()
    files = recorded_files(SWARM)
    seen = cgroup.parse_mountinfo(cgroup.host_view(raw, files.__contains__))
    [v2] = [m for m in seen if m.fstype == "cgroup2"]
    assert v2.root == "/"
    # A mount of a cgroup below the top (it has cgroup.events) keeps what it shows.
    below = files | {f"{v2.mount_point}/cgroup.events"}
    kept = cgroup.parse_mountinfo(cgroup.host_view(raw, below.__contains__))
    assert [m.root for m in kept if m.fstype == "cgroup2"] == ["/../.."]
    # The v1 hierarchies' tops (release_agent) are still seen from their true root.
    assert {m.root for m in kept if m.fstype == "cgroup"} == {"/"}
    assert len(kept) == len(cgroup.parse_mountinfo(raw))
    # Nothing but that line's root field changes.
    changed = [(a.split(" "), b.split(" ")) for a, b in zip(
        raw.splitlines(), cgroup.host_view(raw, files.__contains__).splitlines(), strict=True) if a != b]
    tops = [m.mount_point for m in cgroup.parse_mountinfo(raw)]
    assert len(tops) == 10
    assert [(a[4], a[:3] + a[4:] == b[:3] + b[4:], b[3]) for a, b in changed] \
        == [(top, True, "/") for top in tops]
    hybrid = (FIXTURES / "hybrid-cgroupfs" / "mountinfo").read_text()
    assert cgroup.host_view(hybrid, lambda _: True) == hybrid


@pytest.mark.parametrize(("fstype", "files", "top"), [
    ("cgroup2", {"cgroup.procs"}, True),
    ("cgroup2", {"cgroup.procs", "cgroup.events"}, False),
    ("cgroup2", set(), False),
    ("cgroup", {"release_agent", "tasks"}, True),
    ("cgroup", {"tasks", "cgroup.procs"}, False),
])
def test_the_top_of_a_hierarchy_is_known_by_its_files(fstype: str, files: set[str], top: bool) -> None:
    mount = cgroup.Mount("/sys/fs/cgroup/x/", "/..", fstype, ())
    assert cgroup.hierarchy_root(mount, {f"/sys/fs/cgroup/x/{f}" for f in files}.__contains__) is top


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
    got = cgroup.resolve(proc_cgroup, line + "\n" + mountinfo + line + "\n")  # the lines after one still read
    assert got.mount_point == expected("systemd-driver-scope")["perf"]["mount_point"]
    assert cgroup.parse_mountinfo(line) == []


def _without(text: str, kind: str) -> str:
    return "".join(line + "\n" for line in text.splitlines() if f" - {kind} " not in line)


SYSTEMD, HYBRID, V1, ROOTED = (texts(layout) for layout in (
    "systemd-driver-scope", "hybrid-cgroupfs", "v1-perf-event-cgroupfs", "mount-root-docker"))
V1_SHARED = "".join(line + "\n" for line in V1[0].splitlines() if not line.startswith("0::")) + \
    "0::/system.slice/docker.service\n"
MESSAGES = [
    # (resolve or resolve_v2, /proc/<pid>/cgroup, mountinfo, the whole message the user reads)
    ("resolve", HYBRID[0], _without(HYBRID[1], "cgroup2"),
     "no cgroup mount with the perf_event controller and no cgroup2 mount is visible"),
    ("resolve", "11:perf_event:/\n" + HYBRID[0], HYBRID[1],
     "the perf_event controller is on cgroup v1 but no perf_event mount is visible (mount it on the host: "
     "mount -t cgroup -o perf_event cgroup /sys/fs/cgroup/perf_event)"),
    ("resolve", "1:cpu:/docker/x\n", SYSTEMD[1],
     "/proc/<pid>/cgroup has no the cgroup2 line (0::) for the mount perf uses"),
    ("resolve", HYBRID[0], V1[1], "/proc/<pid>/cgroup has no the perf_event line for the mount perf uses"),
    ("resolve", "0::/../x\n", SYSTEMD[1],
     "cgroup path '/../x' is outside this cgroup namespace (run in the host's one)"),
    ("resolve", "0::../x\n", SYSTEMD[1], "unexpected line in /proc/<pid>/cgroup: '0::../x'"),
    ("resolve", SYSTEMD[0], ROOTED[1], f"cgroup {SYSTEMD[0].split('0::')[1].strip()!r} is not below the "
     "mount's root '/docker'"),
    ("resolve", "0::/docker\n", ROOTED[1],
     "the process is in the root cgroup: counting it would count the whole host"),
    ("resolve", "0::/\n", SYSTEMD[1],
     "the process is in the root cgroup: counting it would count the whole host"),
    ("resolve", "0::/a,b\n", SYSTEMD[1], "cgroup path '/a,b' has a comma, which perf -G cannot take"),
    ("resolve", "x" * 200 + "\n", SYSTEMD[1], f"unexpected line in /proc/<pid>/cgroup: {'x' * 120!r}"),
    ("resolve_v2", V1[0], _without(V1[1], "cgroup2"), "no cgroup2 is mounted (a cgroup v1 host)"),
    ("resolve_v2", "1:cpu:/docker/x\n", SYSTEMD[1],
     "the process has no cgroup v2 (no 0:: line in /proc/<pid>/cgroup)"),
    ("resolve_v2", "0::/a/../b\n", SYSTEMD[1], "cgroup path '/a/../b' is outside this cgroup namespace"),
    ("resolve_v2", "0::/\n", SYSTEMD[1],
     "the process is in the root cgroup v2: its engine gives containers no cgroup v2 of their own"),
    ("resolve_v2", V1_SHARED, V1[1], "its cgroup v2 /system.slice/docker.service is not its container's "
     f"cgroup {V1[0].split(':perf_event:')[1].splitlines()[0]}"),
    ("resolve_v2", SYSTEMD[0], ROOTED[1],
     f"cgroup {SYSTEMD[0].split('0::')[1].strip()} is below no cgroup2 mount visible here"),
]


@pytest.mark.parametrize("how, proc_cgroup, mountinfo, message", MESSAGES,
                         ids=[f"{m[0]}-{i}" for i, m in enumerate(MESSAGES)])
def test_every_refusal_says_exactly_why(how: str, proc_cgroup: str, mountinfo: str, message: str) -> None:
    with pytest.raises(cgroup.CgroupError) as info:
        getattr(cgroup, how)(proc_cgroup, mountinfo)
    assert str(info.value) == message


def test_a_v1_only_host_counts_the_perf_event_hierarchy() -> None:
    got = cgroup.resolve(V1[0], _without(V1[1], "cgroup2"))
    want = expected("v1-perf-event-cgroupfs")["perf"]
    assert (got.version, got.layout, got.mount_point, got.name) == (
        1, "v1", want["mount_point"], want["name"])


def test_proc_cgroup_lines_are_read_whole() -> None:
    # The path may hold a colon (split at the first two only); controllers are comma-separated;
    # blank lines are skipped, wherever they are.
    lines = cgroup.parse_proc_cgroup("\n4:cpu,cpuacct:/a:b\n\n0::/x\n")
    assert lines == [cgroup.CgroupLine(4, ("cpu", "cpuacct"), "/a:b"), cgroup.CgroupLine(0, (), "/x")]
    assert cgroup.parse_proc_cgroup("2:name=systemd:/\n")[0].controllers == ("name=systemd",)


def test_the_perf_event_line_is_the_one_with_that_controller_among_others() -> None:
    proc = "12:cpu,perf_event:/docker/abc\n1:cpuset:/other\n0::/docker/abc\n"
    got = cgroup.resolve(proc, V1[1])
    assert (got.path, got.name) == ("/docker/abc", "/docker/abc")


def test_the_unified_line_has_hierarchy_0_and_no_controllers() -> None:
    # A v1 line without controllers (a named hierarchy) or hierarchy 0 with some is not cgroup2's.
    proc = "5::/not-this\n0:cpu:/nor-this\n0::/docker/abc\n"
    assert cgroup.resolve(proc, SYSTEMD[1]).path == "/docker/abc"
    assert cgroup.resolve_v2(proc, SYSTEMD[1]).path == "/docker/abc"


def test_a_hybrid_hosts_v2_is_its_containers_when_perf_event_is_on_v1() -> None:
    # The cgroup2 mount's perf_event check is of the mounts' options: perf_event mounted on v1.
    got = cgroup.resolve_v2(V1[0], V1[1])
    assert got.path == V1[0].split(":perf_event:")[1].splitlines()[0]
    # perf_event bound to a v1 hierarchy nobody mounted (its line says /, as seen on this
    # machine): that line says nothing about the container, whose cgroup v2 is its own.
    got = cgroup.resolve_v2("11:perf_event:/\n" + HYBRID[0], HYBRID[1])
    assert (got.path, got.directory) == (expected("hybrid-cgroupfs")["v2"]["path"],
                                         expected("hybrid-cgroupfs")["v2"]["directory"])


def test_a_cgroup_v2_that_is_its_mounts_root_is_the_mount_point() -> None:
    # A mount showing the container's own cgroup as its root (as a nested engine's can): the
    # BPF engine finds it at the mount point; its level is still counted from the hierarchy's root.
    got = cgroup.resolve_v2("0::/docker\n", ROOTED[1])
    assert (got.path, got.directory, got.level) == ("/docker", "/sys/fs/cgroup", 1)


def test_a_cgroup_mount_is_known_by_its_type_whatever_its_source() -> None:
    # `mount -t cgroup2 none /sys/fs/cgroup`, as many guides write it: the source is "none".
    proc, mountinfo = SYSTEMD
    none = mountinfo.replace(" - cgroup2 cgroup2 ", " - cgroup2 none ")
    assert cgroup.resolve(proc, none).directory == expected("systemd-driver-scope")["perf"]["directory"]


def test_only_a_final_slash_is_taken_off_a_mount_point_or_root() -> None:
    proc, mountinfo = SYSTEMD
    name = expected("systemd-driver-scope")["perf"]["name"]
    for field, mount_point in [("/sys/fs/cgroupX", "/sys/fs/cgroupX"), ("/sys/fs/cg\\040", "/sys/fs/cg ")]:
        odd = mountinfo.replace(" /sys/fs/cgroup ", f" {field} ")  # mountinfo escapes a blank as \040
        assert cgroup.resolve(proc, odd).directory == mount_point + name
        assert cgroup.resolve_v2(proc, odd).directory == mount_point + name
    rooted = ROOTED[1].replace(" /docker /sys/fs/cgroup ", " /dockerX /sys/fs/cgroup ")
    assert cgroup.resolve("0::/dockerX/abc\n", rooted).name == "/abc"
    assert cgroup.resolve_v2("0::/dockerX/abc\n", rooted).directory == "/sys/fs/cgroup/abc"


def test_the_v1_line_compared_with_cgroup_v2_is_perf_events() -> None:
    # Another v1 controller's line may name another cgroup; perf_event's is the container's.
    proc = "9:name=systemd:/system.slice/docker.service\n12:perf_event:/docker/abc\n0::/docker/abc\n"
    assert cgroup.resolve_v2(proc, V1[1]).path == "/docker/abc"


def test_read_only_is_the_mounts_own_option() -> None:
    """Docker 20.10's read-only bind of /sys/fs/cgroup is not recursive: the hierarchies under
    it came in writable, and the helper makes them read-only itself. Docker 26 in the test guest
    binds it read-only whole (there the helper, confined by AppArmor, could not remount)."""
    hybrid = cgroup.parse_mountinfo((FIXTURES / "hybrid-cgroupfs" / "mountinfo").read_text())
    assert hybrid and not any(m.read_only for m in hybrid)
    guest = cgroup.parse_mountinfo((FIXTURES / "vm-systemd-scope-x86_64" / "mountinfo").read_text())
    assert [(m.mount_point, m.fstype, m.read_only) for m in guest] == [("/sys/fs/cgroup", "cgroup2", True)]
    # The superblock's options (after the separator) do not count: the guest's say rw.
    assert "rw" in guest[0].super_options
