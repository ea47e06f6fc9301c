"""Container names, ids and `docker ps` filters -> Targets (id, name, host pid), with clear errors."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import logs
from .errors import DaemonError, TargetError, UsageError
from .helper_image import LABEL_ROLE
from .notices import warn
from .report import MAX_TARGETS

if TYPE_CHECKING:
    import docker

log = logs.get_logger(__name__)

# What the engine accepts as a container name or id (prefix); anything else cannot match.
_REFERENCE = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}")


@dataclass(frozen=True)
class Target:
    id: str
    name: str
    pid: int
    image: str


def check_reference(ref: str) -> str:
    if not ref:
        raise UsageError("the container name is empty")
    if not _REFERENCE.fullmatch(ref):
        raise UsageError(
            f"{ref!r} is not a container name or id",
            "names are letters, digits, '_', '.' and '-'",
        )
    return ref.lstrip("/")


def resolve(client: docker.DockerClient, ref: str) -> Target:
    """The running container `ref` names (name, full id or unique id prefix)."""
    import docker.errors

    ref = check_reference(ref)
    try:
        container = client.containers.get(ref)
    except docker.errors.NotFound:
        raise TargetError(f"no such container: {ref}", "docker ps lists the running ones") from None
    except docker.errors.APIError as e:
        explanation = str(e.explanation or e)
        if "multiple" in explanation.lower() or "ambiguous" in explanation.lower():
            raise TargetError(
                f"{ref!r} matches more than one container", "give more of the id, or the name"
            ) from None
        raise DaemonError(f"the engine could not look up {ref!r}: {explanation}") from None
    except docker.errors.DockerException as e:
        raise DaemonError(f"the engine stopped answering: {e}") from None
    state = container.attrs.get("State") or {}
    name = container.name
    if state.get("Paused"):
        raise TargetError(
            f"container {name} is paused, so it makes no system calls", f"docker unpause {name}"
        )
    pid = state.get("Pid")
    if not state.get("Running") or not isinstance(pid, int) or pid <= 0:
        status = state.get("Status") or "not running"
        raise TargetError(f"container {name} is {status}, not running", f"docker start {name}")
    image = (container.attrs.get("Config") or {}).get("Image") or ""
    return Target(id=container.id, name=name, pid=pid, image=image)


def parse_filters(filters: Sequence[str]) -> dict[str, list[str]]:
    """`docker ps --filter` strings (KEY=VALUE) -> the engine's filters argument."""
    parsed: dict[str, list[str]] = {}
    for text in filters:
        key, eq, value = text.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"bad filter {text!r}", "filters are KEY=VALUE, as docker ps --filter")
        parsed.setdefault(key.strip(), []).append(value)
    return parsed


def running(client: docker.DockerClient, filters: Sequence[str] = ()) -> list[Any]:
    """The running containers that match `docker ps` filters, docker spy's helpers left out."""
    import docker.errors

    try:
        matched = client.containers.list(filters=parse_filters(filters))
    except docker.errors.APIError as e:
        if e.status_code == 400:
            raise UsageError(f"the engine refused the filter: {e.explanation}") from None
        raise DaemonError(f"the engine could not list containers: {e.explanation}") from None
    except docker.errors.DockerException as e:
        raise DaemonError(f"the engine stopped answering: {e}") from None
    return [c for c in matched if LABEL_ROLE not in (c.labels or {})]


def resolve_all(client: docker.DockerClient, refs: Sequence[str],
                filters: Sequence[str]) -> list[Target]:
    """The containers named, then the running ones the filters match (by name), once each."""

    targets = [resolve(client, ref) for ref in refs]
    if filters:
        ours = running(client, filters)
        if not ours and not targets:
            raise TargetError(f"no running container matches --filter {' '.join(filters)}",
                              f"docker ps {' '.join('--filter ' + f for f in filters)} lists what matches")
        for container in sorted(ours, key=lambda c: c.name):
            try:
                targets.append(resolve(client, container.id))
            except TargetError as e:  # paused, or stopped since it was listed: skip it
                warn(f"{e.what}: skipped")
    seen: dict[str, Target] = {}
    for t in targets:
        seen.setdefault(t.id, t)  # a container named twice, or named and matched, is one target
    unique = list(seen.values())
    if len(unique) > MAX_TARGETS:
        raise UsageError(f"{len(unique)} containers match; docker spy counts at most {MAX_TARGETS}",
                         "narrow the filter")
    return unique
