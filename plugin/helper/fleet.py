"""The helper as the task of a Swarm job (`docker spy --service`): no host PID namespace, so
a target is named by its container id, found in the host's cgroup hierarchies bound at
/sys/fs/cgroup; and no attach stream, so its documents go out through the task's log, as
lines short enough for every log driver (json-file splits lines over 16 KiB).

Pure but for `find_container`, which walks the directories it is given.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable

from . import cgroup

CHUNK = 8000  # characters of a document per log line
CONTAINER_ID = re.compile(r"[0-9a-f]{64}")
_OWN_ID = re.compile(r"/containers/([0-9a-f]{64})/")
MAX_DEPTH = 7  # kubepods.slice/kubepods-burstable.slice/.../cri-containerd-<id>.scope is 4
# Where the common drivers put a container, tried before a walk of the hierarchy.
LIKELY = ("docker/{id}", "system.slice/docker-{id}.scope")


def own_container_id(mountinfo: str) -> str | None:
    """This container's id: the engine binds /etc/hostname from its containers/<id>/ folder."""
    match = _OWN_ID.search(mountinfo)
    return match.group(1) if match else None


def find_container(container_id: str, mount: cgroup.Mount,
                   listdir: Callable[[str], Iterable[str]] = os.listdir,
                   isdir: Callable[[str], bool] = os.path.isdir) -> str | None:
    """The path, from the hierarchy's root, of the cgroup named for the container (the
    cgroupfs driver's docker/<id>, the systemd driver's docker-<id>.scope, or any name
    holding the 64-digit id) in the hierarchy mounted at `mount`; None if there is none."""
    base = mount.mount_point.rstrip("/")
    root = mount.root.rstrip("/")
    for likely in LIKELY:
        relative = likely.format(id=container_id)
        if isdir(f"{base}/{relative}"):
            return f"{root}/{relative}"
    level = [""]
    for _ in range(MAX_DEPTH):
        below = []
        for relative in level:
            try:
                names = sorted(listdir(f"{base}{relative}"))
            except OSError:
                continue
            for name in names:
                if container_id in name and isdir(f"{base}{relative}/{name}"):
                    return f"{root}{relative}/{name}"
                if "." not in name or name.endswith((".slice", ".scope", ".service")):
                    below.append(f"{relative}/{name}")  # controller files have dots; cgroups rarely
        level = [r for r in below if isdir(f"{base}{r}")]
        if not level:
            return None
    return None


def proc_cgroup(container_id: str, mounts: list[cgroup.Mount],
                listdir: Callable[[str], Iterable[str]] = os.listdir,
                isdir: Callable[[str], bool] = os.path.isdir) -> str:
    """What /proc/<pid>/cgroup would say of the container's processes, from where it sits in
    the hierarchies the engines count by (the cgroup2 mount and a v1 perf_event one), so that
    cgroup.resolve and cgroup.resolve_v2 judge it as they judge a process: the same rules."""
    lines = []
    for number, mount in enumerate(mounts, start=1):
        if mount.fstype == "cgroup2":
            found = find_container(container_id, mount, listdir, isdir)
            if found:
                lines.append(f"0::{found}")
        elif cgroup.PERF_CONTROLLER in mount.super_options:
            found = find_container(container_id, mount, listdir, isdir)
            if found:
                lines.append(f"{number}:{cgroup.PERF_CONTROLLER}:{found}")
    if not lines:
        raise cgroup.CgroupError(f"no cgroup of container {container_id[:12]} is visible on this node")
    return "\n".join(lines) + "\n"


def log_lines(doc: dict, node: str, serial: int) -> list[str]:
    """One document as log lines of at most CHUNK characters of it each:
    {"schema":3,"kind":"part","node":...,"doc":serial,"seq":i,"last":bool,"data":"..."}.
    The plugin joins a document's parts in order, then reads it as it reads any other."""
    text = json.dumps(doc, separators=(",", ":"))
    parts = [text[i:i + CHUNK] for i in range(0, len(text), CHUNK)] or [""]
    return [json.dumps({"schema": doc.get("schema"), "kind": "part", "node": node, "doc": serial,
                        "seq": i, "last": i == len(parts) - 1, "data": part}, separators=(",", ":"))
            for i, part in enumerate(parts)]


def populated(directory: str) -> bool:
    """Whether a cgroup still has processes: cgroup.events on cgroup2, cgroup.procs on v1, and
    its directory at all (the engine removes it when the container goes)."""
    try:
        with open(os.path.join(directory, "cgroup.events")) as f:
            return "populated 1" in f.read()
    except FileNotFoundError:
        pass
    except OSError:
        return os.path.isdir(directory)
    try:
        with open(os.path.join(directory, "cgroup.procs")) as f:
            return bool(f.read().strip())
    except OSError:
        return False


class Output:
    """A Swarm task's documents, through its log: each one split into short lines (log_lines),
    and the report so far after every interval, so that a run cut short still has them."""

    def __init__(self, node: str, write: Callable[[str], None]) -> None:
        self.node = node
        self.write = write
        self.serial = 0

    def emit(self, doc: dict, final: bool = True) -> None:
        self.serial += 1
        for line in log_lines({**doc, "final": final}, self.node, self.serial):
            self.write(line)


def targets_of_node(spec: str, node: str) -> list[str]:
    """This node's containers in --fleet's {"<node id>": ["<container id>", ...]}."""
    try:
        by_node = json.loads(spec)
    except ValueError:
        raise ValueError("--fleet is not JSON") from None
    ids = by_node.get(node) if isinstance(by_node, dict) else None
    if not isinstance(ids, list) or not ids \
            or not all(isinstance(i, str) and CONTAINER_ID.fullmatch(i) for i in ids):
        raise ValueError(f"--fleet names no container of node {node!r}")
    return ids
