"""The helper's targets: host PIDs (a local run, in the host's PID namespace) or container ids
(the task of a Swarm job, in a PID namespace of its own), and the cgroups each engine counts
them by. Either way the cgroup is judged by cgroup.py's rules from a /proc/<pid>/cgroup text:
the kernel's, or, for a container id, the one its place in the hierarchies says (fleet.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from . import cgroup, fleet
from .engine import HelperFailure


def read_text(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        raise HelperFailure("target", f"{what} exited before counting started ({path} is gone)") from None
    except OSError as e:
        raise HelperFailure("permission", f"cannot read {path}: {e.strerror}") from None


@dataclass(frozen=True)
class Target:
    pid: int | None = None
    container: str | None = None

    def ident(self) -> dict[str, int | str]:
        """How the helper's documents name it."""
        return {"pid": self.pid} if self.pid is not None else {"container": self.container or ""}

    def proc_cgroup(self, mounts: list[cgroup.Mount]) -> str:
        if self.pid is not None:
            return read_text(f"/proc/{self.pid}/cgroup", f"process {self.pid}")
        try:
            return fleet.proc_cgroup(self.container or "", mounts)
        except cgroup.CgroupError as e:
            raise HelperFailure("target", str(e)) from None

    def alive(self, directory: str) -> bool:
        """Its container still runs: its init lives, or its cgroup still has processes."""
        if self.pid is not None:
            return os.path.exists(f"/proc/{self.pid}")
        return fleet.populated(directory)


def perf_cgroups(targets: list[Target], mountinfo: str) -> list[cgroup.PerfCgroup]:
    """Each target's cgroup as perf counts it."""
    mounts = cgroup.parse_mountinfo(mountinfo)
    found: list[cgroup.PerfCgroup] = []
    for target in targets:
        try:
            one = cgroup.resolve(target.proc_cgroup(mounts), mountinfo)
        except cgroup.CgroupError as e:
            raise HelperFailure("cgroup", str(e)) from None
        if not os.path.isdir(one.directory):
            raise HelperFailure("cgroup",
                                f"{one.directory} does not exist here (is the host's cgroupfs mounted?)")
        if any(t.name == one.name for t in found):
            raise HelperFailure("cgroup", f"two targets are in one cgroup ({one.path})")
        found.append(one)
    return found


def v2_cgroups(targets: list[Target], mountinfo: str) -> list[cgroup.V2Cgroup]:
    """Each target's cgroup v2, as the BPF engine counts it; CgroupError says why not."""
    mounts = cgroup.parse_mountinfo(mountinfo)
    found: list[cgroup.V2Cgroup] = []
    for target in targets:
        one = cgroup.resolve_v2(target.proc_cgroup(mounts), mountinfo)
        if not os.path.isdir(one.directory):
            raise cgroup.CgroupError(f"{one.directory} does not exist here")
        if any(t.path == one.path for t in found):
            raise HelperFailure("cgroup", f"two targets are in one cgroup ({one.path})")
        found.append(one)
    return found


def own_v2(mountinfo: str) -> cgroup.V2Cgroup:
    """The helper's own cgroup v2, for the BPF engine's self-test: its /proc/self/cgroup, or,
    in a cgroup namespace of its own (a Swarm task), found from its container id."""
    try:
        return cgroup.resolve_v2(read_text("/proc/self/cgroup", "the helper"), mountinfo)
    except cgroup.CgroupError:
        own = fleet.own_container_id(mountinfo)
        if own is None:
            raise
        return cgroup.resolve_v2(fleet.proc_cgroup(own, cgroup.parse_mountinfo(mountinfo)), mountinfo)
