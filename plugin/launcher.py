"""Run one helper container next to the target and return its JSON document.

The helper is created with AutoRemove: once it has printed its report it still has to close
perf's events (slow, one RCU grace period per tracepoint), and the engine removes it when it
exits. The plugin never waits for that. A helper that never started is removed here.
"""

from __future__ import annotations

import json
import secrets
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import structlog

from . import __version__
from .errors import DaemonError, HelperError
from .helper_image import LABEL_ROLE, LABEL_VERSION
from .target import Target

if TYPE_CHECKING:
    import docker

LABEL_TARGET = "io.docker-spy.target"
HELPER_ROLE = "helper-container"
# The helper's own deadlines (start, print) bound a healthy run; this bounds a broken one.
SLACK_SECONDS = 120.0
STDOUT, STDERR = 1, 2

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class HelperRun:
    image: str
    target: Target
    seconds: float
    privileged: bool = False


def container_config(run: HelperRun) -> dict[str, Any]:
    """The create arguments: host PID and cgroup namespaces, read-only cgroupfs, tracefs,
    no network, CAP_SYS_ADMIN only (perf_event_open system-wide; mount of tracefs where the
    host has none mounted), read-only root, no new privileges."""
    from docker.types import LogConfig, Mount

    config: dict[str, Any] = {
        "image": run.image,
        "command": ["--pid", str(run.target.pid), "--duration", repr(run.seconds),
                    "--stop-on-stdin"],
        "name": f"docker-spy-{run.target.id[:12]}-{secrets.token_hex(3)}",
        "labels": {LABEL_ROLE: HELPER_ROLE, LABEL_VERSION: __version__,
                   LABEL_TARGET: run.target.id},
        "pid_mode": "host",
        "cgroupns": "host",
        "network_mode": "none",
        "mounts": [
            Mount("/sys/fs/cgroup", "/sys/fs/cgroup", type="bind", read_only=True),
            Mount("/sys/kernel/tracing", "/sys/kernel/tracing", type="bind", read_only=True),
        ],
        "read_only": True,
        "tmpfs": {"/tmp": "rw,noexec,nosuid,size=16m"},
        "security_opt": ["no-new-privileges"],
        "log_config": LogConfig(type=LogConfig.types.NONE),
        "stdin_open": True,
        "auto_remove": True,
    }
    if run.privileged:
        config["privileged"] = True
    else:
        config["cap_drop"] = ["ALL"]
        config["cap_add"] = ["SYS_ADMIN"]
    return config


class _Session:
    """The attach stream of one helper: stdout collects the document, stderr carries events."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.raw: socket.socket = getattr(sock, "_sock", sock)
        self.stdout = b""
        self.stderr = b""
        self.stderr_lines: list[str] = []

    def send(self, data: bytes) -> None:
        try:
            self.raw.sendall(data)
        except OSError:
            pass  # the helper is gone; what it printed is all there will be

    def close(self) -> None:
        for closer in (self.raw.close, getattr(self.sock, "close", lambda: None)):
            try:
                closer()
            except OSError:
                pass

    def read_document(self, deadline_s: float, on_event: Callable[[dict], None]) -> bytes:
        from docker.utils.socket import frames_iter

        self.raw.settimeout(deadline_s)
        try:
            for stream, data in frames_iter(self.sock, tty=False):
                if stream == STDOUT:
                    self.stdout += data
                    if b"\n" in self.stdout:
                        return self.stdout.split(b"\n", 1)[0]
                elif stream == STDERR:
                    self.stderr += data
                    *lines, self.stderr = self.stderr.split(b"\n")
                    for line in lines:
                        self._event(line.decode(errors="replace"), on_event)
        except (socket.timeout, TimeoutError):
            raise HelperError("the helper stopped answering", "docker spy --debug shows more") from None
        if self.stdout.strip():
            return self.stdout
        said = "; ".join(self.stderr_lines[-3:]) or "nothing"
        raise HelperError(f"the helper exited without a report (it said: {said[:300]})")

    def _event(self, line: str, on_event: Callable[[dict], None]) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if isinstance(event, dict) and isinstance(event.get("event"), str):
            on_event(event)
        elif line.strip():
            self.stderr_lines.append(line.strip())
            log.debug("helper stderr", line=line[:500])


def run(client: "docker.DockerClient", spec: HelperRun,
        on_event: Callable[[dict], None]) -> tuple[bytes, bool]:
    """Run the helper; return its document and whether Ctrl-C cut the window short."""
    import docker.errors

    config = container_config(spec)
    try:
        container = client.containers.create(**config)
    except docker.errors.ImageNotFound:
        raise HelperError(f"helper image {spec.image} vanished", "run docker spy build-helper") from None
    except docker.errors.APIError as e:
        raise HelperError(f"the engine refused to create the helper: {e.explanation}") from None
    except docker.errors.DockerException as e:
        raise DaemonError(f"the engine stopped answering: {e}") from None
    log.debug("helper created", container=container.name)
    started = False
    session = None
    try:
        sock = client.api.attach_socket(
            container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        session = _Session(sock)
        container.start()
        started = True
        deadline = spec.seconds + SLACK_SECONDS
        try:
            return session.read_document(deadline, on_event), False
        except KeyboardInterrupt:
            # First Ctrl-C: end the window now and still show what was counted.
            log.warning("interrupted: stopping the count")
            session.send(b"stop\n")
            return session.read_document(SLACK_SECONDS, on_event), True
    except docker.errors.APIError as e:
        raise HelperError(f"the helper could not start: {e.explanation}",
                          "try --privileged on hosts that refuse CAP_SYS_ADMIN alone") from None
    except docker.errors.DockerException as e:
        raise DaemonError(f"the engine stopped answering: {e}") from None
    finally:
        if session is not None:
            session.close()  # stdin closes too: a helper still counting stops and exits
        if not started:
            _remove(container)


def _remove(container: Any) -> None:
    import docker.errors

    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.DockerException as e:
        log.warning("could not remove the helper", container=container.name, error=str(e))
