"""Rendering reports loaded from the recorded helper documents (two targets: web made 777
getppid and 777 failing fchdir calls, db 1,500 and 1,500), counted by perf, and by BPF with
errnos and --latency."""

from __future__ import annotations

import csv
import io
import json

import pytest

from plugin import render, report
from plugin.classes import CLASSES
from plugin.render import View

from .test_report import RECORDED as BY_ENGINE
from .test_report import TARGETS, load

RECORDED = BY_ENGINE["perf"]
WEB_ONLY = dict(RECORDED, targets=RECORDED["targets"][:1])
SECONDS = RECORDED["window"]["measured_seconds"]  # 3.000543106


def web(engine: str = "perf") -> report.Report:
    doc = BY_ENGINE[engine]
    return load(dict(doc, targets=doc["targets"][:1]), targets=TARGETS[:1])


def body(text: str) -> list[list[str]]:
    """The table's rows, split into cells; the bar column is dropped."""
    rows = [line.split() for line in text.splitlines()[4:] if line and not line.startswith("-")]
    return [[c for c in row if not set(c) <= set(render.EIGHTHS)] for row in rows]


def test_table_has_rows_by_calls_a_total_a_bar_and_no_zero_rows() -> None:
    text = render.table(web())
    lines = text.splitlines()
    assert lines[0] == "web (9871920086c9): 2,681 syscalls in 3.00 s"
    assert lines[2].split() == ["SYSCALL", "CALLS", "ERRORS", "CALLS/S", "SHARE"]
    rows = body(text)
    assert rows[0] == ["fchdir", "777", "777", "259.0", "29.0%"]  # 777 / 3.000543106 s, of 2,681
    assert rows[-1] == ["total", "2,681", "1,334", "893.5", "100.0%"]
    assert len(rows) == 12  # eleven syscalls that were called, and the total
    assert "mmap" not in text
    # The busiest row's bar is full; getppid's, as many calls, too; close's (2) is a sliver.
    bars = {line.split()[0]: line.split()[-1] for line in lines[4:] if line.endswith(("█", "▏"))}
    assert bars["fchdir"] == "█" * render.BAR_WIDTH == bars["getppid"]
    assert bars["close"] == "▏"


def test_bars_are_eighths_of_a_cell() -> None:
    assert render.bar(1.0, 4) == "████"
    assert render.bar(0.5, 4) == "██"
    assert render.bar(1 / 32, 4) == "▏"
    assert render.bar(0.0, 4) == ""
    assert render.bar(0.001, 4) == "▏"  # a call is never drawn as none


def test_top_limits_rows_but_not_the_total() -> None:
    text = render.table(web(), View(top=1))
    assert [r[0] for r in body(text)] == ["fchdir", "total"]
    assert body(text)[-1][1] == "2,681"


def test_all_shows_syscalls_that_were_not_called() -> None:
    text = render.table(web(), View(all=True))
    assert len(body(text)) == len(RECORDED["syscalls_counted"]) + 1 == 361
    assert ["mmap", "0", "0", "0.0", "0.0%"] in body(text)


@pytest.mark.parametrize("sort, first", [("calls", ["fchdir", "getppid", "access"]),
                                         ("rate", ["fchdir", "getppid", "access"]),
                                         ("errors", ["fchdir", "access", "getppid"]),
                                         ("name", ["access", "clock_nanosleep", "close"])])
def test_sort(sort: str, first: list[str]) -> None:
    assert [r[0] for r in body(render.table(web(), View(sort=sort)))][:3] == first


def test_no_trunc_shows_the_whole_id() -> None:
    assert render.title(web(), View(no_trunc=True)).startswith(f"web ({TARGETS[0].id}): ")


def test_partial_reports_say_so_in_the_title() -> None:
    def first_line(**changes: object) -> str:
        return render.table(load(dict(WEB_ONLY, **changes), targets=TARGETS[:1])).splitlines()[0]

    assert first_line(partial=True).endswith(", PARTIAL")
    assert first_line(partial=True, stopped="target-exited").endswith(", PARTIAL (the container stopped)")
    assert first_line(partial=True, stopped="interrupted").endswith(", PARTIAL (interrupted)")


