"""The helper's JSON contract: a real recorded document, then hostile variations of it."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from plugin import report
from plugin.errors import ContractError, HelperError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "helper"
RECORDED = {engine: json.loads((FIXTURES / f"report-{engine}.json").read_text())
            for engine in ("bpf", "perf")}
INTERVALS = {engine: (FIXTURES / f"intervals-{engine}.jsonl").read_bytes().splitlines()
             for engine in ("bpf", "perf")}
PIDS = [t["pid"] for t in RECORDED["bpf"]["targets"]]
TARGETS = [report.TargetInfo("9871920086c9" + "0" * 52, "web", PIDS[0]),
           report.TargetInfo("00e58ba21440" + "1" * 52, "db", PIDS[1])]


def load(doc: Any, **overrides: Any) -> report.Report:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    args = {"targets": TARGETS, "requested_seconds": 3.0, **overrides}
    return report.from_helper(raw, **args)


@pytest.mark.parametrize("engine", ["bpf", "perf"])
def test_recorded_report_loads(engine: str) -> None:
    rep = load(RECORDED[engine])
    web, db = ({s.name: s for s in t.syscalls} for t in rep.targets)
    # What the host made each target do during the window (record.sh), on either engine
    assert (web["getppid"].calls, web["getppid"].errors) == (777, 0)
    assert (web["fchdir"].calls, web["fchdir"].errors) == (777, 777)
    assert web["fork"].calls == 2 and web["exit_group"].calls == 2
    assert (db["getppid"].calls, db["fchdir"].errors) == (1500, 1500)
    assert db["fork"].calls == 0  # zero rows are filled in from the syscalls counted
    assert len(web) == len(RECORDED[engine]["syscalls_counted"])
    summed = {s.name: s for s in rep.syscalls}
    assert (summed["fchdir"].calls, summed["fchdir"].errors) == (2277, 2277)
    assert rep.syscalls[0].calls == max(s.calls for s in rep.syscalls)  # sorted by calls
    assert rep.window.measured_seconds == RECORDED[engine]["window"]["measured_seconds"]
    assert rep.host.cgroup_layout == "hybrid" and rep.engine == engine
    assert rep.partial is False and not any(t.exited for t in rep.targets)
    assert rep.total_calls == sum(t.total_calls for t in rep.targets)
    assert [t.target.name for t in rep.targets] == ["web", "db"]


def test_bpf_report_carries_errnos_times_and_cost() -> None:
    rep = load(RECORDED["bpf"])
    web = {s.name: s for s in rep.targets[0].syscalls}
    assert rep.latency is True and rep.host.engine_version.startswith("libbpf ")
    assert web["fchdir"].errnos == (("EBADF", 777),)
    assert web["access"].errnos == (("ENOENT", web["access"].errors),)  # the workload's poll
    assert web["getppid"].errnos is None  # no failures, no errnos
    # The workload's 5 ms sleeps, as recorded: 576 of them, 2.978 s in all, the longest 10.1 ms.
    sleep = web["clock_nanosleep"]
    assert (sleep.calls, sleep.errors, sleep.time_ns, sleep.max_ns) == (576, 0, 2_978_289_515, 10_106_467)
    assert web["exit_group"].time_ns is None  # it never returns: no time
    summed = {s.name: s for s in rep.syscalls}
    assert summed["fchdir"].errnos == (("EBADF", 2277),)
    # Both targets' times add up; the longest call is the longer of the two (db's 10,360,138 ns).
    assert (summed["clock_nanosleep"].time_ns, summed["clock_nanosleep"].max_ns) == (
        2_978_289_515 + 2_978_310_951, 10_360_138)
    assert (summed["fchdir"].time_ns, summed["fchdir"].max_ns) == (587_554 + 876_956, 21_490)
    assert rep.cost == report.Cost(RECORDED["bpf"]["cost"]["runs"], RECORDED["bpf"]["cost"]["run_time_ns"])
    assert rep.cost == report.Cost(18_661, 14_421_783)
    assert rep.cost.share(3.0, 2) == 14_421_783 / 6e9  # of 2 CPUs' 3 s
    assert rep.cost.share(0.0, 2) == rep.cost.share(3.0, 0) == 0.0


def test_perf_report_has_no_errnos_nor_times() -> None:
    rep = load(RECORDED["perf"])
    assert rep.latency is False and rep.cost is None and rep.host.engine_version.startswith("perf ")
    assert all(s.errnos is None and s.time_ns is None for t in rep.targets for s in t.syscalls)


def test_document_hides_zero_rows_and_carries_the_facts() -> None:
    doc = report.to_document(load(RECORDED["bpf"]))
    assert doc["schema"] == report.SCHEMA == 4 and doc["kind"] == "report"
    assert doc["engine"] == "bpf" and doc["latency"] is True
    assert [r["name"] for r in doc["syscalls"]][:2] == ["fchdir", "getppid"]
    assert all(r["calls"] or r["errors"] for r in doc["syscalls"])
    assert [t["name"] for t in doc["targets"]] == ["web", "db"]
    assert doc["window"]["requested_seconds"] == 3.0
    assert doc["total"]["calls"] == sum(t["total"]["calls"] for t in doc["targets"])
    fchdir = next(r for r in doc["syscalls"] if r["name"] == "fchdir")
    assert fchdir["errnos"] == {"EBADF": 2277}
    # web's 587,554 ns and db's 876,956 ns over 2,277 calls; db's longest call
    assert (fchdir["time_ns"], fchdir["max_ns"], fchdir["avg_ns"]) == (1_464_510, 21_490, 643)
    assert fchdir["calls_per_second"] == 759.0  # 2,277 in the recorded 3.0 s
    assert doc["cost"]["runs"] == RECORDED["bpf"]["cost"]["runs"]
    assert doc["cost"]["cpu_share"] == 0.002404  # 14,421,783 ns of 2 CPUs' 3.0 s, to 6 places
    full = report.to_document(load(RECORDED["bpf"]), include_zero=True)
    assert len(full["syscalls"]) == len(RECORDED["bpf"]["syscalls_counted"])
    perf = report.to_document(load(RECORDED["perf"]))
    assert "cost" not in perf and all("errnos" not in r and "time_ns" not in r for r in perf["syscalls"])


@pytest.mark.parametrize("engine", ["bpf", "perf"])
def test_recorded_intervals_load_and_add_up_to_the_report(engine: str) -> None:
    pids = [t["pid"] for t in RECORDED[engine]["targets"]]
    assert pids == PIDS  # both recordings counted the same two containers
    previous, totals = 0.0, [0, 0]
    for raw in INTERVALS[engine]:
        interval = report.interval_from_helper(raw, pids=pids, previous=previous)
        previous = interval.seconds
        for i, rows in enumerate(interval.targets):
            totals[i] += sum(s.calls for s in rows)
    assert [1, 2, 3] == [report.interval_from_helper(r, pids=pids, previous=0).index
                         for r in INTERVALS[engine]]
    rep = load(RECORDED[engine])
    assert totals == [t.total_calls for t in rep.targets]
    assert previous == rep.window.measured_seconds


def test_intervals_are_checked_too() -> None:
    with pytest.raises(ContractError, match="another process"):
        report.interval_from_helper(INTERVALS["bpf"][0], pids=[PIDS[1], PIDS[0]], previous=0)
    with pytest.raises(ContractError, match="back in time"):
        report.interval_from_helper(INTERVALS["bpf"][0], pids=PIDS, previous=100.0)
    with pytest.raises(ContractError, match="a report was expected"):
        load(INTERVALS["bpf"][0])


def test_recorded_error_document_becomes_a_helper_error() -> None:
    raw = (FIXTURES / "error-target-gone.json").read_bytes()
    with pytest.raises(HelperError, match=r"the helper failed \(target\): process 999999 is gone"):
        load(raw)


def _set(path: str, value: Any) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if value is KeyError:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return change


HOSTILE = [
    ("schema", _set("schema", 1), "schema 1"),
    ("schema missing", _set("schema", KeyError), "schema None"),
    ("kind", _set("kind", "verdict"), "kind is not"),
    ("negative count", _set("targets.0.syscalls.0.calls", -1), "out of range"),
    ("huge count", _set("targets.0.syscalls.0.calls", 1 << 70), "out of range"),
    ("float count", _set("targets.0.syscalls.0.calls", 1.5), "wrong type"),
    ("bool count", _set("targets.1.syscalls.0.errors", True), "wrong type"),
    ("string count", _set("targets.0.syscalls.0.calls", "7"), "wrong type"),
    ("bad name", _set("targets.0.syscalls.0.name", "\x1b[31mopenat"), "not a syscall"),
    ("long name", _set("targets.0.syscalls.0.name", "a" * 65), "not a syscall"),
    ("not counted", _set("targets.0.syscalls.0.name", "made_up"), "not a syscall that was counted"),
    ("bad counted list", lambda d: d["syscalls_counted"].append("Bad Name"), "syscalls_counted"),
    ("engine unknown", _set("engine", "dtrace"), "engine is not"),
    ("engine missing", _set("engine", KeyError), "engine is missing"),
    ("latency not bool", _set("latency", 1), "wrong type"),
    ("errnos do not add up", _set("targets.0.syscalls.4.errnos", {"EBADF": 776}), "do not add up"),
    ("errno name", _set("targets.0.syscalls.4.errnos", {"ebadf": 777}), "errno names"),
    ("errno count", _set("targets.0.syscalls.4.errnos", {"EBADF": -777}), "out of range"),
    ("errnos not a map", _set("targets.0.syscalls.4.errnos", [["EBADF", 777]]), "wrong type"),
    ("max above time", _set("targets.0.syscalls.4.max_ns", 1 << 62), "longer than"),
    ("time without max", _set("targets.0.syscalls.4.max_ns", KeyError), "max_ns is missing"),
    ("time without latency", _set("latency", False), "latency was not measured"),
    ("cost not counted", _set("cost.runs", -1), "out of range"),
    ("cost from perf", _set("engine", "perf"), "only the BPF engine"),
    ("duplicate", lambda d: d["targets"][0]["syscalls"].append(dict(d["targets"][0]["syscalls"][0])),
     "twice"),
    ("too many", lambda d: d["targets"][0]["syscalls"].extend(
        {"name": f"s{i}", "calls": 0, "errors": 0} for i in range(3000)), "too many"),
    ("other pid", _set("targets.0.pid", PIDS[0] + 1), "another process"),
    ("a target less", lambda d: d["targets"].pop(), "not about the containers"),
    ("exited not bool", _set("targets.0.exited", 1), "wrong type"),
    ("other window", _set("window.requested_seconds", 30.0), "another window"),
    ("long window", _set("window.measured_seconds", 60.0), "longer than"),
    ("nan window", _set("window.measured_seconds", float("nan")), "out of range"),
    # valid JSON, and float() of it raises OverflowError: the range is checked first
    ("400-digit window", _set("window.measured_seconds", 10 ** 400), "out of range"),
    ("control chars", _set("host.kernel", "6.1\x07"), "printable"),
    ("partial missing", _set("partial", KeyError), "partial is missing"),
    ("partial not bool", _set("partial", "no"), "wrong type"),
    ("syscalls not list", _set("targets.0.syscalls", {}), "wrong type"),
    ("row not object", _set("targets.0.syscalls.0", 7), "missing"),
    ("unknown stop reason", _set("stopped", "bored"), "not a known reason"),
    ("stop reason not text", _set("stopped", 1), "not a known reason"),
]


@pytest.mark.parametrize("what, change, words", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_documents_are_rejected(what: str, change: Callable[[dict], None],
                                        words: str) -> None:
    doc = copy.deepcopy(RECORDED["bpf"])
    assert doc["targets"][0]["syscalls"][4]["name"] == "fchdir"  # the rows the table names
    change(doc)
    with pytest.raises(ContractError, match=words):
        load(doc)


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1,2]", b'"x"', b"{" * 100000, b"[" * 100000,
                                 b"1" * (report.MAX_DOCUMENT_BYTES + 1)])
def test_non_documents_are_rejected(raw: bytes) -> None:
    with pytest.raises(ContractError):
        load(raw)


def test_a_report_where_an_interval_was_expected_is_refused() -> None:
    with pytest.raises(ContractError, match="an interval was expected"):
        report.interval_from_helper(json.dumps(RECORDED["perf"]).encode(), pids=PIDS, previous=0)
