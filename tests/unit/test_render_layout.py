"""How the tables read, not only what they say: names and errnos left-aligned, numbers
right-aligned, a rule under the header and above the total, bars where they belong; and the
JSON and CSV as other programs read them. From the recorded helper documents of both engines
(tests/fixtures/helper), and the diff fixtures (tests/fixtures/diff)."""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import json
import re
from pathlib import Path

import pytest

from plugin import diff, render, report
from plugin.render import View

from .test_report import RECORDED, TARGETS, load

LEFT = {"SYSCALL", "CLASS", "ERRNO", "TOP ERRNO", ""}  # "" is the bar's column
DIFF_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "diff"


def columns(rule: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"-+", rule)]


def cells(line: str, spans: list[tuple[int, int]]) -> list[str]:
    return [line[a:b] for a, b in spans]


def check_layout(text: str, headers: list[str], title_lines: int = 2) -> list[list[str]]:
    """The table after its title: header, rule, rows, the same rule, total. Every cell sits in
    its column, flush left or flush right as its header says, two blanks between columns, no
    trailing blanks. Returns the rows' stripped cells."""
    lines = text.splitlines()[title_lines:]
    if lines[-1] == render.LATENCY_NOTE:  # below a table with times, after a blank line
        assert lines[-2] == "" and "TIME" in headers
        lines = lines[:-2]
    header, rule, *body = lines
    assert body[-2] == rule and body[-1].lstrip().startswith("total")
    assert all(line == line.rstrip() for line in lines)
    spans = columns(rule)
    assert len(spans) == len(headers)
    assert all(b2 - a1 == 2 for (_, a1), (b2, _) in zip(spans, spans[1:], strict=False))
    assert [c.strip() for c in cells(header, spans)] == headers
    rows = []
    for line in [header, *body[:-2], body[-1]]:
        padded = line.ljust(spans[-1][1])
        got = cells(padded, spans)
        for name, cell in zip(headers, got, strict=True):
            if not cell.strip():
                continue
            if name in LEFT:
                assert not cell.startswith(" "), f"{name} is not flush left in {line!r}"
            else:
                assert not cell.endswith(" "), f"{name} is not flush right in {line!r}"
        rows.append([c.strip() for c in got])
    return rows[1:]


def fixture_diff(before: str, after: str) -> diff.Diff:
    return diff.compare(diff.load(str(DIFF_FIXTURES / before)), diff.load(str(DIFF_FIXTURES / after)))


def web(engine: str) -> report.Report:
    doc = RECORDED[engine]
    return load(dict(doc, targets=doc["targets"][:1]), targets=TARGETS[:1])


@pytest.mark.parametrize("engine, headers", [
    ("perf", ["SYSCALL", "CALLS", "ERRORS", "CALLS/S", "SHARE", ""]),
    ("bpf", ["SYSCALL", "CALLS", "ERRORS", "ERRNO", "CALLS/S", "TIME", "AVG", "MAX", "SHARE", ""]),
])
def test_a_table_of_one_target(engine: str, headers: list[str]) -> None:
    rows = check_layout(render.table(web(engine)), headers)
    assert rows[0][0] == "fchdir" and rows[0][-1] == "█" * render.BAR_WIDTH
    assert rows[-1][0] == "total" and rows[-1][-1] == ""  # no bar for the total


def test_a_table_of_two_targets_has_a_right_aligned_column_each() -> None:
    rows = check_layout(render.table(load(RECORDED["perf"])),
                        ["SYSCALL", "web", "db", "CALLS", "ERRORS", "CALLS/S", "SHARE", ""])
    assert rows[-1][:4] == ["total", "2,681", "4,119", "6,800"]


def test_a_table_without_bars() -> None:
    rows = check_layout(render.table(web("perf"), View(bars=False)), ["SYSCALL", "CALLS", "ERRORS", "CALLS/S",
                                                                       "SHARE"])
    assert rows[0] == ["fchdir", "777", "777", "259.0", "29.0%"]


