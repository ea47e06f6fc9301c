"""Run one helper container next to the targets and return its JSON document.

The helper is created with AutoRemove: once it has printed its report it still has to close
perf's events (slow, one RCU grace period per tracepoint), and the engine removes it when it
exits. The plugin never waits for that. A helper that never started is removed here.
"""

from __future__ import annotations

import json
import re
import secrets
import select
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import __version__, logs
from .errors import DaemonError, HelperError, InterruptedEarly
from .helper_image import LABEL_ROLE, LABEL_VERSION
from .interrupts import Interrupts
from .notices import say, warn
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
CREATED_GRACE_S = 60.0  # a helper still only created after this was left by a run that died
STDOUT, STDERR = 1, 2
FRAME_HEADER = struct.Struct(">BxxxL")
INTERVAL_PREFIX = b'{"schema":%d,"kind":"interval"' % SCHEMA

log = logs.get_logger(__name__)


@dataclass(frozen=True)
class HelperRun:
    image: str
    targets: tuple[Target, ...]
    seconds: float
    privileged: bool = False
    interval: float | None = None  # the helper prints an `interval` document this often
    engine: str = "auto"  # auto, bpf or perf
    latency: bool = False
    tracefs_volume: bool = False  # tracefs_by_volume() of the engine host's kernel
    syscalls: tuple[str, ...] = ()  # count only these; (): every syscall
    by_process: bool = False  # also each target's processes apart


def helper_command(run: HelperRun) -> list[str]:
    command = []
    for t in run.targets:
        command += ["--pid", str(t.pid)]
    command += ["--duration", repr(run.seconds), "--engine", run.engine]
    if run.interval is not None:
        command += ["--interval", repr(run.interval)]
    if run.latency:
        command.append("--latency")
    if run.syscalls:
        command += ["--syscalls", ",".join(run.syscalls)]
    if run.by_process:
        command.append("--by-process")
    return [*command, "--stop-on-stdin"]


# From Linux 6.0 (commit 47311db8e8f3) a new mount of tracefs leaves its mode, owner and group
# alone; before, each one reset them to the defaults, for the host's mount too.
TRACEFS_KEEPS_ITS_OPTIONS = (6, 0)


def tracefs_by_volume(kernel: str) -> bool:
    """Whether the engine should mount a tracefs for the helper, given the engine host's
    kernel release (`docker version`'s KernelVersion): from 6.0 on, where that changes nothing
    of the host's own. Before, or when the release cannot be read, the host's is bound in."""
    match = re.match(r"(\d+)\.(\d+)", kernel)
    return bool(match) and (int(match[1]), int(match[2])) >= TRACEFS_KEEPS_ITS_OPTIONS


def tracefs_mount(by_volume: bool) -> Any:
    """The kernel's tracefs at /sys/kernel/tracing. By volume: mounted by the engine itself, an
    anonymous volume of the local driver with type tracefs, removed with the helper (AutoRemove
    takes a container's anonymous volumes). Binding the host's /sys/kernel/tracing needs it
    mounted there, which Docker Desktop's VM does not do, and the helper cannot mount one
    itself where AppArmor confines it (docker-default denies every mount: Debian, Ubuntu); the
    engine mounts it whatever the host has. An anonymous volume cannot be read-only; the
    helper, which may load BPF programs, gains nothing it did not have. Else the host's own,
    bound read-only (the helper mounts one itself where the host has none and it may)."""
    from docker.types import DriverConfig, Mount

    if not by_volume:
        return Mount("/sys/kernel/tracing", "/sys/kernel/tracing", type="bind", read_only=True)
    return Mount("/sys/kernel/tracing", None, type="volume",
                 driver_config=DriverConfig("local", {"type": "tracefs", "device": "tracefs"}))


