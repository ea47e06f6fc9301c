"""Rendering a report loaded from the recorded helper document."""

from __future__ import annotations

import csv
import io
import json

import pytest

from plugin import render
from plugin.render import View

from .test_report import RECORDED, load


def body(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()[4:] if line and not line.startswith("-")]


def test_table_has_rows_by_calls_a_total_and_no_zero_rows() -> None:
    text = render.table(load(RECORDED))
    lines = text.splitlines()
    assert lines[0].startswith("web (17e0b4d4db5c): 2,317 syscalls in 2.00 s")
    assert lines[2].split() == ["SYSCALL", "CALLS", "ERRORS", "CALLS/S", "SHARE"]
    rows = body(text)
    assert rows[0] == ["fchdir", "777", "777", "388.1", "33.5%"]
    assert rows[-1][0] == "total" and rows[-1][1:3] == ["2,317", "1,155"]
    assert len(rows) == 9  # eight syscalls that were called, and the total
    assert "exit_group" not in text


def test_top_limits_rows_but_not_the_total() -> None:
    text = render.table(load(RECORDED), View(top=1))
    assert [r[0] for r in body(text)] == ["fchdir", "total"]
    assert "2,317" in text


def test_all_shows_syscalls_that_were_not_called() -> None:
    text = render.table(load(RECORDED), View(all=True))
    assert len(body(text)) == len(RECORDED["syscalls"]) + 1
    assert ["exit_group", "0", "0", "0.0", "0.0%"] in body(text)


@pytest.mark.parametrize("sort, first", [("calls", ["fchdir", "getppid", "access"]),
                                         ("rate", ["fchdir", "getppid", "access"]),
                                         ("errors", ["fchdir", "access", "getppid"]),
                                         ("name", ["access", "clock_nanosleep", "close"])])
def test_sort(sort: str, first: list[str]) -> None:
    assert [r[0] for r in body(render.table(load(RECORDED), View(sort=sort)))][:3] == first


def test_no_trunc_shows_the_whole_id() -> None:
    rep = load(RECORDED)
    assert render.title(rep, View(no_trunc=True)).startswith(f"web ({rep.target.id}): ")


def test_partial_reports_say_so_in_the_title() -> None:
    doc = dict(RECORDED, partial=True)
    assert render.table(load(doc)).splitlines()[0].endswith(", PARTIAL")
    doc = dict(RECORDED, partial=True, stopped="target-exited")
    assert render.table(load(doc)).splitlines()[0].endswith(", PARTIAL (the container stopped)")
    doc = dict(RECORDED, partial=True, stopped="interrupted")
    assert render.table(load(doc)).splitlines()[0].endswith(", PARTIAL (interrupted)")


def test_json_format_is_one_document() -> None:
    out = io.StringIO()
    render.write(load(RECORDED), View(fmt="json", top=2), out)
    doc = json.loads(out.getvalue())
    assert [r["name"] for r in doc["syscalls"]] == ["fchdir", "getppid"]
    assert doc["syscalls"][0]["calls_per_second"] == round(777 / 2.002160605, 3)
    assert doc["total"]["calls"] == 2317  # --top does not change the total


def test_csv_has_raw_numbers_and_a_header() -> None:
    out = io.StringIO()
    render.write(load(RECORDED), View(fmt="csv", sort="name", all=True), out)
    table = list(csv.reader(io.StringIO(out.getvalue())))
    assert table[0] == list(render.CSV_HEADER)
    assert len(table) == 1 + len(RECORDED["syscalls"])
    fchdir = next(r for r in table if r[0] == "fchdir")
    assert fchdir[:3] == ["fchdir", "777", "777"]
    assert float(fchdir[4]) == pytest.approx(100 * 777 / 2317, abs=0.001)
    assert [r[0] for r in table[1:]] == sorted(r[0] for r in table[1:])