def test_a_table_by_class() -> None:
    text = render.table(web("bpf"), View(by_class=True))
    rows = check_layout(text, ["CLASS", "SYSCALL", "CALLS", "ERRORS", "ERRNO", "CALLS/S", "TIME", "AVG",
                               "MAX", "SHARE", ""])
    classes = [r for r in rows if r[0]]
    # Classes by calls, most first (file 1,360: fchdir, access, close, openat, read, unlink;
    # process 783; time 576), each with a bar of its share of the busiest class.
    assert [r[0] for r in classes] == ["file", "process", "time"]
    assert [r[2] for r in classes] == ["1,360", "783", "576"]
    assert classes[0][-1] == "█" * render.BAR_WIDTH and all(r[-1] for r in classes)
    assert all(r[4] == "" for r in classes)  # a class has no top errno of its own
    members = [r for r in rows if not r[0] and r[1] != "total"]
    assert members[0][1:5] == ["fchdir", "777", "777", "EBADF 100%"] and all(r[-1] for r in members)
    assert rows[-1][:3] == ["", "total", "2,719"]


def test_classes_by_name_with_sort_name() -> None:
    rows = check_layout(render.table(web("perf"), View(by_class=True, sort="name")),
                        ["CLASS", "SYSCALL", "CALLS", "ERRORS", "CALLS/S", "SHARE", ""])
    assert [r[0] for r in rows if r[0]] == ["file", "process", "time"]
    assert [r[1] for r in rows if r[1]][:3] == ["access", "close", "fchdir"]  # syscalls by name too


def test_classes_of_equal_calls_are_in_name_order() -> None:
    doc = copy.deepcopy(RECORDED["perf"])
    rows = {r["name"]: r for r in doc["targets"][0]["syscalls"]}
    rows["clock_nanosleep"]["calls"] = 783  # time as busy as process
    text = render.table(load(dict(doc, targets=doc["targets"][:1]), targets=TARGETS[:1]), View(by_class=True))
    classes = [line.split()[0] for line in text.splitlines()[4:] if line[:1].isalpha()]
    assert classes == ["file", "process", "time"]


def test_an_empty_table_still_has_its_total() -> None:
    rows = check_layout(render.table(web("perf"), View(top=0)), ["SYSCALL", "CALLS", "ERRORS", "CALLS/S",
                                                                  "SHARE", ""])
    assert rows == [["total", "2,681", "1,334", "893.5", "100.0%", ""]]
    rows = check_layout(render.table(web("perf"), View(top=0, by_class=True)),
                        ["CLASS", "SYSCALL", "CALLS", "ERRORS", "CALLS/S", "SHARE", ""])
    assert [r[0] for r in rows[:-1]] == ["file", "process", "time"]  # subtotals, no syscalls under them


def test_a_window_that_counted_nothing() -> None:
    doc = copy.deepcopy(RECORDED["perf"])
    for t in doc["targets"]:
        t["syscalls"] = []
    rows = check_layout(render.table(load(doc), View(all=True, top=1)),
                        ["SYSCALL", "web", "db", "CALLS", "ERRORS", "CALLS/S", "SHARE", ""])
    assert rows == [["accept", "0", "0", "0", "0", "0.0", "0.0%", ""],
                    ["total", "0", "0", "0", "0", "0.0", "-", ""]]


def test_a_syscall_only_one_target_made_is_0_in_the_others_column() -> None:
    # The BPF engine names what no table names (compat_getpid: a 32-bit call); one target made it.
    doc = copy.deepcopy(RECORDED["bpf"])
    doc["targets"][0]["syscalls"].append({"name": "compat_getpid", "calls": 3, "errors": 0})
    text = render.table(load(doc))
    row = next(line.split() for line in text.splitlines() if line.startswith("compat_getpid"))
    assert row[:4] == ["compat_getpid", "3", "0", "3"]


