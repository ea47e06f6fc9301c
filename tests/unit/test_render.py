"""Rendering a report loaded from the recorded helper document."""

from __future__ import annotations

import io
import json

from plugin import render

from .test_report import RECORDED, load


def test_table_has_rows_by_calls_a_total_and_no_zero_rows() -> None:
    text = render.table(load(RECORDED))
    lines = text.splitlines()
    assert lines[0].startswith("web (17e0b4d4db5c): 2,317 syscalls in 2.00 s")
    assert lines[2].split() == ["SYSCALL", "CALLS", "ERRORS", "CALLS/S", "SHARE"]
    body = [line.split() for line in lines[4:] if line and not line.startswith("-")]
    assert body[0] == ["fchdir", "777", "777", "388.1", "33.5%"]
    assert body[-1][0] == "total" and body[-1][1:3] == ["2,317", "1,155"]
    assert len(body) == 9  # eight syscalls that were called, and the total
    assert "exit_group" not in text


def test_top_limits_rows_but_not_the_total() -> None:
    text = render.table(load(RECORDED), top=1)
    names = [line.split()[0] for line in text.splitlines()[4:] if line and line[0].isalpha()]
    assert names == ["fchdir", "total"]
    assert "2,317" in text


def test_partial_reports_say_so_in_the_title() -> None:
    doc = dict(RECORDED, partial=True)
    assert render.table(load(doc)).splitlines()[0].endswith(", PARTIAL")
    doc = dict(RECORDED, partial=True, stopped="target-exited")
    assert render.table(load(doc)).splitlines()[0].endswith(", PARTIAL (the container stopped)")
    doc = dict(RECORDED, partial=True, stopped="interrupted")
    assert render.table(load(doc)).splitlines()[0].endswith(", PARTIAL (interrupted)")


def test_json_format_is_one_document() -> None:
    out = io.StringIO()
    render.write(load(RECORDED), "json", out, top=2)
    doc = json.loads(out.getvalue())
    assert [r["name"] for r in doc["syscalls"]] == ["fchdir", "getppid"]
    assert doc["syscalls"][0]["calls_per_second"] == round(777 / 2.002160605, 3)
