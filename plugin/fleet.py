"""`docker spy --service NAME`: every running task of Swarm services, on whichever node it runs,
counted by one short-lived Swarm job that puts a helper on each of those nodes.

What Swarm allows decides the shape (docker/swarmkit, moby's daemon/cluster): a service has no
host PID or cgroup namespace, no --privileged and no `--network none`; so the helper is given
CAP_SYS_ADMIN alone, the host's cgroup and tracefs trees read-only, and each task's container
id, which it finds in those trees itself (helper/fleet.py). It has no attach stream either: its
documents come back through the job's task logs, split into short lines (json-file splits a
line over 16 KiB), read before the job is removed (the logs go with it). One `global-job`,
kept off the nodes that run no task by ANDed `node.id!=` constraints, restart condition
`none`. The job is removed whatever ends the run; a stale one is swept by its labels.
"""

from __future__ import annotations

import dataclasses
import json
import queue
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import __version__, logs, report
from .errors import DaemonError, HelperError, InterruptedEarly, SpyError, TargetError
from .helper_image import LABEL_ROLE, LABEL_VERSION
from .interrupts import Interrupts, in_background
from .launcher import EXPIRY_SLACK_SECONDS, LABEL_EXPIRES, SLACK_SECONDS
from .notices import say, warn

if TYPE_CHECKING:
    import docker

log = logs.get_logger(__name__)
API = (1, 41)  # jobs, CapabilityAdd: Docker 20.10
JOB_ROLE = "helper-job"
TASK_ROLE = "helper-task"
MAX_PART = 16 << 10  # characters of one log line the plugin takes
MAX_TASKS = report.MAX_TARGETS
CHECKPOINT_S = 1.0  # each helper reports what it counted so far this often: a Ctrl-C has it
# A followed service log can stop bringing a worker's lines while they are still written (moby
# issue 33183): a node silent this long, or at the end, has its log read again, from its tail.
STALE_S = 3.0
CATCH_UP_S = 5.0  # the longest a read of the log's tail may take


@dataclass(frozen=True)
class Task:
    name: str  # as `docker service ps` names it: web.1, or web.<node id> for a global service
    service: str
    node_id: str
    node: str  # the node's hostname
    container_id: str


def _api(client: docker.DockerClient) -> tuple[int, int]:
    version = str(client.api._version)  # negotiated ("auto") with the engine
    major, _, minor = version.partition(".")
    return int(major), int(minor or 0)