def test_a_window_too_short_for_a_rate_shows_none() -> None:
    # measured_seconds 0 (a stop at once): calls per second would be infinite; none is shown,
    # and the title says why.
    doc = copy.deepcopy(RECORDED["perf"])
    doc["window"]["measured_seconds"] = 0.0
    rep = load(dict(doc, targets=doc["targets"][:1]), targets=TARGETS[:1])
    lines = render.table(rep).splitlines()
    assert lines[0].endswith("in 0.00 s (under 0.1 s: too short for rates)")
    assert lines[4].split()[:4] == ["fchdir", "777", "777", "-"]
    out = io.StringIO()
    render.write(rep, View(fmt="csv"), out)
    assert list(csv.reader(io.StringIO(out.getvalue())))[1][4] == ""


def test_a_class_subtotal_adds_the_times_it_has() -> None:
    # process: getppid, fork, wait4 timed; exit_group never returns (no time) and adds nothing.
    rep = web("bpf")
    timed = [s for s in rep.syscalls if s.name in ("getppid", "fork", "wait4")]
    spent, calls = sum(s.time_ns for s in timed), sum(s.calls for s in timed)
    text = render.table(rep, View(by_class=True))
    process = next(line for line in text.splitlines() if line.startswith("process"))
    assert f"{render.duration(spent)}  {render.duration(spent // calls)}" in re.sub(r" {2,}", "  ", process)
    assert (spent, calls) == (677_699 + 197_609 + 186_868, 781)  # not 783: exit_group has no time


def test_json_is_indented_by_two_as_the_readme_shows() -> None:
    out = io.StringIO()
    render.write(web("perf"), View(fmt="json"), out)
    text = out.getvalue()
    assert text.startswith('{\n  "schema": 4,\n  "kind": "report",\n') and text.endswith("}\n")
    d = fixture_diff("before.json", "after.json")
    out = io.StringIO()
    render.write_diff(d, "json", out)
    assert out.getvalue().startswith('{\n  "schema": 1,\n  "kind": "diff",\n')


def test_json_by_class_subtotals() -> None:
    doc = render.document(web("bpf"), View(fmt="json", by_class=True))
    assert doc["classes"] == [{"name": "file", "calls": 1360, "errors": 1353},
                              {"name": "process", "calls": 783, "errors": 0},
                              {"name": "time", "calls": 576, "errors": 0}]


def test_csv_reads_as_csv_with_raw_numbers() -> None:
    doc = copy.deepcopy(RECORDED["bpf"])
    fchdir = next(r for r in doc["targets"][0]["syscalls"] if r["name"] == "fchdir")
    fchdir["errnos"] = {"EBADF": 700, "ENOENT": 77}  # two errnos, to see how they are joined
    out = io.StringIO()
    render.write(load(doc), View(fmt="csv", by_class=True), out)
    assert "\r" not in out.getvalue()  # lines end in \n, as text tools expect
    table = list(csv.reader(io.StringIO(out.getvalue())))
    assert table[0] == ["container", "syscall", "class", "calls", "errors", "calls_per_second",
                        "share_percent", "errnos", "time_ns", "max_ns"]
    rows = {(r[0], r[1]): r for r in table[1:]}
    # 777 fchdir of web's 2,719 calls in the recorded 3.0 s
    assert rows[("web", "fchdir")] == ["web", "fchdir", "file", "777", "777", "259.000",
                                       f"{100 * 777 / 2719:.3f}", "EBADF:700 ENOENT:77", "587554", "1533"]
    assert rows[("web", "exit_group")][7:] == ["", "", ""]  # no failure, and it never returns: no time


def test_diff_table_layout_and_its_errno_column() -> None:
    before, after = (diff.load(str(DIFF_FIXTURES / name)) for name in ("before.json", "bpf-after.json"))
    d = diff.compare(before, after)
    text = render.diff_table(d, list(d.syscalls))
    rows = check_layout(text, [*render.DIFF_HEADERS, "TOP ERRNO"])
    by_name = {r[0]: r for r in rows}
    assert by_name["fchdir"][-1] == "- -> EBADF"  # the schema 2 report has no errnos
    assert by_name["getppid"][-1] == ""  # no failures on either side
    assert by_name["total"][-1] == ""
    back = diff.compare(after, before)
    assert {r[0]: r for r in check_layout(render.diff_table(back, list(back.syscalls)),
                                          [*render.DIFF_HEADERS, "TOP ERRNO"])}["fchdir"][-1] == "EBADF -> -"
    plain = diff.compare(before, diff.load(str(DIFF_FIXTURES / "after.json")))
    check_layout(render.diff_table(plain, list(plain.syscalls)), list(render.DIFF_HEADERS))