def container_config(run: HelperRun, now: float) -> dict[str, Any]:
    """The create arguments: host PID and cgroup namespaces, read-only cgroupfs, tracefs,
    no network, CAP_SYS_ADMIN only (perf_event_open and BPF system-wide), read-only root, no
    new privileges."""
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
            tracefs_mount(run.tracefs_volume),
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
    """The attach stream of one helper: stdout collects the document, stderr carries events.

    Read with its own demultiplexer (the engine's 8-byte frame headers), not the SDK's
    frames_iter: that one polls the socket with no timeout, so a helper that never answers
    would hang the plugin, and nothing could wake it for a Ctrl-C told by the docker CLI's
    socket. Here every wait is on the socket and the interrupts' wakeup pipe, with a deadline.
    """

    def __init__(self, sock: Any, engine_answers: Callable[[], bool], interrupts: Interrupts) -> None:
        self.sock = sock
        self.engine_answers = engine_answers
        self.interrupts = interrupts
        self.raw: socket.socket = getattr(sock, "_sock", sock)
        self.buffer = b""  # read from the socket, not yet a whole frame
        self.stdout = b""
        self.stderr = b""
        self.stderr_lines: list[str] = []
        self.ended = False

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

    def _receive(self, deadline: float) -> bool:
        """More bytes into the buffer; False at the stream's end. Raises the first interrupt
        when one comes, and HelperError when the deadline passes."""
        while True:
            self.interrupts.check()
            pending = getattr(self.raw, "pending", lambda: 0)()  # TLS: already decrypted
            if not pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise HelperError("the helper stopped answering", "docker spy --debug shows more")
                ready, _, _ = select.select([self.raw, self.interrupts.wakeup_r], [], [], left)
                if self.interrupts.wakeup_r in ready:
                    self.interrupts.drain()  # a signal: check() above takes it, if it is one
                if self.raw not in ready:
                    continue
            try:
                with self.interrupts.deferred():  # what was read is kept, whatever comes
                    chunk = self.raw.recv(1 << 16)
                    self.buffer += chunk
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                log.debug("attach stream broke", error=str(e))  # as good as its end: see below
                return False
            return bool(chunk)

    def frames(self, deadline: float) -> Iterator[tuple[int, bytes]]:
        """(stream, data) frames of the multiplexed stream: a header of stream type, three
        zero bytes and a big-endian length, then that many bytes."""
        while not self.ended:
            while len(self.buffer) >= FRAME_HEADER.size:
                stream, size = FRAME_HEADER.unpack_from(self.buffer)
                if len(self.buffer) < FRAME_HEADER.size + size:
                    break
                data = self.buffer[FRAME_HEADER.size:FRAME_HEADER.size + size]
                self.buffer = self.buffer[FRAME_HEADER.size + size:]
                yield stream, data
            if not self._receive(deadline):
                self.ended = True

    def read_document(self, deadline_s: float, on_event: Callable[[dict], None],
                      on_interval: Callable[[bytes], None]) -> bytes:
        """The helper's final document; its `interval` documents go to on_interval as they come."""
        for stream, data in self.frames(time.monotonic() + deadline_s):
            if stream == STDOUT:
                # A line taken from the buffer is not lost: an interrupt now comes at the next
                # read, or, once the document is returned, after the report is shown.
                with self.interrupts.deferred(then=False):
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
        on_interval: Callable[[bytes], None],
        interrupts: Interrupts) -> tuple[bytes, KeyboardInterrupt | None]:
    """Run the helper; return its document, and the Ctrl-C (or SIGTERM) that cut the window
    short, if one did. One before counting started is InterruptedEarly: there is nothing to
    report. A second one is not caught: the plugin exits at once, and the helper, its stdin
    closed, stops and removes itself. on_event also hears {"event": "started"} once the
    engine has started the helper."""

    counting: list[bool] = []
    try:
        return _run(client, spec, on_event, on_interval, interrupts, counting)
    except KeyboardInterrupt as interrupt:
        if counting:
            raise  # a second interrupt: quit at once
        raise InterruptedEarly(interrupt) from None


def _run(client: docker.DockerClient, spec: HelperRun, on_event: Callable[[dict], None],
         on_interval: Callable[[bytes], None], interrupts: Interrupts,
         counting: list[bool]) -> tuple[bytes, KeyboardInterrupt | None]:
    import docker.errors

    now = time.time()
    remove_leftovers(client, now)
    config = container_config(spec, now)
    try:
        with interrupts.deferred():  # a Ctrl-C comes once the container can be removed
            container = client.containers.create(**config)
    except docker.errors.ImageNotFound:
        raise HelperError(f"helper image {spec.image} vanished", "run docker spy build-helper") from None
    except docker.errors.APIError as e:
        raise HelperError(f"the engine refused to create the helper: {e.explanation}") from None
    except docker.errors.DockerException as e:
        raise DaemonError(f"the engine stopped answering: {e}") from None
    started = False
    session = None
    try:  # from here on, whatever fails or interrupts, a helper that never started is removed
        log.debug("helper created", container=container.name)
        sock = client.api.attach_socket(
            container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        session = _Session(sock, lambda: _answers(client), interrupts)
        container.start()
        started = True
        log.debug("helper started")

        def event(e: dict) -> None:
            if e["event"] == "counting":
                counting.append(True)
            on_event(e)

        on_event({"event": "started"})
        deadline = spec.seconds + SLACK_SECONDS
        try:
            document = session.read_document(deadline, event, on_interval)
            log.debug("report received", size=len(document))
            return document, None
        except KeyboardInterrupt as interrupt:
            session.send(b"stop\n")
            if not counting:
                raise
            # First Ctrl-C: end the window now and still show what was counted.
            say("Stopping the count: the report follows (Ctrl-C again to quit at once)")
            return session.read_document(SLACK_SECONDS, event, on_interval), interrupt
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
        never_started = helper.status == "created" and _age(helper, now) > CREATED_GRACE_S
        if not expired and not never_started and helper.status not in ("exited", "dead"):
            continue  # running, or being started by a run going on now
        warn(f"removing a helper an earlier run left behind: {helper.name}")
        _remove(helper)
        removed.append(helper.name)
    return removed


def _age(container: Any, now: float) -> float:
    """Seconds since the engine created the container (0 if it cannot tell)."""
    from datetime import datetime

    created = container.attrs.get("Created", "")
    if isinstance(created, int):  # the list endpoint's form: unix seconds
        return now - created
    try:  # the inspect endpoint's: RFC 3339 with nanoseconds, which Python reads to microseconds
        return now - datetime.fromisoformat(str(created)[:26].rstrip("Z") + "+00:00").timestamp()
    except ValueError:
        return 0.0


def _remove(container: Any) -> None:
    import docker.errors

    try:
        container.remove(force=True, v=True)  # and its tracefs volume
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as e:
        if e.status_code != 409:  # 409: the engine is removing it already (AutoRemove)
            warn(f"could not remove the helper {container.name} (docker rm -f {container.name}): {e}")
    except docker.errors.DockerException as e:
        warn(f"could not remove the helper {container.name} (docker rm -f {container.name}): {e}")