def tasks(client: docker.DockerClient, services: tuple[str, ...]) -> list[Task]:
    """The running tasks of the services, or one clear error: not a Swarm manager, an engine
    too old, no such service, a service with no running task."""
    import docker.errors

    try:
        if _api(client) < API:
            raise SpyError(f"the engine speaks API {client.api._version}; --service needs 1.41 "
                           "(Docker 20.10) or newer")
        swarm = client.info().get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
            raise SpyError("this engine is not a Swarm manager", "run it where `docker node ls` works")
        names = {n.id: (n.attrs.get("Description") or {}).get("Hostname") or n.id[:12]
                 for n in client.nodes.list()}
        found: list[Task] = []
        for name in services:
            try:
                service = client.services.get(name)
            except docker.errors.NotFound:
                raise TargetError(f"no such service: {name}", "docker service ls lists them") from None
            running = [t for t in service.tasks(filters={"desired-state": "running"})
                       if (t.get("Status") or {}).get("State") == "running"
                       and ((t.get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID")]
            if not running:
                raise TargetError(f"service {name} has no running task", f"docker service ps {name}")
            for t in sorted(running, key=lambda t: (t.get("Slot") or 0, t.get("NodeID", ""))):
                suffix = t["Slot"] if t.get("Slot") else t["NodeID"]
                found.append(Task(f"{service.name}.{suffix}", service.name, t["NodeID"],
                                  names.get(t["NodeID"], t["NodeID"][:12]),
                                  t["Status"]["ContainerStatus"]["ContainerID"]))
    except docker.errors.APIError as e:
        raise DaemonError(f"the engine could not list the services: {e.explanation}") from None
    except docker.errors.DockerException as e:
        raise DaemonError(f"the engine stopped answering: {e}") from None
    if len(found) > MAX_TASKS:
        raise SpyError(f"{len(found)} tasks run; docker spy counts at most {MAX_TASKS}")
    return found


@dataclass(frozen=True)
class Job:
    image: str
    tasks: tuple[Task, ...]
    seconds: float
    interval: float  # the helpers report this often, so that a run cut short has a report
    engine: str = "auto"
    latency: bool = False
    syscalls: tuple[str, ...] = ()  # count only these; (): every syscall
    by_process: bool = False  # each task's processes apart (no pid in the container: see docs)

    @property
    def nodes(self) -> dict[str, list[str]]:
        by_node: dict[str, list[str]] = {}
        for t in self.tasks:
            by_node.setdefault(t.node_id, []).append(t.container_id)
        return by_node


def job_spec(job: Job, all_nodes: list[str], now: float) -> dict[str, Any]:
    """The arguments of services.create: one helper on each node that runs a task."""
    from docker.types import Mount, RestartPolicy, ServiceMode

    args = ["--fleet", json.dumps(job.nodes, separators=(",", ":")), "--duration", repr(job.seconds),
            "--interval", repr(job.interval), "--engine", job.engine]
    labels = {LABEL_ROLE: JOB_ROLE, LABEL_VERSION: __version__,
              LABEL_EXPIRES: str(int(now + job.seconds + EXPIRY_SLACK_SECONDS))}
    return {
        "image": job.image,
        "args": [*args, *(["--latency"] if job.latency else []),
                 *(["--syscalls", ",".join(job.syscalls)] if job.syscalls else []),
                 *(["--by-process"] if job.by_process else [])],
        "name": f"docker-spy-job-{secrets.token_hex(4)}",
        "mode": ServiceMode("global-job"),
        # Constraints are ANDed: keep the job off every node that runs none of the tasks.
        "constraints": [f"node.id!={n}" for n in sorted(all_nodes) if n not in job.nodes],
        "restart_policy": RestartPolicy(condition="none"),  # a failed helper is not retried
        "cap_drop": ["ALL"],
        "cap_add": ["CAP_SYS_ADMIN"],
        "env": ["SPY_NODE={{.Node.ID}}"],
        "mounts": [Mount("/sys/fs/cgroup", "/sys/fs/cgroup", type="bind", read_only=True),
                   Mount("/sys/kernel/tracing", "/sys/kernel/tracing", type="bind", read_only=True),
                   Mount("/tmp", None, type="tmpfs")],
        "read_only": True,
        "labels": labels,
        "container_labels": {LABEL_ROLE: TASK_ROLE, LABEL_VERSION: __version__},
        "log_driver": "json-file",  # task logs are served only for json-file, local, journald
    }


@dataclass
class Parts:
    """The helpers' documents, joined from their log lines (helper/fleet.py log_lines):
    by node, the latest whole document."""

    expected: set[str]
    pending: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    latest: dict[str, bytes] = field(default_factory=dict)
    final: set[str] = field(default_factory=set)
    events: list[tuple[str, dict]] = field(default_factory=list)
    heard: dict[str, float] = field(default_factory=dict)  # node -> when its last line came
    serials: dict[str, int] = field(default_factory=dict)  # node -> its latest document's serial
    longest: int = 1  # the most parts one document took

    def add(self, line: str, now: float = 0.0) -> None:
        text = line.split(" ", 1)[1] if line.startswith("com.docker.") else line  # the details
        try:
            part = json.loads(text)
        except ValueError:
            log.debug("job log", line=text[:300])
            return
        if not isinstance(part, dict):
            return
        if isinstance(part.get("event"), str):
            self.events.append((str(part.get("node", "")), part))
            if part.get("node") in self.expected:
                self.heard[str(part["node"])] = now
            return
        node, serial, seq = part.get("node"), part.get("doc"), part.get("seq")
        if part.get("kind") != "part" or node not in self.expected or not isinstance(serial, int) \
                or not isinstance(seq, int) or not isinstance(part.get("data"), str) \
                or len(part["data"]) > MAX_PART or node in self.final:
            return  # not a helper's line of this job: the contract checks what is joined
        self.heard[node] = now
        self.longest = max(self.longest, seq + 1)
        chunks = self.pending.setdefault((node, serial), [])
        if seq != len(chunks):
            self.pending.pop((node, serial))
            return  # a part lost or out of order: wait for the next whole document
        chunks.append(part["data"])
        if part.get("last") is True:
            whole = "".join(self.pending.pop((node, serial))).encode()
            try:
                final = len(whole) <= report.MAX_DOCUMENT_BYTES and json.loads(whole).get("final") is True
            except (ValueError, AttributeError):
                final = False  # the contract says what is wrong with it, once it is read
            self.latest[node] = whole
            self.serials[node] = serial
            if final:
                self.final.add(node)


    def stale(self, now: float, since: float) -> set[str]:
        """The nodes still to report whose last line (or the start, since) is STALE_S old."""
        return {n for n in self.expected - self.final if now - self.heard.get(n, since) >= STALE_S}

    def catch_up(self, lines: Iterator[str], nodes: set[str], now: float) -> set[str]:
        """Read lines of the log again for these nodes: each one's newest whole document there
        replaces an older one followed so far. The nodes it found a newer document of; each
        node asked about counts as heard now (it is not asked about again for STALE_S)."""
        again = Parts(nodes - self.final)
        for line in lines:
            again.add(line, now)
        newer = {n for n in again.latest if again.serials[n] > self.serials.get(n, -1)}
        for node in newer:
            self.latest[node], self.serials[node] = again.latest[node], again.serials[node]
            if node in again.final:
                self.final.add(node)
            self.pending = {(n, serial): v for (n, serial), v in self.pending.items()
                            if n != node or serial > self.serials[node]}
        for node in nodes:
            self.heard[node] = now
        return newer


def _lines(client: docker.DockerClient, service_id: str, follow: bool = True,
           tail: int | None = None) -> Iterator[str]:
    stream = client.api.service_logs(service_id, details=True, follow=follow, stdout=True, stderr=True,
                                     **({"tail": tail} if tail is not None else {}))
    pending = b""
    for chunk in stream:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.decode(errors="replace")
    if pending:
        yield pending.decode(errors="replace")


Outcome = tuple[dict[str, bytes], dict[str, str], KeyboardInterrupt | None]


def run(client: docker.DockerClient, job: Job, interrupts: Interrupts,
        on_event: Callable[[str, dict], None]) -> Outcome:
    """Run the job; return each node's latest document (its report, or its report so far),
    why each node that gave none did not, and the interrupt that ended the run, if any."""
    import docker.errors

    now = time.time()
    remove_leftover_jobs(client, now)
    try:
        all_nodes = [n.id for n in client.nodes.list()]
        with interrupts.deferred():  # a Ctrl-C comes once the job can be removed
            service = client.services.create(**job_spec(job, all_nodes, now))
    except docker.errors.APIError as e:
        raise HelperError(f"the engine refused the helper job: {e.explanation}") from None
    except docker.errors.DockerException as e:
        raise DaemonError(f"the engine stopped answering: {e}") from None
    parts = Parts(set(job.nodes))
    lines: queue.Queue[str | None] = queue.Queue()

    def follow() -> None:
        try:
            for line in _lines(client, service.id):
                lines.put(line)
        except Exception as e:  # the job was removed, or the engine went away: the end
            log.debug("job logs ended", error=str(e))
        lines.put(None)

    def catch_up(nodes: set[str]) -> None:
        """The tail of the job's log again, for nodes the followed log left silent; a read that
        takes longer than CATCH_UP_S is left to itself (a node that does not answer)."""
        tail = len(job.nodes) * (2 * parts.longest + 4)  # two documents of each, and events
        read: list[str] = []

        def read_tail() -> None:
            try:
                read.extend(_lines(client, service.id, follow=False, tail=tail))
            except Exception as e:  # the engine's answer is the answer; none is no news
                log.debug("job logs again", error=str(e))

        reader = in_background(read_tail, "job-logs-again")
        reader.join(CATCH_UP_S)
        if not reader.is_alive():
            found = parts.catch_up(iter(read), nodes, time.monotonic())
            log.debug("job logs read again", nodes=sorted(nodes), found=sorted(found))

    interrupt = None
    try:
        in_background(follow, "job-logs")
        started = time.monotonic()
        deadline = started + job.seconds + SLACK_SECONDS
        reasons: dict[str, str] = {}
        next_look = 0.0
        while parts.final != parts.expected and time.monotonic() < deadline:
            try:
                interrupts.check()
                line = lines.get(timeout=0.2)
            except queue.Empty:
                line = ""
            except KeyboardInterrupt as first:
                if not parts.latest:
                    raise InterruptedEarly(first) from None
                interrupt = first
                say("Stopping the count: the report of what the helpers counted so far follows")
                break
            if line is None:
                break
            if line:
                parts.add(line, time.monotonic())
                while parts.events:
                    on_event(*parts.events.pop(0))
            if time.monotonic() >= next_look:  # a node that failed says so in its task's state
                if stale := parts.stale(time.monotonic(), started):
                    catch_up(stale)
                reasons = failed_nodes(service, set(parts.expected) - parts.final)
                if reasons and set(reasons) | parts.final == parts.expected:
                    break
                next_look = time.monotonic() + 1.0
        if parts.final != parts.expected:  # what the followed log may not have brought yet
            catch_up(parts.expected - parts.final)
        missing = {n: reasons.get(n, "no report before the deadline")
                   for n in parts.expected - set(parts.latest)}
        return parts.latest, missing, interrupt
    finally:
        _remove(service)


def failed_nodes(service: Any, nodes: set[str]) -> dict[str, str]:
    """Why the job's task on a node ended without a report: its state and message."""
    reasons = {}
    try:
        for t in service.tasks():
            status = t.get("Status") or {}
            if t.get("NodeID") in nodes and status.get("State") in ("failed", "rejected", "shutdown"):
                reasons[t["NodeID"]] = f"{status.get('State')}: {status.get('Err') or status.get('Message')}"
    except Exception as e:  # the engine's answer is the answer; none is no news
        log.debug("job tasks", error=str(e))
    return reasons


def _remove(service: Any) -> None:
    import docker.errors

    try:
        service.remove()
    except docker.errors.NotFound:
        pass
    except docker.errors.DockerException as e:
        warn(f"could not remove the helper job {service.name} (docker service rm {service.name}): {e}")


def remove_leftover_jobs(client: docker.DockerClient, now: float) -> list[str]:
    """Remove helper jobs that earlier runs left behind (a run killed before its finally):
    past their expiry, or done."""
    import docker.errors

    try:
        jobs = client.services.list(filters={"label": f"{LABEL_ROLE}={JOB_ROLE}"})
    except docker.errors.DockerException as e:
        log.debug("could not list helper jobs", error=str(e))
        return []
    removed = []
    for job in jobs:
        labels = (job.attrs.get("Spec") or {}).get("Labels") or {}
        try:
            expired = float(labels.get(LABEL_EXPIRES, "0")) < now
        except ValueError:
            expired = True
        if expired:
            warn(f"removing a helper job an earlier run left behind: {job.name}")
            _remove(job)
            removed.append(job.name)
    return removed


def merged(job: Job, infos: tuple[report.TargetInfo, ...], docs: dict[str, bytes],
           missing: dict[str, str], interrupted: bool) -> report.Report:
    """One report of every node's: each task with its own window, the rates the sum of the
    tasks' own, the nodes that gave none named with the reason."""
    reports, why = [], dict(missing)
    by_container = {i.id: i for i in infos}
    for node, containers in job.nodes.items():
        if node not in docs:
            continue
        try:
            reports.append(report.from_helper(docs[node], targets=[by_container[c] for c in containers],
                                              requested_seconds=job.seconds, by_process=job.by_process))
        except HelperError as e:
            why[node] = e.what
    names = {t.node_id: t.node for t in job.tasks}
    if not reports:
        said = "; ".join(f"{names[n]}: {w}" for n, w in why.items())
        raise HelperError(f"no node gave a report ({said[:300]})")
    targets = tuple(dataclasses.replace(t, window=r.window) for r in reports for t in r.targets)
    windows = [r.window for r in reports]
    first = reports[0]
    costs = [r.cost for r in reports if r.cost is not None]
    return report.Report(
        targets=targets,
        window=report.Window(first.window.requested_seconds, max(w.measured_seconds for w in windows),
                             min(w.started_at for w in windows)),
        host=dataclasses.replace(first.host, cpus=sum(r.host.cpus for r in reports)),
        syscalls=report.summed([t.syscalls for t in targets]),
        partial=interrupted or bool(why) or any(r.partial for r in reports),
        stopped="interrupted" if interrupted else next((r.stopped for r in reports if r.stopped), None),
        engine=",".join(sorted({r.engine for r in reports})),
        latency=all(r.latency for r in reports),
        cost=report.Cost(sum(c.runs for c in costs), sum(c.run_time_ns for c in costs),
                         sampled(costs)) if costs else None,
        uncounted=sum(r.uncounted for r in reports),
        missing=tuple((names.get(n, n), w) for n, w in why.items()),
        only=first.only,
        by_process=job.by_process,
    )


def sampled(costs: list[report.Cost]) -> float | None:
    """How long the nodes' kernels measured run times, in all (unknown if one did not say)."""
    seconds = [c.sampled_seconds for c in costs]
    return None if None in seconds else round(sum(s for s in seconds if s is not None), 6)