def test_several_targets_get_a_calls_column_each() -> None:
    text = render.table(load(RECORDED))
    lines = text.splitlines()
    assert lines[0] == "2 containers (web, db): 6,800 syscalls in 3.00 s"
    assert lines[2].split() == ["SYSCALL", "web", "db", "CALLS", "ERRORS", "CALLS/S", "SHARE"]
    rows = {r[0]: r for r in body(text)}
    assert rows["fchdir"][:5] == ["fchdir", "777", "1,500", "2,277", "2,277"]
    assert rows["fork"][:4] == ["fork", "2", "0", "2"]
    assert rows["total"][:4] == ["total", "2,681", "4,119", "6,800"]


def test_an_exited_target_is_named_so() -> None:
    doc = json.loads(json.dumps(RECORDED))
    doc["targets"][1]["exited"] = True
    assert "(web, db exited)" in render.title(load(doc))


def test_by_class_puts_each_class_subtotal_above_its_syscalls() -> None:
    text = render.table(web(), View(by_class=True))
    assert text.splitlines()[2].split() == ["CLASS", "SYSCALL", "CALLS", "ERRORS", "CALLS/S", "SHARE"]
    rows = body(text)
    classes = {r[0]: r for r in rows if r[0] in CLASSES}
    assert set(classes) == {"file", "process", "time"}
    # fchdir, access, openat, close, read, unlink: 777 + 558 + 2 + 2 + 1 + 1
    assert classes["file"][1:3] == ["1,341", "1,334"]
    assert classes["process"][1] == str(777 + 2 + 2 + 2)  # getppid, fork, exit_group, wait4
    assert sum(int(r[1].replace(",", "")) for r in classes.values()) == 2681
    first = rows.index(classes["file"])
    assert rows[first + 1][0] == "fchdir"  # the class's syscalls follow it, busiest first


def test_json_format_is_one_document() -> None:
    out = io.StringIO()
    render.write(load(RECORDED), View(fmt="json", top=2), out)
    doc = json.loads(out.getvalue())
    assert [r["name"] for r in doc["syscalls"]] == ["fchdir", "getppid"]
    assert doc["syscalls"][0]["calls_per_second"] == round(2277 / SECONDS, 3)
    assert doc["total"]["calls"] == 6800  # --top does not change the total
    assert [t["name"] for t in doc["targets"]] == ["web", "db"]
    assert [r["name"] for r in doc["targets"][0]["syscalls"]] == ["fchdir", "getppid"]
    assert doc["targets"][1]["total"]["calls"] == 4119


def test_json_by_class_adds_classes_and_subtotals() -> None:
    out = io.StringIO()
    render.write(web(), View(fmt="json", by_class=True), out)
    doc = json.loads(out.getvalue())
    assert {r["name"]: r["class"] for r in doc["syscalls"]}["getppid"] == "process"
    assert sum(c["calls"] for c in doc["classes"]) == doc["total"]["calls"]


def test_csv_has_raw_numbers_a_row_per_container_and_syscall() -> None:
    out = io.StringIO()
    render.write(load(RECORDED), View(fmt="csv", sort="name"), out)
    table = list(csv.reader(io.StringIO(out.getvalue())))
    assert table[0] == list(render.CSV_HEADER)
    rows = {(r[0], r[1]): r for r in table[1:]}
    assert rows[("web", "fchdir")][2:4] == ["777", "777"]
    assert rows[("db", "fchdir")][2:4] == ["1500", "1500"]
    assert rows[("db", "fchdir")][5] == f"{100 * 1500 / 4119:.3f}"
    web_names = [r[1] for r in table[1:] if r[0] == "web"]
    assert web_names == sorted(web_names) and len(web_names) == 11


