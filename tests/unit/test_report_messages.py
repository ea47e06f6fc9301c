"""What the user reads when the helper's document is refused: one line naming the field and what
is wrong with it, and the hint. Each case changes one thing of the recorded BPF engine's report
or interval (tests/fixtures/helper); the limits are tried at and one past them."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from plugin import report
from plugin.errors import ContractError, HelperError

from .test_report import INTERVALS, PIDS, RECORDED, TARGETS

HINT = "is --helper-image a docker spy helper of this version?"


def at(doc: Any, path: str) -> tuple[Any, str | int]:
    *parents, last = path.split(".")
    for p in parents:
        doc = doc[int(p)] if isinstance(doc, list) else doc[p]
    return doc, int(last) if isinstance(doc, list) else last


def delete(path: str) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        node, key = at(doc, path)
        del node[key]
    return change


def put(path: str, value: Any) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        node, key = at(doc, path)
        node[key] = value
    return change


def both(*changes: Callable[[dict], None]) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        for c in changes:
            c(doc)
    return change


def refusal(raw: bytes, load: Callable[[bytes], Any]) -> str:
    with pytest.raises(ContractError) as info:
        load(raw)
    assert info.value.hint == HINT
    return info.value.what


def from_helper(raw: bytes, targets: list[report.TargetInfo] = TARGETS) -> report.Report:
    return report.from_helper(raw, targets=targets, requested_seconds=3.0)


def changed(change: Callable[[dict], None], doc: dict = RECORDED["bpf"]) -> bytes:
    doc = copy.deepcopy(doc)
    change(doc)
    return json.dumps(doc).encode()


def untimed(doc: dict) -> None:
    for target in doc["targets"]:
        for row in target["syscalls"]:
            row.pop("time_ns", None)
            row.pop("max_ns", None)


F = "targets.0.syscalls.4"  # web's fchdir row: 777 calls, 777 EBADF, timed
REPORT_REFUSALS = [
    (delete("engine"), "report.engine is missing"),
    (put("engine", 1), "report.engine has the wrong type"),
    (put("engine", "dtrace"), "engine is not bpf or perf"),
    (delete("latency"), "report.latency is missing"),
    (delete("window"), "report.window is missing"),
    (delete("window.requested_seconds"), "window.requested_seconds is missing"),
    (delete("window.measured_seconds"), "window.measured_seconds is missing"),
    (put("window.measured_seconds", -0.5), "window.measured_seconds is out of range"),
    (delete("window.started_at"), "window.started_at is missing"),
    (put("window.started_at", "\x07"), "window.started_at is not short printable text"),
    (put("window.requested_seconds", 30.0), "it is about another window"),
    (put("window.measured_seconds", 3.0 * 1.05 + 1.0 + 1e-9), "its window is longer than the one asked for"),
    (delete("host"), "report.host is missing"),
    *[(delete(f"host.{key}"), f"host.{key} is missing")
      for key in ("kernel", "arch", "cpus", "cgroup_version", "cgroup_layout", "engine_version")],
    (delete("syscalls_counted"), "report.syscalls_counted is missing"),
    (lambda d: d["syscalls_counted"].append("Bad"), "syscalls_counted is not a list of syscall names"),
    (lambda d: d["syscalls_counted"].extend(f"s{i}" for i in range(report.MAX_SYSCALLS)),
     "syscalls_counted is not a list of syscall names"),
    (delete("targets"), "report.targets is missing"),
    (put("targets", {}), "report.targets has the wrong type"),
    (lambda d: d["targets"].pop(), "it is not about the containers asked for"),
    (delete("targets.0.pid"), "targets[0].pid is missing"),
    (put("targets.1.pid", PIDS[1] + 1), "it is about another process"),
    (delete("targets.0.syscalls"), "targets[0].syscalls is missing"),
    (delete(f"{F}.name"), "targets[0].syscalls[4].name is missing"),
    (put(f"{F}.name", "Fchdir"), "targets[0].syscalls[4].name is not a syscall that was counted"),
    (delete(f"{F}.calls"), "fchdir.calls is missing"),
    (delete(f"{F}.errors"), "fchdir.errors is missing"),
    (put(f"{F}.errnos", []), "fchdir.errnos has the wrong type"),
    (put(f"{F}.errnos", {"EBADF": "777"}), "fchdir.errnos.EBADF has the wrong type"),
    (put(f"{F}.errnos", {"ebadf": 777}), "fchdir.errnos is not a map of errno names"),
    (put(f"{F}.errnos", {"EBADF": 777, **{f"E{i}": 0 for i in range(report.MAX_ERRNOS)}}),
     "fchdir.errnos is not a map of errno names"),
    (put(f"{F}.errnos", {"EBADF": 776}), "fchdir.errnos do not add up to its errors"),
    (delete(f"{F}.max_ns"), "fchdir.max_ns is missing"),
    (put(f"{F}.time_ns", "1"), "fchdir.time_ns has the wrong type"),
    (put(f"{F}.max_ns", 1 << 40), "fchdir.max_ns is longer than its time_ns"),
    (put("latency", False), "access has times, but latency was not measured"),  # the first timed row
    (lambda d: d["targets"][0]["syscalls"].append(dict(d["targets"][0]["syscalls"][4])),
     "targets[0] lists a syscall twice"),
    (lambda d: d["targets"][1]["syscalls"].extend({"name": "read", "calls": 0, "errors": 0}
                                                  for _ in range(report.MAX_SYSCALLS)),
     "targets[1] lists too many syscalls"),
    (delete("targets.0.cgroup"), "targets[0].cgroup is missing"),
    (delete("targets.1.exited"), "targets[1].exited is missing"),
    (delete("partial"), "report.partial is missing"),
    (put("stopped", "bored"), "stopped is not a known reason"),
    (put("cost", []), "report.cost has the wrong type"),
    (delete("cost.runs"), "cost.runs is missing"),
    (delete("cost.run_time_ns"), "cost.run_time_ns is missing"),
    (both(put("engine", "perf"), put("latency", False), untimed), "only the BPF engine measures its cost"),
    (put("schema", 2), "schema 2, this plugin reads schema 4"),
    (put("kind", "verdict"), "kind is not report, interval or error"),
    (put("kind", "interval"), "a report was expected"),
    (put("kind", "error"), "report.error is missing"),
    (both(put("kind", "error"), put("error", {"message": "x"})), "error.code is missing"),
    (both(put("kind", "error"), put("error", {"code": "x"})), "error.message is missing"),
    (both(put("kind", "error"), put("error", {"code": "x\x1b", "message": "y"})),
     "error.code is not short printable text"),
]


@pytest.mark.parametrize("change, message", REPORT_REFUSALS, ids=[m for _, m in REPORT_REFUSALS])
def test_a_refused_report_says_which_field_and_why(change: Callable[[dict], None], message: str) -> None:
    assert refusal(changed(change), from_helper) == f"the helper's report is invalid: {message}"


@pytest.mark.parametrize("raw, message", [
    (b"not json", "it is not JSON"), (b"[]", "it is not a JSON object"),
    (b" " * (report.MAX_DOCUMENT_BYTES + 1), f"it is larger than {report.MAX_DOCUMENT_BYTES} bytes"),
])
def test_what_is_no_document_says_so(raw: bytes, message: str) -> None:
    assert refusal(raw, from_helper) == f"the helper's report is invalid: {message}"


def test_the_limits_themselves_are_accepted() -> None:
    # As many counted syscalls and rows as MAX_SYSCALLS, errnos as MAX_ERRNOS, a window 5% + 1 s
    # longer than asked, a document of MAX_DOCUMENT_BYTES.
    doc = copy.deepcopy(RECORDED["bpf"])
    names = [f"s{i}" for i in range(report.MAX_SYSCALLS - len(doc["syscalls_counted"]))]
    doc["syscalls_counted"] += names
    doc["targets"][1]["syscalls"] += [{"name": n, "calls": 0, "errors": 0} for n in names]
    doc["targets"][1]["syscalls"] += [{"name": n, "calls": 0, "errors": 0} for n in doc["syscalls_counted"]
                                      if n not in {r["name"] for r in doc["targets"][1]["syscalls"]}]
    zeros = {f"E{i}": 0 for i in range(report.MAX_ERRNOS - 1)}
    doc["targets"][0]["syscalls"][4]["errnos"] = {"EBADF": 777, **zeros}
    doc["window"]["measured_seconds"] = 3.0 * 1.05 + 1.0
    raw = json.dumps(doc).encode()
    rep = from_helper(raw + b" " * (report.MAX_DOCUMENT_BYTES - len(raw)))
    assert len(rep.targets[1].syscalls) == report.MAX_SYSCALLS
    assert dict(rep.targets[0].syscalls[0].errnos or ()) == {"EBADF": 777}  # fchdir; the zeros are dropped
    assert rep.window.measured_seconds == 3.0 * 1.05 + 1.0


def test_as_many_targets_as_max_targets_and_no_more() -> None:
    doc = copy.deepcopy(RECORDED["perf"])
    many = [dict(doc["targets"][0], pid=1000 + i) for i in range(report.MAX_TARGETS + 1)]
    infos = [report.TargetInfo(f"{i:064x}", f"t{i}", 1000 + i) for i in range(report.MAX_TARGETS + 1)]
    rep = from_helper(json.dumps(dict(doc, targets=many[:-1])).encode(), infos[:-1])
    assert len(rep.targets) == report.MAX_TARGETS
    assert refusal(json.dumps(dict(doc, targets=many)).encode(), lambda raw: from_helper(raw, infos)) == (
        "the helper's report is invalid: it is not about the containers asked for")


@pytest.mark.parametrize("requested, accepted", [(3.0 + 0.999e-3, True), (3.0 + 1.1e-3, False),
                                                 (3.0 - 0.999e-3, True)])
def test_the_window_asked_for_is_the_one_reported_to_a_millisecond(requested: float, accepted: bool) -> None:
    raw = changed(put("window.requested_seconds", requested))
    if accepted:
        assert from_helper(raw).window.requested_seconds == requested
    else:
        assert refusal(raw, from_helper) == "the helper's report is invalid: it is about another window"


def test_a_long_window_is_compared_relatively() -> None:
    # A day asked for: the helper's float may differ in the 7th digit, not in the 6th.
    day = 86400.0
    doc = copy.deepcopy(RECORDED["perf"])
    doc["window"].update(requested_seconds=day * (1 + 0.9e-6), measured_seconds=day)
    rep = report.from_helper(json.dumps(doc).encode(), targets=TARGETS, requested_seconds=day)
    assert rep.window.measured_seconds == day
    doc["window"]["requested_seconds"] = day * (1 + 2e-6)
    with pytest.raises(ContractError, match="another window"):
        report.from_helper(json.dumps(doc).encode(), targets=TARGETS, requested_seconds=day)


def test_a_window_of_no_length_is_a_window() -> None:
    assert from_helper(changed(put("window.measured_seconds", 0))).window.measured_seconds == 0.0


INTERVAL_REFUSALS = [
    (delete("seconds"), "interval.seconds is missing"),
    (put("seconds", 0.5), "its intervals go back in time"),
    (delete("index"), "interval.index is missing"),
    (delete("targets.0.syscalls"), "targets[0].syscalls is missing"),
    (put("targets.0.syscalls.0.name", 7), "targets[0].syscalls[0].name has the wrong type"),
    (put("targets.1.syscalls.0", {"name": "access", "calls": 1, "errors": 0, "time_ns": 5, "max_ns": 5}),
     "access has times, but latency was not measured"),
    (put("kind", "report"), "an interval was expected"),
]


@pytest.mark.parametrize("change, message", INTERVAL_REFUSALS, ids=[m for _, m in INTERVAL_REFUSALS])
def test_a_refused_interval_says_which_field_and_why(change: Callable[[dict], None], message: str) -> None:
    raw = changed(change, json.loads(INTERVALS["bpf"][1]))
    got = refusal(raw, lambda r: report.interval_from_helper(r, pids=PIDS, previous=1.0))
    assert got == f"the helper's report is invalid: {message}"


def test_an_interval_may_end_where_the_last_one_did() -> None:
    assert report.interval_from_helper(INTERVALS["bpf"][1], pids=PIDS, previous=2.0).seconds == 2.0


def test_the_helpers_own_error_is_its_code_and_message() -> None:
    raw = changed(both(put("kind", "error"), put("error", {"code": "cgroup", "message": "no cgroup2"})))
    with pytest.raises(HelperError) as info:
        from_helper(raw)
    assert not isinstance(info.value, ContractError)
    assert info.value.line() == "docker spy: the helper failed (cgroup): no cgroup2"


def test_the_documents_cost_and_rows_as_printed() -> None:
    doc = report.to_document(from_helper(json.dumps(RECORDED["bpf"]).encode()))
    assert doc["cost"] == {"runs": 18_661, "run_time_ns": 14_421_783, "cpu_share": 0.002404}
    exit_group = next(r for r in doc["syscalls"] if r["name"] == "exit_group")
    assert exit_group == {"name": "exit_group", "calls": 2, "errors": 0, "calls_per_second": 0.667}  # web's


def test_a_report_of_no_length_has_no_rates_and_a_row_never_called_no_average() -> None:
    rep = from_helper(changed(put("window.measured_seconds", 0)))
    doc = report.to_document(rep, include_zero=True)
    assert {r["calls_per_second"] for r in doc["syscalls"]} == {None}
    zero = report.SyscallCount("read", 0, 3, (("EINTR", 3),), 120, 70)  # failed before it was counted
    assert report._row(zero, 0.0) == {"name": "read", "calls": 0, "errors": 3, "calls_per_second": 0.0,
                                      "errnos": {"EINTR": 3}, "time_ns": 120, "max_ns": 70, "avg_ns": None}


def test_targets_add_up_errnos_times_and_the_longest_call() -> None:
    # web made fchdir fail with EBADF only; db with EBADF and ENOENT; read only db timed.
    s = report.SyscallCount
    web = [s("fchdir", 10, 10, (("EBADF", 10),), 500, 90), s("read", 4, 0, None, None, None),
           s("getppid", 3, 0, None, 30, 20)]
    db = [s("fchdir", 5, 5, (("ENOENT", 3), ("EBADF", 2)), 100, 95), s("read", 2, 0, None, 70, 60),
          s("getppid", 0, 0, None, None, None)]
    got = {row.name: row for row in report.summed([web, db])}
    assert got["fchdir"] == s("fchdir", 15, 15, (("EBADF", 12), ("ENOENT", 3)), 600, 95)
    assert got["read"] == s("read", 6, 0, None, 70, 60)
    assert got["getppid"] == s("getppid", 3, 0, None, 30, 20)
    assert report.summed([db, web])[0] == got["fchdir"]
    only_web = [s("access", 7, 7, (("ENOENT", 7),))]
    assert report.summed([only_web, [s("access", 1, 0)]]) == (s("access", 8, 7, (("ENOENT", 7),)),)
    assert report.summed([[s("access", 1, 0)], only_web]) == (s("access", 8, 7, (("ENOENT", 7),)),)


def test_errnos_of_as_many_failures_are_in_name_order() -> None:
    assert report.errno_order({"ENOENT": 5, "EBADF": 5, "EPERM": 9, "EINTR": 0}) == (
        ("EPERM", 9), ("EBADF", 5), ("ENOENT", 5))


def test_a_sampled_cost_says_for_how_long_it_was_measured() -> None:
    rep = from_helper(changed(put("cost.sampled_seconds", 0.3)))
    assert rep.cost == report.Cost(18_661, 14_421_783, 0.3)
    assert report.to_document(rep)["cost"] == {"runs": 18_661, "run_time_ns": 14_421_783,
                                               "cpu_share": 0.002404, "sampled_seconds": 0.3}
    for bad in (-1, "0.3", None, 1e999):
        with pytest.raises(ContractError, match="cost.sampled_seconds"):
            from_helper(changed(put("cost.sampled_seconds", bad)))


def test_the_cost_is_a_share_of_every_cpu_over_the_window() -> None:
    cost = report.Cost(runs=10, run_time_ns=250_000_000)
    assert cost.share(0.5, 1) == 0.5  # a quarter of a second of half a second on one CPU
    assert cost.share(2.0, 4) == 250_000_000 / 8e9
    assert cost.share(0.0, 1) == cost.share(0.5, 0) == 0.0  # no window, no CPUs: no share
