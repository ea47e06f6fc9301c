"""Which cgroup an engine must count: /proc/<pid>/cgroup and /proc/self/mountinfo -> the
cgroup perf's -G names (`resolve`), or the cgroup v2 the BPF engine recognises a task by
(`resolve_v2`).

Pure: the texts are handed in. perf resolves `-G NAME` as `<mount>/NAME`, where <mount> is
the first cgroup v1 mount carrying the perf_event controller, else the last cgroup2 mount
(tools/lib/api/fs/cgroup.c, cgroupfs_find_mountpoint). We pick the same mount, then the
line of /proc/<pid>/cgroup for that hierarchy, and make the path relative to the mount's
root (a mount need not show its hierarchy from the top).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

PERF_CONTROLLER = "perf_event"


class CgroupError(ValueError):
    """The target's cgroup cannot be found or cannot be counted; the message says why."""


@dataclass(frozen=True)
class Mount:
    mount_point: str
    root: str
    fstype: str
    super_options: tuple[str, ...]
    read_only: bool = False  # this mount's own options (not its superblock's) say ro


@dataclass(frozen=True)
class CgroupLine:
    hierarchy: int
    controllers: tuple[str, ...]
    path: str


@dataclass(frozen=True)
class PerfCgroup:
    """What perf needs: `-G name` resolves to `mount_point + name`."""

    version: int
    layout: str  # "v1", "v2" or "hybrid": how the host's hierarchies are mounted
    mount_point: str
    name: str
    path: str  # the cgroup as /proc/<pid>/cgroup names it

    @property
    def directory(self) -> str:
        return self.mount_point.rstrip("/") + self.name


_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """The cgroup and cgroup2 mounts of a /proc/<pid>/mountinfo text, in order."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        if sep < 6 or len(fields) < sep + 4:
            continue
        fstype = fields[sep + 1]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        mounts.append(
            Mount(
                mount_point=_unescape(fields[4]),
                root=_unescape(fields[3]),
                fstype=fstype,
                super_options=tuple(fields[sep + 3].split(",")),
                read_only="ro" in fields[5].split(","),
            )
        )
    return mounts


def _outside(root: str) -> bool:
    return root.startswith("..") or "/.." in root


def hierarchy_root(mount: Mount, exists: Callable[[str], bool]) -> bool:
    """Whether the mount shows its hierarchy from the very top: the kernel gives every cgroup2
    but the root a cgroup.events file, and a v1 hierarchy's root alone a release_agent."""
    base = mount.mount_point.rstrip("/")
    if mount.fstype == "cgroup2":
        return exists(base + "/cgroup.procs") and not exists(base + "/cgroup.events")
    return exists(base + "/release_agent")


def host_view(mountinfo: str, exists: Callable[[str], bool]) -> str:
    """The mountinfo text with the true root of each cgroup mount that this process's cgroup
    namespace shows as outside itself. A container in a cgroup namespace of its own (what
    Docker gives every container on a cgroup v2 host, and Swarm tasks cannot ask otherwise)
    sees the host's /sys/fs/cgroup bound in as root `/../..`: where the mount shows the
    hierarchy from its top, that root is `/`, and cgroups below it can be named from there.
    Any other such mount stays as it is (resolve refuses paths outside the namespace)."""
    out = []
    for line in mountinfo.splitlines(keepends=True):
        fields = line.split(" ")
        mounts = parse_mountinfo(line)
        if mounts and _outside(mounts[0].root) and hierarchy_root(mounts[0], exists):
            fields[3] = "/"
            line = " ".join(fields)
        out.append(line)
    return "".join(out)


def parse_proc_cgroup(text: str) -> list[CgroupLine]:
    """The lines of a /proc/<pid>/cgroup text: `hierarchy-id:controllers:path`."""
    lines = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        parts = raw.split(":", 2)
        if len(parts) != 3 or not parts[0].isdigit() or not parts[2].startswith("/"):
            raise CgroupError(f"unexpected line in /proc/<pid>/cgroup: {raw[:120]!r}")
        controllers = tuple(c for c in parts[1].split(",") if c)
        lines.append(CgroupLine(int(parts[0]), controllers, parts[2]))
    return lines


def perf_mount(mounts: list[Mount]) -> Mount:
    """The mount perf will resolve -G against, by perf's own rule."""
    v2 = None
    for mount in mounts:
        if mount.fstype == "cgroup2":
            v2 = mount
        elif PERF_CONTROLLER in mount.super_options:
            return mount
    if v2 is None:
        raise CgroupError(
            "no cgroup mount with the perf_event controller and no cgroup2 mount is visible"
        )
    return v2


