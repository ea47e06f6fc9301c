"""Container name or id -> Target(id, name, host pid), with clear errors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import DaemonError, TargetError, UsageError

if TYPE_CHECKING:
    import docker

# What the engine accepts as a container name or id (prefix); anything else cannot match.
_REFERENCE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$")


@dataclass(frozen=True)
class Target:
    id: str
    name: str
    pid: int
    image: str


def check_reference(ref: str) -> str:
    if not ref:
        raise UsageError("the container name is empty")
    if not _REFERENCE.match(ref):
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
            f"container {name} is paused, so it makes no system calls", "docker unpause it first"
        )
    pid = state.get("Pid")
    if not state.get("Running") or not isinstance(pid, int) or pid <= 0:
        status = state.get("Status") or "not running"
        raise TargetError(f"container {name} is {status}, not running", f"docker start {name}")
    image = (container.attrs.get("Config") or {}).get("Image") or ""
    return Target(id=container.id, name=name, pid=pid, image=image)
