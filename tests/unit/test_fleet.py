"""Fleet mode's parts that need no Swarm: finding a task's cgroup from its container id on the
recorded cgroup layouts, the short log lines a helper's documents travel in and their joining,
the job the plugin asks Swarm for, the merging of the nodes' reports, and the errors a Swarm
manager's answers turn into (a fake client at the SDK's object boundary)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from plugin import fleet, report
from plugin.errors import SpyError, TargetError
from plugin.helper import cgroup
from plugin.helper import fleet as node

from .test_report import RECORDED

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cgroup"
A = "a" * 64
B = "b" * 64


def tree(*directories: str):
    """listdir and isdir over a made-up tree of directories (and the files cgroupfs has)."""
    dirs = {"/"} | {d.rstrip("/") for d in directories}
    for d in list(dirs):
        parts = d.split("/")
        dirs |= {"/".join(parts[:i]) or "/" for i in range(1, len(parts))}

    def listdir(path: str) -> list[str]:
        path = path.rstrip("/") or "/"
        if path not in dirs:
            raise FileNotFoundError(path)
        below = {d[len(path):].lstrip("/").split("/")[0] for d in dirs
                 if d.startswith(path.rstrip("/") + "/") and d != path}
        return sorted(below | {"cgroup.procs", "memory.max", "tasks"})

    return listdir, lambda path: (path.rstrip("/") or "/") in dirs


def mount(point: str, fstype: str = "cgroup2", root: str = "/") -> cgroup.Mount:
    return cgroup.Mount(point, root, fstype, ())


@pytest.mark.parametrize("where", [f"/docker/{A}", f"/system.slice/docker-{A}.scope",
                                   f"/kubepods.slice/kubepods-burstable.slice/kubepods-pod1.slice/cri-containerd-{A}.scope"])
def test_a_container_is_found_by_its_id_whatever_the_driver(where: str) -> None:
    listdir, isdir = tree(f"/sys/fs/cgroup{where}", f"/sys/fs/cgroup/docker/{B}", "/sys/fs/cgroup/init.scope")
    assert node.find_container(A, mount("/sys/fs/cgroup"), listdir, isdir) == where
    assert node.find_container("c" * 64, mount("/sys/fs/cgroup"), listdir, isdir) is None


def test_a_mount_below_its_root_names_the_path_from_the_root() -> None:
    listdir, isdir = tree(f"/sys/fs/cgroup/{A}")
    assert node.find_container(A, mount("/sys/fs/cgroup", root="/docker"), listdir, isdir) == f"/docker/{A}"


def test_the_made_up_proc_cgroup_is_judged_as_a_real_one() -> None:
    # The hybrid layout recorded on the development machine: perf and BPF count the same
    # cgroup v2, found from the container id as the kernel would name it.
    mountinfo = (FIXTURES / "hybrid-cgroupfs" / "mountinfo").read_text()
    real = (FIXTURES / "hybrid-cgroupfs" / "cgroup").read_text()
    cid = real.split("0::/docker/")[1].strip()
    listdir, isdir = tree(f"/sys/fs/cgroup/unified/docker/{cid}", f"/sys/fs/cgroup/memory/docker/{cid}")
    made = node.proc_cgroup(cid, cgroup.parse_mountinfo(mountinfo), listdir, isdir)
    assert made == f"0::/docker/{cid}\n"
    assert cgroup.resolve_v2(made, mountinfo) == cgroup.resolve_v2(real, mountinfo)
    assert cgroup.resolve(made, mountinfo) == cgroup.resolve(real, mountinfo)
    with pytest.raises(cgroup.CgroupError, match="no cgroup of container"):
        node.proc_cgroup("c" * 64, cgroup.parse_mountinfo(mountinfo), listdir, isdir)


def test_the_helpers_own_id_is_read_from_its_mounts() -> None:
    line = f"1 2 0:1 /var/lib/docker/containers/{A}/hostname /etc/hostname rw - ext4 /dev/vda rw"
    assert node.own_container_id(line) == A
    assert node.own_container_id("1 2 0:1 / / rw - overlay overlay rw") is None


def test_documents_go_out_in_short_lines_and_come_back_whole() -> None:
    doc = dict(RECORDED["bpf"], node="n1", padding="x" * 20_000)  # more than two lines' worth
    sent: list[str] = []
    out = node.Output("n1", sent.append)
    out.emit(doc, final=False)
    out.emit(doc)
    assert len(sent) > 2 and all(len(line) < fleet.MAX_PART + 200 for line in sent)
    parts = fleet.Parts({"n1"})
    for line in sent:
        parts.add(f"com.docker.swarm.node.id=n1,com.docker.swarm.task.id=t {line}")
    assert json.loads(parts.latest["n1"]) == {**doc, "final": True} and parts.final == {"n1"}


def test_a_part_lost_or_of_another_job_is_not_joined() -> None:
    sent: list[str] = []
    node.Output("n1", sent.append).emit(dict(RECORDED["bpf"], node="n1"))
    parts = fleet.Parts({"n1"})
    for line in sent[1:]:  # the first part never came
        parts.add(line)
    parts.add(json.dumps({"schema": 3, "kind": "part", "node": "n9", "doc": 1, "seq": 0, "last": True,
                          "data": "{}"}))  # a node this run did not ask
    parts.add('{"event": "counting", "engine": "bpf"}')
    parts.add("not json at all")
    assert parts.latest == {} and parts.final == set()
    assert parts.events == [("", {"event": "counting", "engine": "bpf"})]


def lines_of(node_id: str, *docs: tuple[int, bool]) -> list[str]:
    """The log lines of a helper on node_id that emitted these (calls of getppid, final) documents."""
    sent: list[str] = []
    out = node.Output(node_id, sent.append)
    for calls, final in docs:
        doc = json.loads(json.dumps(RECORDED["bpf"]))
        doc["targets"][0]["syscalls"] = [{"name": "getppid", "calls": calls, "errors": 0}]
        out.emit(dict(doc, node=node_id), final=final)
    return sent


def calls_in(doc: bytes) -> int:
    return json.loads(doc)["targets"][0]["syscalls"][0]["calls"]


def test_a_node_silent_for_a_while_is_stale_until_heard_again() -> None:
    parts = fleet.Parts({"n1", "n2"})
    for line in lines_of("n1", (5, False)):
        parts.add(line, now=10.0)
    assert parts.stale(now=11.0, since=9.0) == set()  # n2 never heard, but started only 2 s ago
    assert parts.stale(now=12.0, since=9.0) == {"n2"}
    assert parts.stale(now=12.9, since=10.0) == set()
    assert parts.stale(now=13.0, since=10.0) == {"n1", "n2"}
    for line in lines_of("n2", (7, True)):
        parts.add(line, now=13.5)
    assert parts.final == {"n2"} and parts.stale(now=100.0, since=0.0) == {"n1"}  # a final node is done


def test_reading_the_log_again_takes_each_silent_nodes_newest_document() -> None:
    parts = fleet.Parts({"n1", "n2"})
    followed = lines_of("n1", (1, False), (2, False))
    for line in followed[:1]:  # the followed log stopped bringing n1's lines after its first
        parts.add(line, now=1.0)
    again = lines_of("n1", (1, False), (2, False), (3, False)) + lines_of("n2", (9, True))
    found = parts.catch_up(iter(again[1:]), {"n1", "n2"}, now=8.0)  # the tail: n1's first is cut off
    assert found == {"n1", "n2"}
    assert calls_in(parts.latest["n1"]) == 3 and calls_in(parts.latest["n2"]) == 9
    assert parts.final == {"n2"} and parts.heard == {"n1": 8.0, "n2": 8.0}
    # An older document read again never replaces a newer one followed since.
    for line in lines_of("n1", (1, False), (2, False), (3, False), (4, False))[3:]:
        parts.add(line, now=9.0)
    assert calls_in(parts.latest["n1"]) == 4
    assert parts.catch_up(iter(again), {"n1"}, now=10.0) == set()
    assert calls_in(parts.latest["n1"]) == 4 and parts.heard["n1"] == 10.0


def task(name: str, node_id: str, host: str, cid: str) -> fleet.Task:
    return fleet.Task(name, name.split(".")[0], node_id, host, cid)


def test_the_job_runs_a_helper_on_each_node_of_a_task_and_nowhere_else() -> None:
    job = fleet.Job("sha256:img", (task("web.1", "n1", "a", A), task("web.2", "n2", "b", B)), 30.0, 1.0)
    spec = fleet.job_spec(job, ["n1", "n2", "n3"], now=1000.0)
    assert spec["mode"] == {"GlobalJob": {}}  # one task on each node that passes the constraints
    assert spec["constraints"] == ["node.id!=n3"]
    assert spec["cap_drop"] == ["ALL"] and spec["cap_add"] == ["CAP_SYS_ADMIN"]
    assert spec["restart_policy"]["Condition"] == "none"
    assert spec["env"] == ["SPY_NODE={{.Node.ID}}"]
    assert json.loads(spec["args"][spec["args"].index("--fleet") + 1]) == {"n1": [A], "n2": [B]}
    assert {m["Target"]: m["ReadOnly"] for m in spec["mounts"][:2]} == {"/sys/fs/cgroup": True,
                                                                      "/sys/kernel/tracing": True}
    assert spec["read_only"] is True and spec["log_driver"] == "json-file"
    assert spec["labels"]["io.docker-spy.role"] == "helper-job"
    assert int(spec["labels"]["io.docker-spy.expires"]) == 1000 + 30 + 600


def helper_doc(pid_doc: dict, containers: list[str], node_id: str, seconds: float) -> bytes:
    doc = json.loads(json.dumps(pid_doc))
    for entry, cid in zip(doc["targets"], containers, strict=True):
        del entry["pid"]
        entry["container"] = cid
    doc["window"]["measured_seconds"] = seconds
    return json.dumps({**doc, "node": node_id, "final": True}).encode()


def test_the_nodes_reports_merge_with_each_tasks_window() -> None:
    recorded = RECORDED["bpf"]
    job = fleet.Job("img", (task("web.1", "n1", "a", A), task("web.2", "n2", "b", B)), 3.0, 1.0)
    infos = (report.TargetInfo(A, "web.1", 0, node="a"), report.TargetInfo(B, "web.2", 0, node="b"))
    one = dict(recorded, targets=recorded["targets"][:1])
    two = dict(recorded, targets=recorded["targets"][1:])
    docs = {"n1": helper_doc(one, [A], "n1", 3.0), "n2": helper_doc(two, [B], "n2", 1.5)}
    merged = fleet.merged(job, infos, docs, {}, interrupted=False)
    assert [(t.target.name, t.target.node, t.window.measured_seconds) for t in merged.targets] == [
        ("web.1", "a", 3.0), ("web.2", "b", 1.5)]
    getppid = {s.name: s for s in merged.syscalls}["getppid"]
    assert getppid.calls == 777 + 1500
    # The rate is each task's calls over its own window, added up.
    assert merged.rate([777, 1500]) == pytest.approx(777 / 3.0 + 1500 / 1.5)
    doc = report.to_document(merged)
    windows = {t["name"]: t["window"]["measured_seconds"] for t in doc["targets"]}
    assert windows == {"web.1": 3.0, "web.2": 1.5}
    assert {r["name"]: r["calls_per_second"] for r in doc["syscalls"]}["getppid"] == round(777 / 3 + 1000, 3)
    assert merged.missing == () and merged.partial is False


def test_a_node_without_a_report_is_named_and_the_report_partial() -> None:
    recorded = RECORDED["bpf"]
    job = fleet.Job("img", (task("web.1", "n1", "a", A), task("web.2", "n2", "b", B)), 3.0, 1.0)
    infos = (report.TargetInfo(A, "web.1", 0, node="a"), report.TargetInfo(B, "web.2", 0, node="b"))
    one = dict(recorded, targets=recorded["targets"][:1])
    error = json.dumps({"schema": report.SCHEMA, "kind": "error",
                        "error": {"code": "bpf", "message": "refused"}}).encode()
    merged = fleet.merged(job, infos, {"n1": helper_doc(one, [A], "n1", 3.0), "n2": error}, {}, False)
    assert merged.partial is True and merged.missing == (("b", "the helper failed (bpf): refused"),)
    assert [t.target.name for t in merged.targets] == ["web.1"]
    assert report.to_document(merged)["missing"] == [
        {"node": "b", "reason": "the helper failed (bpf): refused"}]
    with pytest.raises(SpyError, match="no node gave a report"):
        fleet.merged(job, infos, {}, {"n1": "rejected: no such image", "n2": "no report"}, False)


# --- the manager's answers, faked at the SDK's object boundary --------------------------------

@dataclass
class FakeService:
    name: str
    running: list[dict]

    def tasks(self, filters: dict | None = None) -> list[dict]:
        return self.running


@dataclass
class FakeNode:
    id: str
    attrs: dict


@dataclass
class FakeCollection:
    items: dict = field(default_factory=dict)

    def get(self, name: str):
        import docker.errors

        if name not in self.items:
            raise docker.errors.NotFound(f"service {name} not found")
        return self.items[name]

    def list(self, **kwargs):
        return list(self.items.values())


@dataclass
class FakeAPI:
    _version: str = "1.41"


@dataclass
class FakeClient:
    swarm: dict
    services: FakeCollection
    nodes: FakeCollection
    api: FakeAPI = field(default_factory=FakeAPI)

    def info(self) -> dict:
        return {"Swarm": self.swarm}


MANAGER = {"LocalNodeState": "active", "ControlAvailable": True}


def running(slot: int | None, node_id: str, cid: str) -> dict:
    return {"Slot": slot, "NodeID": node_id,
            "Status": {"State": "running", "ContainerStatus": {"ContainerID": cid}}}


def client(swarm: dict = MANAGER, **services: list[dict]) -> FakeClient:
    return FakeClient(swarm, FakeCollection({n: FakeService(n, t) for n, t in services.items()}),
                      FakeCollection({"n1": FakeNode("n1", {"Description": {"Hostname": "node-a"}})}))


def test_tasks_are_named_as_docker_service_ps_names_them() -> None:
    fake = client(web=[running(2, "n1", B), running(1, "n1", A)], agent=[running(None, "n1", "c" * 64)])
    got = fleet.tasks(fake, ("web", "agent"))
    assert [(t.name, t.node, t.container_id) for t in got] == [
        ("web.1", "node-a", A), ("web.2", "node-a", B), ("agent.n1", "node-a", "c" * 64)]


@pytest.mark.parametrize("make, services, error, words", [
    (lambda: client({"LocalNodeState": "inactive"}), ("web",), SpyError, "not a Swarm manager"),
    (lambda: client({"LocalNodeState": "active", "ControlAvailable": False}), ("web",), SpyError,
     "not a Swarm manager"),
    (lambda: client(), ("nope",), TargetError, "no such service: nope"),
    (lambda: client(web=[]), ("web",), TargetError, "service web has no running task"),
    (lambda: FakeClient(MANAGER, FakeCollection(), FakeCollection(), FakeAPI("1.40")), ("web",), SpyError,
     "needs 1.41"),
])
def test_what_a_manager_cannot_do_is_one_clear_error(make, services, error, words: str) -> None:
    with pytest.raises(error, match=words):
        fleet.tasks(make(), services)


@pytest.mark.parametrize(("spec", "ok"), [
    (json.dumps({"n1": [A, B]}), True),
    (json.dumps({"n1": [A + "\n"]}), False),  # a whole id, not one followed by a line end
    (json.dumps({"n1": [A[:12]]}), False),
    (json.dumps({"n1": [A.upper()]}), False),
    (json.dumps({"n1": []}), False),
    (json.dumps({"n2": [A]}), False),
    (json.dumps([A]), False),
])
def test_a_node_takes_only_whole_container_ids_of_its_own(spec: str, ok: bool) -> None:
    if ok:
        assert node.targets_of_node(spec, "n1") == [A, B]
    else:
        with pytest.raises(ValueError, match="names no container of node 'n1'"):
            node.targets_of_node(spec, "n1")
    with pytest.raises(ValueError, match="is not JSON"):
        node.targets_of_node(spec[:-1], "n1")