def layout(mounts: list[Mount]) -> str:
    kinds = {m.fstype for m in mounts}
    if kinds == {"cgroup", "cgroup2"}:
        return "hybrid"
    return "v2" if kinds == {"cgroup2"} else "v1"


def resolve(proc_cgroup: str, mountinfo: str) -> PerfCgroup:
    """The cgroup perf must count to see the process whose /proc/<pid>/cgroup is given."""
    mounts = parse_mountinfo(mountinfo)
    mount = perf_mount(mounts)
    lines = parse_proc_cgroup(proc_cgroup)
    if mount.fstype == "cgroup2":
        chosen = [line for line in lines if line.hierarchy == 0 and not line.controllers]
        want = "the cgroup2 line (0::)"
    else:
        chosen = [line for line in lines if PERF_CONTROLLER in line.controllers]
        want = "the perf_event line"
    if mount.fstype == "cgroup2" and any(PERF_CONTROLLER in line.controllers for line in lines):
        # perf_event is bound to a v1 hierarchy that is not mounted here, so cgroup2 has none.
        raise CgroupError(
            "the perf_event controller is on cgroup v1 but no perf_event mount is visible "
            "(mount it on the host: mount -t cgroup -o perf_event cgroup /sys/fs/cgroup/perf_event)"
        )
    if not chosen:
        raise CgroupError(f"/proc/<pid>/cgroup has no {want} for the mount perf uses")
    path = chosen[0].path
    if _outside(path):
        raise CgroupError(
            f"cgroup path {path!r} is outside this cgroup namespace (run in the host's one)"
        )
    root = mount.root.rstrip("/")
    if root and path != root and not path.startswith(root + "/"):
        raise CgroupError(f"cgroup {path!r} is not below the mount's root {mount.root!r}")
    name = path[len(root):] or "/"
    if name == "/":
        raise CgroupError("the process is in the root cgroup: counting it would count the whole host")
    if "," in name:
        # perf -G splits its argument on commas.
        raise CgroupError(f"cgroup path {path!r} has a comma, which perf -G cannot take")
    return PerfCgroup(
        version=2 if mount.fstype == "cgroup2" else 1,
        layout=layout(mounts),
        mount_point=mount.mount_point,
        name=name,
        path=path,
    )


@dataclass(frozen=True)
class V2Cgroup:
    """A process's cgroup v2, as the BPF engine knows it: the kernel's cgroup id is the inode
    of `directory`, and bpf_get_current_ancestor_cgroup_id(level) finds it from any task in
    it or below it."""

    path: str  # from the hierarchy's root, as /proc/<pid>/cgroup's 0:: line names it
    directory: str  # where that cgroup is mounted here
    level: int  # the root is 0


def resolve_v2(proc_cgroup: str, mountinfo: str) -> V2Cgroup:
    """The cgroup v2 of the process whose /proc/<pid>/cgroup is given, checked to be its
    container's own; CgroupError says why not (then only perf can count it)."""
    mounts = parse_mountinfo(mountinfo)
    v2 = [m for m in mounts if m.fstype == "cgroup2"]
    if not v2:
        raise CgroupError("no cgroup2 is mounted (a cgroup v1 host)")
    lines = parse_proc_cgroup(proc_cgroup)
    unified = [line for line in lines if line.hierarchy == 0 and not line.controllers]
    if not unified:
        raise CgroupError("the process has no cgroup v2 (no 0:: line in /proc/<pid>/cgroup)")
    path = unified[0].path
    if _outside(path):
        raise CgroupError(f"cgroup path {path!r} is outside this cgroup namespace")
    if path == "/":
        raise CgroupError("the process is in the root cgroup v2: its engine gives containers "
                          "no cgroup v2 of their own")
    v1 = [line for line in lines if PERF_CONTROLLER in line.controllers]
    if v1 and any(PERF_CONTROLLER in m.super_options for m in mounts) and v1[0].path != path:
        # Hybrid: an engine that gives containers v1 cgroups only leaves their processes in
        # its own cgroup v2, shared with every other container.
        raise CgroupError(f"its cgroup v2 {path} is not its container's cgroup {v1[0].path}")
    for mount in v2:
        root = mount.root.rstrip("/")
        if not root or path == root or path.startswith(root + "/"):
            directory = mount.mount_point.rstrip("/") + path[len(root):]
            return V2Cgroup(path=path, directory=directory,
                            level=len([part for part in path.split("/") if part]))
    raise CgroupError(f"cgroup {path} is below no cgroup2 mount visible here")
