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
RECORDED = json.loads((FIXTURES / "report.json").read_text())
PID = RECORDED["target"]["pid"]


def load(doc: Any, **overrides: Any) -> report.Report:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    args = {"target_id": "17e0b4d4db5c" + "0" * 52, "target_name": "web", "pid": PID,
            "requested_seconds": 2.0, **overrides}
    return report.from_helper(raw, **args)


def test_recorded_report_loads() -> None:
    rep = load(RECORDED)
    rows = {s.name: s for s in rep.syscalls}
    assert rows["getppid"] == report.SyscallCount("getppid", 777, 0)
    assert rows["fchdir"] == report.SyscallCount("fchdir", 777, 777)
    assert rep.syscalls[0].calls == max(s.calls for s in rep.syscalls)  # sorted by calls
    assert rep.window.measured_seconds == pytest.approx(2.002160605)
    assert rep.host.cgroup_layout == "hybrid" and rep.host.perf == "6.12.117"
    assert rep.partial is False
    assert rep.total_calls == sum(s["calls"] for s in RECORDED["syscalls"])


def test_document_hides_zero_rows_and_carries_the_facts() -> None:
    doc = report.to_document(load(RECORDED))
    assert doc["schema"] == report.SCHEMA
    assert [r["name"] for r in doc["syscalls"]][:2] == ["fchdir", "getppid"]
    assert all(r["calls"] or r["errors"] for r in doc["syscalls"])
    assert doc["target"]["name"] == "web" and doc["window"]["requested_seconds"] == 2.0
    assert doc["total"] == {"calls": 2317, "errors": 1155}
    full = report.to_document(load(RECORDED), include_zero=True)
    assert len(full["syscalls"]) == len(RECORDED["syscalls"])


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
    ("schema", _set("schema", 2), "schema 2"),
    ("schema missing", _set("schema", KeyError), "schema None"),
    ("negative count", _set("syscalls.0.calls", -1), "out of range"),
    ("huge count", _set("syscalls.0.calls", 1 << 70), "out of range"),
    ("float count", _set("syscalls.0.calls", 1.5), "wrong type"),
    ("bool count", _set("syscalls.0.errors", True), "wrong type"),
    ("string count", _set("syscalls.0.calls", "7"), "wrong type"),
    ("bad name", _set("syscalls.0.name", "\x1b[31mopenat"), "not a syscall name"),
    ("long name", _set("syscalls.0.name", "a" * 65), "not a syscall name"),
    ("duplicate", lambda d: d["syscalls"].append(dict(d["syscalls"][0])), "twice"),
    ("too many", lambda d: d["syscalls"].extend(
        {"name": f"s{i}", "calls": 0, "errors": 0} for i in range(3000)), "too many"),
    ("other pid", _set("target.pid", PID + 1), "another process"),
    ("other window", _set("window.requested_seconds", 30.0), "another window"),
    ("long window", _set("window.measured_seconds", 60.0), "longer than"),
    ("nan window", _set("window.measured_seconds", float("nan")), "out of range"),
    ("control chars", _set("host.kernel", "6.1\x07"), "printable"),
    ("partial missing", _set("partial", KeyError), "partial is missing"),
    ("partial not bool", _set("partial", "no"), "wrong type"),
    ("syscalls not list", _set("syscalls", {}), "wrong type"),
    ("row not object", _set("syscalls.0", 7), "missing"),
    ("unknown stop reason", _set("stopped", "bored"), "not a known reason"),
    ("stop reason not text", _set("stopped", 1), "not a known reason"),
]


@pytest.mark.parametrize("what, change, words", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_documents_are_rejected(what: str, change: Callable[[dict], None],
                                        words: str) -> None:
    doc = copy.deepcopy(RECORDED)
    change(doc)
    with pytest.raises(ContractError, match=words):
        load(doc)


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1,2]", b'"x"', b"{" * 100000,
                                 b"1" * (report.MAX_DOCUMENT_BYTES + 1)])
def test_non_documents_are_rejected(raw: bytes) -> None:
    with pytest.raises(ContractError):
        load(raw)
