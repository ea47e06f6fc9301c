"""What `docker spy diff` says of a file it refuses, word for word, and the limits of what it
reads, at and one past each; each case changes one thing of a recorded BPF report
(tests/fixtures/diff/bpf-before.json)."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from plugin import diff
from plugin.errors import UsageError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "diff"
BPF = json.loads((FIXTURES / "bpf-before.json").read_text())
HOW = "make one with: docker spy CONTAINER --format json > FILE"
ROW = next(i for i, r in enumerate(BPF["syscalls"]) if r["name"] == "fchdir")  # 1,000 EBADF


def changed(change: Callable[[dict], None]) -> bytes:
    doc = copy.deepcopy(BPF)
    change(doc)
    return json.dumps(doc).encode()


def refused(raw: bytes, source: str = "a.json") -> str:
    with pytest.raises(UsageError) as info:
        diff.parse(raw, source)
    return info.value.line()


def put(path: str, value: Any) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        *parents, last = path.split(".")
        for p in parents:
            doc = doc[int(p)] if isinstance(doc, list) else doc[p]
        doc[int(last) if isinstance(doc, list) else last] = value
    return change


def delete(path: str) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        *parents, last = path.split(".")
        for p in parents:
            doc = doc[int(p)] if isinstance(doc, list) else doc[p]
        del doc[int(last) if isinstance(doc, list) else last]
    return change


def targets(n: int) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        empty = dict(doc["targets"][0], total={"calls": 0, "errors": 0}, syscalls=[])
        doc["targets"] += [dict(empty, id=f"{i:064x}", name=f"t{i}") for i in range(n - 1)]
    return change


def rows(n: int) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        listed = {r["name"] for r in doc["syscalls"]}
        doc["syscalls"] += [{"name": f"s{i}", "calls": 0, "errors": 0} for i in range(n - len(listed))]
    return change


def errnos(n: int) -> Callable[[dict], None]:
    return put(f"syscalls.{ROW}.errnos", {"EBADF": 1000, **{f"E{i}": 0 for i in range(n - 1)}})


NOT_A_REPORT = [
    (delete("window"), "window is missing"),
    (delete("window.started_at"), "window.started_at is missing"),
    (put("window.started_at", "then"), "window.started_at is not a date and time"),
    (delete("host.engine_version"), "host.engine_version is missing"),
    (put("host.kernel", "6.18\x1b"), "host.kernel is not short printable text"),
    (put("host.cpus", -1), "host.cpus is out of range"),
    (put("host.cgroup_version", (1 << 20) + 1), "host.cgroup_version is out of range"),
    (delete("total"), "total is missing"),
    (delete("total.calls"), "total.calls is missing"),
    (put("total.errors", -1), "total.errors is out of range"),
    (delete("targets"), "targets is missing"),
    (targets(diff.MAX_TARGETS + 1), "targets is empty or too long"),
    (delete("targets.0.id"), "targets[0].id is missing"),
    (put("targets.0.id", "ABC"), "targets[0].id is not a container id"),
    (put("targets.0.pid", 0), "targets[0].pid is out of range"),
    (put("targets.0.pid", (1 << 32) + 1), "targets[0].pid is out of range"),
    (delete("targets.0.cgroup"), "targets[0].cgroup is missing"),
    (delete("targets.0.total"), "targets[0].total is missing"),
    (put("targets.0.total.calls", "1"), "targets[0].total.calls has the wrong type"),
    (rows(diff.MAX_SYSCALLS + 1), "syscalls lists too many rows"),
    (put(f"syscalls.{ROW}.calls", diff.MAX_COUNT + 1), f"syscalls[{ROW}].calls is out of range"),
    (put(f"syscalls.{ROW}.calls_per_second", float("inf")),
     f"syscalls[{ROW}].calls_per_second is not a rate"),
    (put(f"syscalls.{ROW}.errnos", []), f"syscalls[{ROW}].errnos has the wrong type"),
    (put(f"syscalls.{ROW}.errnos", {"ebadf": 1000}), f"syscalls[{ROW}].errnos is not a map of errno names"),
    (errnos(diff.MAX_ERRNOS + 1), f"syscalls[{ROW}].errnos is not a map of errno names"),
    (put(f"syscalls.{ROW}.errnos", {"EBADF": -1}), f"syscalls[{ROW}].errnos.EBADF is out of range"),
    (put(f"syscalls.{ROW}.errnos", {"EBADF": 999}), f"syscalls[{ROW}].errnos do not add up to its errors"),
    (put("targets.0.syscalls.0.errnos", {"E": 1}),
     "targets[0].syscalls[0].errnos is not a map of errno names"),
    (delete("partial"), "partial is missing"),
]


@pytest.mark.parametrize("change, says", NOT_A_REPORT, ids=[s for _, s in NOT_A_REPORT])
def test_a_file_that_is_not_a_report_says_what_is_wrong(change: Callable[[dict], None], says: str) -> None:
    assert refused(changed(change)) == f"docker spy: a.json is not a docker spy report: {says} ({HOW})"


@pytest.mark.parametrize("change", [
    targets(diff.MAX_TARGETS), rows(diff.MAX_SYSCALLS), errnos(diff.MAX_ERRNOS),
    put("targets.0.pid", 1), put("targets.0.pid", 1 << 32), put("host.cpus", 0), put("host.cpus", 1 << 20),
    put(f"syscalls.{ROW}.errnos", {"EBADF": 1000, "ENOENT": 0}),
    put(f"syscalls.{ROW}.calls_per_second", 1e308), put(f"syscalls.{ROW}.calls_per_second", 0),
], ids=["max targets", "max rows", "max errnos", "pid 1", "pid 2^32", "no cpus", "2^20 cpus", "errno of 0",
        "huge rate", "zero rate"])
def test_the_limits_themselves_are_read(change: Callable[[dict], None]) -> None:
    snap = diff.parse(changed(change), "a.json")
    assert snap.total == diff.Count(BPF["total"]["calls"], BPF["total"]["errors"])


def test_the_largest_count_is_read() -> None:
    def biggest(doc: dict) -> None:
        for entry in (doc, doc["targets"][0]):
            entry["total"] = {"calls": diff.MAX_COUNT, "errors": 0}
            entry["syscalls"] = [{"name": "getppid", "calls": diff.MAX_COUNT, "errors": 0}]
    assert diff.parse(changed(biggest), "a.json").total.calls == diff.MAX_COUNT


def test_the_size_limit_is_16_mib() -> None:
    assert refused(b" " * diff.MAX_BYTES) == f"docker spy: a.json is empty ({HOW})"  # read, and empty
    assert refused(b" " * (diff.MAX_BYTES + 1)) == (
        "docker spy: a.json is larger than 16 MiB, too large for a report")


def test_an_older_or_newer_schema_says_which_it_reads() -> None:
    assert refused(changed(put("schema", 5))) == (
        "docker spy: a.json is a report of schema 5; docker spy diff reads schemas 2 to 4 "
        "(make it again with this version: docker spy CONTAINER --format json)")


def test_read_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        diff.load(str(tmp_path))
    assert info.value.line() == f"docker spy: {tmp_path} is a directory, not a report ({HOW})"


def test_a_stream_of_text_with_a_lone_surrogate_is_still_read() -> None:
    # What a terminal's undecodable byte becomes in a text stream (surrogateescape), in a field
    # diff does not read: the report is still read.
    text = json.dumps(dict(BPF, note="\udcff"), ensure_ascii=False)
    assert diff.load("-", io.StringIO(text)).total.calls == BPF["total"]["calls"]


def test_a_path_that_is_not_printable_is_named_safely(tmp_path: Path) -> None:
    path = str(tmp_path / "a\x1b[2Jb.json")
    with pytest.raises(UsageError) as info:
        diff.load(path)
    assert info.value.what == f"{ascii(path)} does not exist"


def test_stdin_is_read_as_bytes_up_to_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diff, "MAX_BYTES", 100)
    raw = b"{" + b" " * 150 + b"}"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(raw)))
    with pytest.raises(UsageError) as info:
        diff.load("-")
    assert info.value.what == "stdin is larger than 0 MiB, too large for a report"


@pytest.mark.parametrize("n, label", [(3, "web+t0+t1"), (4, "web+t0+t1+1 more")])
def test_a_label_names_three_targets_at_most(n: int, label: str) -> None:
    def named(doc: dict) -> None:
        targets(n)(doc)
        doc["targets"][0]["name"] = "web"
    snap = diff.parse(changed(named), "a.json")
    assert diff.compare(snap, snap).labels[0] == f"{label} @ {snap.started_at:%H:%M:%S}"


def test_rows_of_as_many_calls_after_are_sorted_by_calls_before() -> None:
    def tie(doc: dict) -> None:
        for r in doc["syscalls"]:
            if r["name"] in ("getppid", "fchdir"):
                r.update(calls=1000, errors=0)
                r.pop("errnos", None)
    before = diff.parse(changed(tie), "a.json")
    d = diff.compare(before, before)
    fewer = diff.Change("fchdir", diff.Count(1, 0), diff.Count(1000, 0), 0, 0, 0, None, "new")
    ordered = diff.ordered([fewer, *d.syscalls], "calls")
    assert [c.name for c in ordered[:3]] == ["fchdir", "getppid", "fchdir"]  # 1000/1000 before 1000/1
    with pytest.raises(ValueError) as info:
        diff.ordered([], "errors")
    assert str(info.value) == "unknown sort 'errors'"


class Endless(io.RawIOBase):
    """A stream that never ends, like `cat /dev/zero |`: reading it whole would never return, so
    a read of more than the limit and a byte fails the test instead."""

    def __init__(self, limit: int) -> None:
        self.limit, self.given = limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = len(buffer)
        self.given += n
        assert self.given <= self.limit + 1 + io.DEFAULT_BUFFER_SIZE, "read past the limit"
        buffer[:n] = b" " * n
        return n


def test_an_endless_stdin_is_read_up_to_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diff, "MAX_BYTES", 1 << 20)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BufferedReader(Endless(1 << 20))))
    with pytest.raises(UsageError, match="stdin is larger than 1 MiB"):
        diff.load("-")
    text = io.TextIOWrapper(io.BufferedReader(Endless(1 << 20)), encoding="ascii")
    with pytest.raises(UsageError, match="stdin is larger than 1 MiB"):
        diff.load("-", text)


def test_the_limit_is_of_bytes_not_characters(tmp_path: Path) -> None:
    path = tmp_path / "wide.json"
    path.write_text("é" * (diff.MAX_BYTES // 2 + 1), encoding="utf-8")  # 2 bytes each
    with pytest.raises(UsageError) as info:
        diff.load(str(path))
    assert info.value.what == f"{path} is larger than 16 MiB, too large for a report"


def test_a_file_that_never_ends_is_read_up_to_the_limit(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # A FIFO (or /dev/zero): its writer keeps it open until diff has its answer, or 10 s.
    monkeypatch.setattr(diff, "MAX_BYTES", 1 << 20)
    fifo = tmp_path / "report.json"
    os.mkfifo(fifo)
    answered = threading.Event()

    def write() -> None:
        with contextlib.suppress(BrokenPipeError), open(fifo, "wb") as f:
            f.write(b" " * (2 << 20))
            answered.wait(10)

    writer = threading.Thread(target=write)
    writer.start()
    started = time.monotonic()
    try:
        with pytest.raises(UsageError, match="is larger than 1 MiB"):
            diff.load(str(fifo))
        assert time.monotonic() - started < 5  # not after the writer gave up
    finally:
        answered.set()
        writer.join()