def test_diff_titles_when_there_was_nothing_before() -> None:
    base = json.loads((DIFF_FIXTURES / "before.json").read_text())
    empty = copy.deepcopy(base)
    empty.update(total={"calls": 0, "errors": 0}, syscalls=[])
    empty["targets"][0].update(total={"calls": 0, "errors": 0}, syscalls=[])
    nothing = diff.parse(json.dumps(empty).encode(), "empty.json")
    some = diff.parse(json.dumps(base).encode(), "before.json")
    assert render.diff_table(diff.compare(nothing, some), []).splitlines()[0].endswith(
        ": 0 -> 2,317 syscalls, no calls before")
    assert render.diff_table(diff.compare(nothing, nothing), []).splitlines()[0].endswith(
        ": 0 -> 0 syscalls, no calls in either")


def test_diff_json_names_both_sides() -> None:
    before, after = (diff.load(str(DIFF_FIXTURES / name)) for name in ("before.json", "after.json"))
    doc = render.diff_document(diff.compare(before, after), [])
    assert (doc["before"]["label"], doc["after"]["label"]) == ("web @ 13:50:44", "web @ 13:56:10")
    assert (doc["before"]["source"], doc["after"]["source"]) == (before.source, after.source)
    assert doc["before"]["source"].endswith("before.json")


def test_diff_json_has_errnos_when_either_side_has_them() -> None:
    before, after = (diff.load(str(DIFF_FIXTURES / name)) for name in ("before.json", "bpf-after.json"))
    d = diff.compare(before, after)
    assert render.has_diff_errnos(d)
    fchdir = next(r for r in render.diff_document(d, list(d.syscalls))["syscalls"] if r["name"] == "fchdir")
    assert (fchdir["before"]["errnos"], fchdir["after"]["errnos"]) == ({}, {"EBADF": 3000})


def test_write_diff_refuses_what_the_cli_never_asks() -> None:
    d = fixture_diff("before.json", "after.json")
    with pytest.raises(ValueError) as info:
        render.write_diff(d, "table", io.StringIO(), top=-1)
    assert str(info.value) == "top must not be negative"
    with pytest.raises(ValueError) as info:
        render.write_diff(d, "csv", io.StringIO())
    assert str(info.value) == "unknown format 'csv'"


@pytest.mark.parametrize("ns, text", [(999, "999 ns"), (1_000, "1.0 µs"), (999_999, "1000.0 µs"),
                                      (1_000_000, "1.0 ms"), (1_050_000, "1.1 ms"),
                                      (999_999_999, "1000.0 ms"), (1_000_000_000, "1.00 s"),
                                      (3_600_000_000_000, "3,600.00 s")])
def test_durations_change_unit_at_each_thousand(ns: int, text: str) -> None:
    assert render.duration(ns) == text


def test_names_are_cut_to_the_column_with_an_ellipsis() -> None:
    assert render.short("a" * 16, View()) == "a" * 16
    assert render.short("a" * 17, View()) == "a" * 15 + "…"
    assert render.short("a" * 17, View(no_trunc=True)) == "a" * 17


def test_a_bar_never_outgrows_its_width() -> None:
    assert render.bar(1.5, 4) == "████"
    assert render.bar(-0.5, 4) == ""


def test_a_partial_report_with_an_unknown_reason_says_partial_only() -> None:
    rep = web("perf")
    assert render.title(dataclasses.replace(rep, partial=True, stopped=None)).endswith(" s, PARTIAL")


