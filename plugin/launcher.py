"""Run one helper container next to the targets and return its JSON document.

The helper is created with AutoRemove: once it has printed its report it still has to close
perf's events (slow, one RCU grace period per tracepoint), and the engine removes it when it
exits. The plugin never waits for that. A helper that never started is removed here.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from . import __version__
from .errors import DaemonError, HelperError
from .helper_image import LABEL_ROLE, LABEL_VERSION
from .report import MAX_DOCUMENT_BYTES, SCHEMA
from .target import Target

if TYPE_CHECKING:
    import docker

LABEL_TARGET = "io.docker-spy.target"
LABEL_EXPIRES = "io.docker-spy.expires"  # unix time after which a helper is surely stale
HELPER_ROLE = "helper-container"
# Beyond its window a helper may linger, close perf's events (~15 s here, more on big hosts)
# and wait out its own deadlines: a helper older than window + this is left over.
EXPIRY_SLACK_SECONDS = 600
# The helper's own deadlines (start, print) bound a healthy run; this bounds a broken one.
SLACK_SECONDS = 120.0
STDOUT, STDERR = 1, 2
INTERVAL_PREFIX = b'{"schema":%d,"kind":"interval"' % SCHEMA

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class HelperRun:
    image: str
    targets: tuple[Target, ...]
    seconds: float
    privileged: bool = False
    interval: float | None = None  # the helper prints an `interval` document this often
    engine: str = "auto"  # auto, bpf or perf
    latency: bool = False


def helper_command(run: HelperRun) -> list[str]:
    command = []
    for t in run.targets:
        command += ["--pid", str(t.pid)]
    command += ["--duration", repr(run.seconds), "--engine", run.engine]
    if run.interval is not None:
        command += ["--interval", repr(run.interval)]
    if run.latency:
        command.append("--latency")
    return [*command, "--stop-on-stdin"]


def container_config(run: HelperRun, now: float) -> dict[str, Any]:
    """The create arguments: host PID and cgroup namespaces, read-only cgroupfs, tracefs,
    no network, CAP_SYS_ADMIN only (perf_event_open system-wide; mount of tracefs where the
    host has none mounted), read-only root, no new privileges."""
    from docker.types import LogConfig, Mount

    config: dict[str, Any] = {
        "image": run.image,
        "command": helper_command(run),
        "name": f"docker-spy-{run.targets[0].id[:12]}-{secrets.token_hex(3)}",
        "labels": {LABEL_ROLE: HELPER_ROLE, LABEL_VERSION: __version__,
                   LABEL_TARGET: ",".join(t.id for t in run.targets),
                   LABEL_EXPIRES: str(int(now + run.seconds + EXPIRY_SLACK_SECONDS))},
        "pid_mode": "host",
        "cgroupns": "host",
        # With userns-remap on, host namespaces need the host user namespace too.
        "userns_mode": "host",
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

    def __init__(self, sock: Any, engine_answers: Callable[[], bool]) -> None:
        self.sock = sock
        self.engine_answers = engine_answers
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

    def read_document(self, deadline_s: float, on_event: Callable[[dict], None],
                      on_interval: Callable[[bytes], None]) -> bytes:
        """The helper's final document; its `interval` documents go to on_interval as they come."""
        from docker.utils.socket import frames_iter

        self.raw.settimeout(deadline_s)
        try:
            for stream, data in frames_iter(self.sock, tty=False):
                if stream == STDOUT:
                    self.stdout += data
                    while b"\n" in self.stdout:
                        line, self.stdout = self.stdout.split(b"\n", 1)
                        if not _is_interval(line):
                            return line
                        on_interval(line)
                    if len(self.stdout) > MAX_DOCUMENT_BYTES:
                        return self.stdout  # the contract rejects it, with the reason
                elif stream == STDERR:
                    self.stderr += data
                    *lines, self.stderr = self.stderr.split(b"\n")
                    for line in lines:
                        self._event(line.decode(errors="replace"), on_event)
        except TimeoutError:
            raise HelperError("the helper stopped answering", "docker spy --debug shows more") from None
        except OSError as e:
            log.debug("attach stream broke", error=str(e))  # as good as its end: see below
        if not self.engine_answers():
            raise DaemonError("the engine stopped answering during the run",
                              "is it running? `docker info` tells")
        if self.stdout.strip():
            return self.stdout  # a document without its final newline
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


def _is_interval(line: bytes) -> bool:
    # A cheap look; report.interval_from_helper validates the document itself.
    return line.startswith(INTERVAL_PREFIX)


def run(client: docker.DockerClient, spec: HelperRun, on_event: Callable[[dict], None],
        on_interval: Callable[[bytes], None]) -> tuple[bytes, KeyboardInterrupt | None]:
    """Run the helper; return its document, and the Ctrl-C (or SIGTERM) that cut the window
    short, if one did. A second one is not caught: the plugin exits at once, and the helper,
    its stdin closed, stops and removes itself."""
    import docker.errors

    now = time.time()
    remove_leftovers(client, now)
    config = container_config(spec, now)
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
        session = _Session(sock, lambda: _answers(client))
        container.start()
        started = True
        deadline = spec.seconds + SLACK_SECONDS
        try:
            return session.read_document(deadline, on_event, on_interval), None
        except KeyboardInterrupt as interrupt:
            # First Ctrl-C: end the window now and still show what was counted.
            log.warning("interrupted: stopping the count (again to quit at once)")
            session.send(b"stop\n")
            return session.read_document(SLACK_SECONDS, on_event, on_interval), interrupt
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


def _answers(client: docker.DockerClient) -> bool:
    try:
        return bool(client.ping())
    except Exception:  # any failure to answer is the answer
        return False


def remove_leftovers(client: docker.DockerClient, now: float) -> list[str]:
    """Remove helpers that earlier runs left behind (a run killed before its helper started,
    an engine restarted mid-run): never started or exited ones, and running ones past their
    expiry. A running helper within its expiry belongs to a run still going: it stays."""
    import docker.errors

    try:
        helpers = client.containers.list(all=True, filters={"label": f"{LABEL_ROLE}={HELPER_ROLE}"})
    except docker.errors.DockerException as e:
        log.debug("could not list helpers", error=str(e))
        return []
    removed = []
    for helper in helpers:
        labels = helper.labels or {}
        try:
            expired = float(labels.get(LABEL_EXPIRES, "0")) < now
        except ValueError:
            expired = True
        if not expired and helper.status not in ("exited", "dead"):
            continue  # running, or being started by a run going on now
        log.warning("removing a helper an earlier run left behind", container=helper.name)
        _remove(helper)
        removed.append(helper.name)
    return removed


def _remove(container: Any) -> None:
    import docker.errors

    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as e:
        if e.status_code != 409:  # 409: the engine is removing it already (AutoRemove)
            log.warning("could not remove the helper", container=container.name, error=str(e))
    except docker.errors.DockerException as e:
        log.warning("could not remove the helper", container=container.name, error=str(e))