def test_csv_all_lists_every_syscall_of_every_container() -> None:
    out = io.StringIO()
    render.write(load(RECORDED), View(fmt="csv", all=True, by_class=True), out)
    table = list(csv.reader(io.StringIO(out.getvalue())))
    assert table[0][:3] == ["container", "syscall", "class"]
    assert len(table) == 1 + 2 * len(RECORDED["syscalls_counted"])


def test_by_class_subtotals_count_every_syscall_and_top_limits_each_class() -> None:
    text = render.table(web(), View(by_class=True, top=1))
    rows = body(text)
    classes = {r[0]: r for r in rows if r[0] in CLASSES}
    assert classes["file"][1] == "1,341"  # all six file syscalls, though one is shown
    members = [r[0] for r in rows if r[0] not in CLASSES and r[0] != "total"]
    assert len(members) == len(classes)  # one syscall under each class
    out = io.StringIO()
    render.write(web(), View(fmt="json", by_class=True, top=1), out)
    doc = json.loads(out.getvalue())
    assert len(doc["syscalls"]) == 1
    assert {c["name"]: c["calls"] for c in doc["classes"]}["file"] == 1341


def test_bpf_table_has_the_top_errno_and_with_latency_the_times() -> None:
    text = render.table(web("bpf"))
    lines = text.splitlines()
    assert lines[2].split() == ["SYSCALL", "CALLS", "ERRORS", "ERRNO", "CALLS/S", "TIME", "AVG", "MAX",
                                "SHARE"]
    rows = {line.split()[0]: line for line in lines[4:] if line[:1].isalpha()}
    assert rows["fchdir"].split()[:5] == ["fchdir", "777", "777", "EBADF", "100%"]
    assert rows["access"].split()[3:5] == ["ENOENT", "100%"]
    assert rows["getppid"].split()[:4] == ["getppid", "777", "0", "259.0"]  # no failure, no errno
    # Recorded: 576 sleeps of 5 ms, 2,978,289,515 ns in all (5,170,641 ns each), the longest
    # 10,106,467 ns; 777 fchdir, 587,554 ns (756 ns each), the longest 1,533 ns.
    assert rows["clock_nanosleep"].split()[4:10] == ["2.98", "s", "5.2", "ms", "10.1", "ms"]
    assert rows["fchdir"].split()[6:12] == ["587.6", "µs", "756", "ns", "1.5", "µs"]
    assert rows["exit_group"].split()[4:7] == ["-", "-", "-"]  # it never returns: no time
    # TIME sums threads and processes: the table says so below itself, and only with times
    assert lines[-2:] == ["", render.LATENCY_NOTE] and "exceed the window" in render.LATENCY_NOTE
    assert render.LATENCY_NOTE not in render.table(web("perf"))


def test_errno_share_is_of_the_row_failures() -> None:
    row = report.SyscallCount("openat", 100, 50, (("ENOENT", 49), ("EACCES", 1)))
    assert render.top_errno(row) == "ENOENT 98%"
    assert render.top_errno(report.SyscallCount("openat", 100, 0, ())) == ""


@pytest.mark.parametrize("ns, text", [(830, "830 ns"), (51_234, "51.2 µs"), (20_000_000, "20.0 ms"),
                                      (3_004_000_000, "3.00 s"), (0, "0 ns"), (999_999, "1000.0 µs")])
def test_durations_read_in_their_unit(ns: int, text: str) -> None:
    assert render.duration(ns) == text


def test_bpf_csv_has_errnos_and_times() -> None:
    out = io.StringIO()
    render.write(load(BY_ENGINE["bpf"]), View(fmt="csv"), out)
    table = list(csv.reader(io.StringIO(out.getvalue())))
    assert table[0] == [*render.CSV_HEADER, "errnos", "time_ns", "max_ns"]
    rows = {(r[0], r[1]): r for r in table[1:]}
    assert rows[("db", "fchdir")][6] == "EBADF:1500"
    assert rows[("web", "getppid")][6] == ""


def test_write_prints_the_table_by_default() -> None:
    out = io.StringIO()
    render.write(web(), View(), out)
    assert out.getvalue() == render.table(web()) + "\n"
