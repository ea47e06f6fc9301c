"""docker spy diff: the fixtures in tests/fixtures/diff (see its README), then hostile input."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from plugin import diff, render, report
from plugin.errors import ExitStatus, UsageError
from plugin.options import DIFF_SORTS

from .strategies import perturbed, spy_reports

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "diff"
BEFORE = json.loads((FIXTURES / "before.json").read_text())


def snap(doc: Any, source: str = "before.json") -> diff.Snapshot:
    return diff.parse(json.dumps(doc).encode(), source)


def fixture(name: str) -> diff.Snapshot:
    return diff.load(str(FIXTURES / name))


def rendered(d: diff.Diff, fmt: str = "table", **view: Any) -> str:
    out = io.StringIO()
    render.write_diff(d, fmt, out, **view)
    return out.getvalue()


def body(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()[4:] if line and not line.startswith(("-", "note:"))]


def by_name(d: diff.Diff) -> dict[str, diff.Change]:
    return {c.name: c for c in d.syscalls}


def test_fixture_loads() -> None:
    s = fixture("before.json")
    assert s.names == ("web",) and s.total == diff.Count(2317, 1155) and s.complete
    assert dict(s.syscalls)["fchdir"] == diff.Count(777, 777)
    assert s.measured_seconds == 2.002160605 and s.requested_seconds == 2.0
    assert s.started_at.isoformat() == "2026-11-25T13:50:44.132000+00:00"
    assert s.source.endswith("before.json") and not s.partial and s.stopped is None


def test_new_gone_changed_and_same() -> None:
    d = diff.compare(fixture("before.json"), fixture("after.json"))
    rows = by_name(d)
    assert rows["write"].status == "new" and rows["write"].ratio is None
    assert rows["unlink"].status == "gone" and rows["unlink"].ratio == -1.0
    # 777 calls in 2.002160605 s, then 2,912 in 5.001873344 s: +50.02% calls/s
    before, after = 777 / 2.002160605, 2912 / 5.001873344
    assert rows["fchdir"].status == "changed" and rows["fchdir"].ratio == (after - before) / before
    assert rows["access"].status == "same"  # 379 in 2.002 s, 947 in 5.002 s: 189.3/s both
    assert d.appeared == ("write",) and d.disappeared == ("unlink",)


def test_rates_not_counts_are_compared_across_windows_of_different_length() -> None:
    row = by_name(diff.compare(fixture("before.json"), fixture("after.json")))["openat"]
    assert (row.before.calls, row.after.calls) == (2, 2)
    before, after = 2 / 2.002160605, 2 / 5.001873344  # the recorded windows
    assert (row.before_rate, row.after_rate) == (before, after)
    assert row.status == "changed" and row.ratio == (after - before) / before
    assert row.per_second == after - before


def test_same_means_the_change_would_print_as_zero() -> None:
    a, b = copy.deepcopy(BEFORE), copy.deepcopy(BEFORE)
    b["window"]["measured_seconds"] *= 1.0004  # a 0.04% slower rate for every syscall
    assert {c.status for c in diff.compare(snap(a), snap(b)).syscalls} == {"same"}
    b["window"]["measured_seconds"] = BEFORE["window"]["measured_seconds"] * 1.001
    assert {c.status for c in diff.compare(snap(a), snap(b)).syscalls} == {"changed"}


def test_rows_with_no_calls_on_either_side_are_dropped() -> None:
    doc = copy.deepcopy(BEFORE)
    doc["syscalls"].append({"name": "mmap", "calls": 0, "errors": 0, "calls_per_second": 0.0})
    assert "mmap" not in by_name(diff.compare(snap(doc), fixture("after.json")))


def test_table_of_two_windows_of_one_container() -> None:
    text = rendered(diff.compare(fixture("before.json"), fixture("after.json")))
    lines = text.splitlines()
    assert lines[0] == ("A: web @ 13:50:44 (2.00 s) -> B: web @ 13:56:10 (5.00 s): "
                        "2,317 -> 7,736 syscalls, +33.6% calls/s")
    assert lines[1] == ""
    assert lines[2].split() == ["SYSCALL", "CALLS", "A", "CALLS", "B", "CALLS/S", "A", "CALLS/S", "B",
                                "CHANGE", "ERRORS", "A", "ERRORS", "B"]
    rows = body(text)
    assert rows[0] == ["fchdir", "777", "2,912", "388.1", "582.2", "+50.0%", "777", "2,912"]
    assert ["write", "0", "12", "0.0", "2.4", "new", "0", "0"] in rows
    assert ["unlink", "1", "0", "0.5", "0.0", "gone", "0", "0"] in rows
    assert ["access", "379", "947", "189.3", "189.3", "same", "378", "946"] in rows
    assert rows[-1] == ["total", "2,317", "7,736", "1,157.2", "1,546.6", "+33.6%", "1,155", "3,858"]
    assert lines[-2] == lines[3]  # a rule above the total, as wide as the table
    assert len(rows) == 10  # nine syscalls called on either side, and the total


def test_two_containers_read_as_two_containers() -> None:
    text = rendered(diff.compare(fixture("before.json"), fixture("busy.json")))
    assert text.startswith("A: web @ 13:50:44 (2.00 s) -> B: busy @ 14:02:31 (2.00 s): "
                           "2,317 -> 4,887,064 syscalls")
    assert body(text)[0][:6] == ["getppid", "777", "4,887,064", "388.1", "2,440,961.2", "+628,882.8%"]
    assert [r[5] for r in body(text)[1:-1]] == ["gone"] * 7


def test_label_joins_the_targets_and_adds_the_date_when_dates_differ() -> None:
    two = copy.deepcopy(BEFORE)
    db = dict(copy.deepcopy(two["targets"][0]), id="ab" * 32, name="db", total={"calls": 0, "errors": 0},
              syscalls=[])
    two["targets"].append(db)
    five = copy.deepcopy(two)
    five["targets"] += [dict(db, id=c * 64, name=c) for c in "abc"]
    later = copy.deepcopy(BEFORE)
    later["window"]["started_at"] = "2026-11-26T09:00:00.000+00:00"
    assert diff.compare(snap(two), snap(five)).labels == ("web+db @ 13:50:44", "web+db+a+2 more @ 13:50:44")
    assert diff.compare(snap(BEFORE), snap(later)).labels == ("web @ 2026-11-25 13:50:44",
                                                              "web @ 2026-11-26 09:00:00")


@pytest.mark.parametrize("sort, first", [
    ("change", ["fchdir", "getppid", "write", "close"]),
    ("name", ["access", "clock_nanosleep", "close", "fchdir"]),
    ("calls", ["fchdir", "getppid", "access", "clock_nanosleep"]),
])
def test_sort(sort: str, first: list[str]) -> None:
    d = diff.compare(fixture("before.json"), fixture("after.json"))
    assert [r[0] for r in body(rendered(d, sort=sort))][:4] == first
    assert sort in DIFF_SORTS


def test_top_limits_rows_but_not_the_total() -> None:
    d = diff.compare(fixture("before.json"), fixture("after.json"))
    assert [r[0] for r in body(rendered(d, top=2))] == ["fchdir", "getppid", "total"]
    assert body(rendered(d, top=0)) == [body(rendered(d))[-1]]
    doc = json.loads(rendered(d, "json", top=1))
    assert [r["name"] for r in doc["syscalls"]] == ["fchdir"]
    assert doc["appeared"] == ["write"] and doc["disappeared"] == ["unlink"]  # never cut by top


def test_json_shape_has_raw_numbers() -> None:
    doc = json.loads(rendered(diff.compare(fixture("before.json"), fixture("after.json")), "json"))
    assert doc["schema"] == 1 and doc["kind"] == "diff"
    assert set(doc) == {"schema", "kind", "before", "after", "change", "syscalls", "appeared", "disappeared",
                        "processes"}
    assert doc["processes"] == []  # neither report was counted per process
    before = doc["before"]
    assert before["label"] == "web @ 13:50:44" and before["targets"] == ["web"]
    assert before["window"] == {"requested_seconds": 2.0, "measured_seconds": 2.002160605,
                                "started_at": "2026-11-25T13:50:44.132+00:00"}
    assert before["total"] == {"calls": 2317, "errors": 1155, "calls_per_second": 1157.25}
    assert before["partial"] is False and before["stopped"] is None and before["complete"] is True
    assert doc["change"] == {"change_per_second": 389.371, "change_ratio": 0.336462, "status": "changed"}
    rows = {r["name"]: r for r in doc["syscalls"]}
    assert rows["fchdir"] == {
        "name": "fchdir", "before": {"calls": 777, "errors": 777, "calls_per_second": 388.081},
        "after": {"calls": 2912, "errors": 2912, "calls_per_second": 582.182},
        "change_per_second": 194.101, "change_ratio": 0.500157, "status": "changed"}
    assert rows["write"]["change_ratio"] is None and rows["write"]["status"] == "new"
    assert rows["unlink"]["change_ratio"] == -1.0 and rows["unlink"]["status"] == "gone"


def test_partial_and_incomplete_reports_say_so() -> None:
    cut = copy.deepcopy(BEFORE)
    cut.update(partial=True, stopped="interrupted", syscalls=cut["syscalls"][:2])  # as --top 2 prints
    text = rendered(diff.compare(snap(cut), fixture("after.json")))
    assert text.startswith("A: web @ 13:50:44 (2.00 s, partial) -> B: ")
    assert text.splitlines()[-1] == ("note: before.json lists only some syscalls (--top?), "
                                     "so new and gone may be wrong")
    assert json.loads(rendered(diff.compare(snap(cut), snap(cut)), "json"))["after"]["complete"] is False


def test_dash_reads_the_stream_given() -> None:
    s = diff.load("-", io.StringIO(json.dumps(BEFORE)))
    assert s.source == "stdin" and s.total.calls == 2317
    with pytest.raises(UsageError, match="^stdin is empty$"):
        diff.load("-", io.StringIO(""))


def test_dash_without_a_stream_reads_the_bytes_of_sys_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = (FIXTURES / "after.json").read_bytes()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(raw), encoding="ascii"))
    assert diff.load("-").total.calls == 7736


def test_bad_arguments_to_write_are_programming_errors() -> None:
    d = diff.compare(fixture("before.json"), fixture("after.json"))
    for view in ({"fmt": "csv"}, {"sort": "errors"}, {"top": -1}):
        with pytest.raises(ValueError):
            render.write_diff(d, view.get("fmt", "table"), io.StringIO(),
                       **{k: v for k, v in view.items() if k != "fmt"})


# Validation: every problem is one UsageError naming the file.

def failure(path: str, stdin: io.StringIO | None = None) -> str:
    with pytest.raises(UsageError) as caught:
        diff.load(path, stdin)
    assert caught.value.exit_status == ExitStatus.USAGE
    line = caught.value.line()
    assert line.startswith("docker spy: ") and "\n" not in line
    return line


def write_file(tmp_path: Path, content: bytes | str) -> str:
    path = tmp_path / "before.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    missing = str(tmp_path / "before.json")
    assert failure(missing) == (f"docker spy: {missing} does not exist "
                                f"(make one with: docker spy CONTAINER --format json > FILE)")
    assert f"{tmp_path} is a directory, not a report" in failure(str(tmp_path))


def test_other_read_errors_say_what_the_system_said(tmp_path: Path) -> None:
    path = write_file(tmp_path, "{}") + "/report.json"  # a file is not a folder
    assert failure(path) == f"docker spy: cannot read {path}: Not a directory"


@pytest.mark.parametrize("content, says", [
    (b"", "before.json is empty"),
    (b" \n", "before.json is empty"),
    (b'{"schema": 2,\n "partial": }', "before.json is not JSON (line 2, column 13: Expecting value)"),
    (b"\xff\xfe\x00garbage", "before.json is not JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "before.json is not JSON"),
    (b"1" * 5000, "before.json is not JSON"),
    (b"[]", "before.json is not a docker spy report: it is not a JSON object"),
    (b'{"schema": 1, "target": {}}',
     "before.json is a report of schema 1; docker spy diff reads schemas 2 to 4"),
    (b'{"schema": "2"}', "before.json is not a docker spy report: it has no schema number"),
    (b'{"error": "boom"}', "before.json is not a docker spy report: it has no schema number"),
    (b'{"schema": 1, "kind": "diff"}',
     "before.json is not a docker spy report: it is the output of docker spy diff"),
    (b'{"schema": 2, "kind": "profile"}', "before.json is not a docker spy report: its kind is wrong"),
])
def test_not_a_report(tmp_path: Path, content: bytes, says: str) -> None:
    assert says in failure(write_file(tmp_path, content))


def test_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diff, "MAX_BYTES", 1000)
    doc = dict(BEFORE, padding="x" * 1000)
    assert "before.json is larger than" in failure(write_file(tmp_path, json.dumps(doc)))
    assert "stdin is larger than" in failure("-", io.StringIO(json.dumps(doc)))


def _set(path: str, value: Any) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return change


def _drop(path: str) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        del node[last]
    return change


def _duplicate_row(doc: dict) -> None:
    doc["syscalls"].append(dict(doc["syscalls"][-1], calls=0, errors=0))


M, R, S = "window.measured_seconds", "window.requested_seconds", "window.started_at"
BAD = {
    "window missing": (_drop("window"), "window is missing"),
    "measured zero": (_set(M, 0), f"{M} is out of range"),
    "measured negative": (_set(M, -2.0), f"{M} is out of range"),
    "measured NaN": (_set(M, float("nan")), f"{M} is out of range"),
    "measured inf": (_set(M, float("inf")), f"{M} is out of range"),
    "measured text": (_set(M, "5"), f"{M} has the wrong type"),
    "measured bool": (_set(M, True), f"{M} has the wrong type"),
    "requested zero": (_set(R, 0), f"{R} is out of range"),
    "started not a date": (_set(S, "yesterday"), f"{S} is not a date and time"),
    "started escape": (_set(S, "\x1b[2J"), f"{S} is not short printable text"),
    "name uppercase": (_set("syscalls.0.name", "Fchdir"), "syscalls[0].name is not a syscall name"),
    "name path": (_set("syscalls.0.name", "../etc"), "syscalls[0].name is not a syscall name"),
    "name long": (_set("syscalls.0.name", "a" * 65), "syscalls[0].name is not a syscall name"),
    "name number": (_set("syscalls.0.name", 7), "syscalls[0].name has the wrong type"),
    "name twice": (_duplicate_row, "syscalls lists unlink twice"),
    "calls negative": (_set("syscalls.0.calls", -1), "syscalls[0].calls is out of range"),
    "calls too big": (_set("syscalls.0.calls", 1 << 64), "syscalls[0].calls is out of range"),
    "calls float": (_set("syscalls.0.calls", 777.5), "syscalls[0].calls has the wrong type"),
    "calls bool": (_set("syscalls.0.errors", True), "syscalls[0].errors has the wrong type"),
    "calls missing": (_drop("syscalls.0.calls"), "syscalls[0].calls is missing"),
    "rate text": (_set("syscalls.0.calls_per_second", "fast"), "syscalls[0].calls_per_second is not a rate"),
    "rate negative": (_set("syscalls.0.calls_per_second", -1), "syscalls[0].calls_per_second is not a rate"),
    "row not object": (_set("syscalls.0", ["fchdir", 777]), "syscalls[0].name is missing"),
    "syscalls not list": (_set("syscalls", {}), "syscalls has the wrong type"),
    "rows over total": (_set("syscalls.0.calls", 100_000), "syscalls add up to more than total"),
    "total text": (_set("total", "2317"), "total has the wrong type"),
    "targets empty": (_set("targets", []), "targets is empty or too long"),
    "target id": (_set("targets.0.id", "17e0b4d4db5c"), "targets[0].id is not a container id"),
    "target name escape": (_set("targets.0.name", "\x1b[31mweb"),
                           "targets[0].name is not short printable text"),
    "target name empty": (_set("targets.0.name", ""), "targets[0].name is empty"),
    "target pid": (_set("targets.0.pid", 0), "targets[0].pid is out of range"),
    "target exited": (_set("targets.0.exited", "no"), "targets[0].exited has the wrong type"),
    "target row": (_set("targets.0.syscalls.0.name", "NOPE"),
                   "targets[0].syscalls[0].name is not a syscall name"),
    "target rows over total": (_set("targets.0.total.calls", 2316),
                               "targets[0].syscalls add up to more than targets[0].total"),
    "targets not the total": (_set("total.calls", 5000), "the totals of its targets do not add up to total"),
    "stopped unknown": (_set("stopped", "bored"), "stopped is not a known reason"),
    "partial text": (_set("partial", "false"), "partial has the wrong type"),
    "host missing": (_drop("host"), "host is missing"),
    "host cpus": (_set("host.cpus", -1), "host.cpus is out of range"),
}


@pytest.mark.parametrize("name", BAD)
def test_invalid_field(tmp_path: Path, name: str) -> None:
    change, says = BAD[name]
    doc = copy.deepcopy(BEFORE)
    change(doc)
    path = write_file(tmp_path, json.dumps(doc))
    assert failure(path) == (f"docker spy: {path} is not a docker spy report: {says} "
                             f"(make one with: docker spy CONTAINER --format json > FILE)")


def test_extreme_counts_and_windows_still_compare_and_render() -> None:
    def extreme(calls: int, seconds: float) -> diff.Snapshot:
        doc = copy.deepcopy(BEFORE)
        row = {"name": "getppid", "calls": calls, "errors": calls, "calls_per_second": None}
        doc.update(total={"calls": calls, "errors": calls}, syscalls=[row])
        doc["window"]["measured_seconds"] = seconds
        doc["targets"][0].update(total=doc["total"], syscalls=[row])
        return snap(doc)

    d = diff.compare(extreme(1, diff.MAX_SECONDS), extreme(diff.MAX_COUNT, diff.MIN_SECONDS))
    assert d.total.ratio is not None and d.total.ratio < float("inf")
    assert "18,446,744,073,709,551,615" in rendered(d)
    assert json.loads(rendered(d, "json"))["syscalls"][0]["after"]["calls"] == diff.MAX_COUNT


def test_a_counted_until_ctrl_c_report_has_no_requested_window() -> None:
    doc = copy.deepcopy(BEFORE)
    doc["window"]["requested_seconds"] = None
    assert snap(doc).requested_seconds is None


def test_fields_it_does_not_know_are_ignored() -> None:
    doc = dict(copy.deepcopy(BEFORE), kind="report", classes=[{"name": "file", "calls": 1}])
    doc["syscalls"][0]["class"] = "file"
    assert snap(doc).total == snap(BEFORE).total


# Property-based: valid reports, generated from the schema or recorded, are read exactly as they
# were written; perturbed, they are refused with one UsageError naming the file, or read and
# still compare and render. event() labels each example (--hypothesis-show-statistics).

def _accepted_or_usage_error(raw: bytes, how: str = "random") -> diff.Snapshot | None:
    try:
        s = diff.parse(raw, "before.json")
    except UsageError as e:
        event(f"refused: {how}")
        assert "before.json" in e.line()
        return None
    event("accepted")
    # Accepted: its rows add up to no more than its total, and it compares and renders both ways.
    assert sum(c.calls for _, c in s.syscalls) <= s.total.calls
    assert sum(c.errors for _, c in s.syscalls) <= s.total.errors
    assert s.measured_seconds >= diff.MIN_SECONDS and all(s.names)
    d = diff.compare(s, fixture("after.json"))
    doc = json.loads(rendered(d, "json"))
    assert [doc["before"]["total"][k] for k in ("calls", "errors")] == [s.total.calls, s.total.errors]
    total = next(line for line in rendered(d).splitlines() if line.startswith("total "))
    assert total.split()[:3] == ["total", f"{s.total.calls:,}", "7,736"]
    rendered(diff.compare(fixture("after.json"), s))
    return s


@settings(deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes(raw: bytes) -> None:
    _accepted_or_usage_error(raw)


def expected_snapshot(rep: report.Report, view: render.View) -> dict[str, Any]:
    return {"names": tuple(t.target.name for t in rep.targets),
            "total": diff.Count(rep.total_calls, rep.total_errors),
            "rows": {s.name: diff.Count(s.calls, s.errors, s.errnos or ())
                     for s in render.rows(rep.syscalls, view)},
            "window": (rep.window.requested_seconds, rep.window.measured_seconds,
                       datetime.fromisoformat(rep.window.started_at)),
            "partial": (rep.partial, rep.stopped)}


@settings(deadline=None)
@given(st.data())
def test_generated_reports_are_read_as_written_perturbed_ones_refused_or_read(data: st.DataObject) -> None:
    rep = data.draw(spy_reports())
    view = render.View(fmt="json", all=data.draw(st.booleans()),
                       top=data.draw(st.none() | st.integers(0, 5)))
    doc, change = data.draw(perturbed(render.document(rep, view)))
    s = _accepted_or_usage_error(json.dumps(doc).encode(), change.how)
    if change.how == "none" or (change.how == "add" and "errnos" not in change.path):
        assert s is not None, f"{change}: refused"
        want = expected_snapshot(rep, view)
        assert (s.names, s.total, dict(s.syscalls), (s.requested_seconds, s.measured_seconds, s.started_at),
                (s.partial, s.stopped)) == (want["names"], want["total"], want["rows"], want["window"],
                                            want["partial"])
        assert s.complete == (sum(c.calls for c in want["rows"].values()) == rep.total_calls)


@settings(deadline=None)
@given(st.data())
def test_recorded_reports_perturbed(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(["before.json", "after.json", "busy.json", "bpf-before.json",
                                      "bpf-after.json"]))
    recorded = json.loads((FIXTURES / name).read_text())
    doc, change = data.draw(perturbed(recorded))
    s = _accepted_or_usage_error(json.dumps(doc).encode(), change.how)
    if change.how == "none" or (change.how == "add" and "errnos" not in change.path):
        assert s is not None and s.total == fixture(name).total and s.syscalls == fixture(name).syscalls


def test_bpf_reports_compare_errnos_too() -> None:
    before = diff.load(str(FIXTURES / "bpf-before.json"))
    after = diff.load(str(FIXTURES / "bpf-after.json"))
    result = diff.compare(before, after)
    fchdir = next(c for c in result.syscalls if c.name == "fchdir")
    assert fchdir.before.errnos == (("EBADF", 1000),) and fchdir.after.errnos == (("EBADF", 3000),)
    out = io.StringIO()
    render.write_diff(result, "json", out)
    row = next(r for r in json.loads(out.getvalue())["syscalls"] if r["name"] == "fchdir")
    assert row["before"]["errnos"] == {"EBADF": 1000} and row["after"]["errnos"] == {"EBADF": 3000}
    table = render.diff_table(result, list(result.syscalls))
    assert table.splitlines()[2].split()[-2:] == ["TOP", "ERRNO"]
    assert next(line for line in table.splitlines() if line.startswith("fchdir")).endswith("EBADF")


def test_a_changed_top_errno_shows_both() -> None:
    doc = json.loads((FIXTURES / "bpf-after.json").read_text())
    for rows in [doc["syscalls"], *(t["syscalls"] for t in doc["targets"])]:
        fchdir = next(r for r in rows if r["name"] == "fchdir")
        fchdir["errnos"] = {"ENOENT": 2000, "EBADF": 1000}
    after = diff.parse(json.dumps(doc).encode(), "after.json")
    result = diff.compare(diff.load(str(FIXTURES / "bpf-before.json")), after)
    table = render.diff_table(result, list(result.syscalls))
    assert next(line for line in table.splitlines() if line.startswith("fchdir")).endswith("EBADF -> ENOENT")


def test_errnos_that_do_not_add_up_are_refused() -> None:
    doc = json.loads((FIXTURES / "bpf-after.json").read_text())
    next(r for r in doc["syscalls"] if r["name"] == "fchdir")["errnos"] = {"EBADF": 2999}
    with pytest.raises(UsageError, match="errnos do not add up to its errors"):
        diff.parse(json.dumps(doc).encode(), "after.json")


def test_schema_2_and_3_reports_compare() -> None:
    result = diff.compare(diff.load(str(FIXTURES / "before.json")),
                          diff.load(str(FIXTURES / "bpf-after.json")))
    assert result.total.after.calls == 7173
    assert not render.has_diff_errnos(diff.compare(diff.load(str(FIXTURES / "before.json")),
                                                   diff.load(str(FIXTURES / "after.json"))))


def test_a_stream_that_is_not_utf8_is_not_json() -> None:
    raw = io.TextIOWrapper(io.BytesIO(b'{"schema": 3, "name": "\xff"}'), encoding="utf-8")
    assert failure("-", raw) == "docker spy: stdin is not JSON (it is not UTF-8 text)"


def test_too_many_rows() -> None:
    doc = copy.deepcopy(BEFORE)
    doc["syscalls"] += [{"name": f"s{i}", "calls": 0, "errors": 0} for i in range(diff.MAX_SYSCALLS)]
    with pytest.raises(UsageError, match="not a docker spy report: syscalls lists too many rows"):
        snap(doc)