def web_with(engine: str, **rows: dict) -> report.Report:
    """web's recorded document with some rows changed or added (name -> fields)."""
    doc = copy.deepcopy(RECORDED[engine])
    mine = {r["name"]: r for r in doc["targets"][0]["syscalls"]}
    for name, fields in rows.items():
        if name in mine:
            mine[name].update(fields)
            for key in [k for k, v in fields.items() if v is None]:
                del mine[name][key]
        else:
            doc["targets"][0]["syscalls"].append({"name": name, **fields})
    return load(dict(doc, targets=doc["targets"][:1]), targets=TARGETS[:1])


def test_classes_are_by_calls_or_by_name() -> None:
    rep = web_with("perf", clock_nanosleep={"calls": 5000})  # time the busiest class
    heads = ["CLASS", "SYSCALL", "CALLS", "ERRORS", "CALLS/S", "SHARE", ""]
    by_calls = check_layout(render.table(rep, View(by_class=True)), heads)
    assert [r[0] for r in by_calls if r[0]] == ["time", "file", "process"]
    by_name = check_layout(render.table(rep, View(by_class=True, sort="name")), heads)
    assert [r[0] for r in by_name if r[0]] == ["file", "process", "time"]


def test_a_table_by_class_of_a_window_that_counted_nothing() -> None:
    doc = copy.deepcopy(RECORDED["perf"])
    for t in doc["targets"]:
        t["syscalls"] = []
    rows = check_layout(render.table(load(doc), View(by_class=True)),
                        ["CLASS", "SYSCALL", "web", "db", "CALLS", "ERRORS", "CALLS/S", "SHARE", ""])
    assert rows == [["", "total", "0", "0", "0", "0", "0.0", "-", ""]]


def test_a_class_time_adds_only_the_calls_that_were_timed() -> None:
    # rt_sigreturn never returns where it is timed: it adds no time to the signal class.
    rep = web_with("bpf", rt_sigreturn={"calls": 2, "errors": 0},
                   rt_sigprocmask={"calls": 1, "errors": 0, "time_ns": 500, "max_ns": 500})
    heads = ["CLASS", "SYSCALL", "CALLS", "ERRORS", "ERRNO", "CALLS/S", "TIME", "AVG", "MAX", "SHARE", ""]
    rows = check_layout(render.table(rep, View(by_class=True)), heads)
    signal = next(r for r in rows if r[0] == "signal")
    assert signal[2] == "3" and signal[6:9] == ["500 ns", "500 ns", "500 ns"]  # an average of the one timed


def test_failures_of_unknown_errno_have_no_top_errno() -> None:
    # The BPF engine keeps each failure's errno while it has room (its lost counter says when not).
    rep = web_with("bpf", access={"errnos": None})
    heads = ["SYSCALL", "CALLS", "ERRORS", "ERRNO", "CALLS/S", "TIME", "AVG", "MAX", "SHARE", ""]
    rows = {r[0]: r for r in check_layout(render.table(rep), heads)}
    assert rows["access"][2:4] == ["576", ""]


def test_write_prints_the_table_of_the_view() -> None:
    out = io.StringIO()
    render.write(web("perf"), View(top=1, no_trunc=True), out)
    assert out.getvalue() == render.table(web("perf"), View(top=1, no_trunc=True)) + "\n"
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"web ({TARGETS[0].id}): ")
    assert [lines[4].split()[0], lines[6].split()[0]] == ["fchdir", "total"] and len(lines) == 7


def test_seconds_round_to_hundredths() -> None:
    assert render.duration(1_135_000_000) == "1.14 s"


def test_an_unchanged_top_errno_is_shown_once() -> None:
    d = fixture_diff("bpf-before.json", "bpf-after.json")
    rows = {r[0]: r for r in check_layout(render.diff_table(d, list(d.syscalls)),
                                          [*render.DIFF_HEADERS, "TOP ERRNO"])}
    assert rows["fchdir"][-1] == "EBADF" and rows["access"][-1] == "ENOENT"
