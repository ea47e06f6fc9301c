"""docker spy's own `--format json` output is what `docker spy diff` reads: the recorded helper
documents of both engines (tests/fixtures/helper), loaded and rendered as the plugin prints
them, then handed to diff.parse and diff.load. A renamed or retyped field on either side
fails here, not in a user's hands."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import datetime
from pathlib import Path

import pytest

from plugin import diff, render, report
from plugin.render import View

from .test_report import RECORDED, load

ENGINES = ("bpf", "perf")
VIEWS = [View(fmt="json"), View(fmt="json", top=2), View(fmt="json", all=True, sort="name"),
         View(fmt="json", by_class=True, sort="errors")]


JSON = View(fmt="json")


def printed(rep: report.Report, view: View = JSON) -> bytes:
    """What `docker spy ... --format json` writes to stdout."""
    out = io.StringIO()
    render.write(rep, view, out)
    return out.getvalue().encode()


def recorded_rows(engine: str) -> dict[str, diff.Count]:
    """The recorded document's rows of both targets, added up by hand: name -> calls, errors and
    errnos, for the syscalls that were called or failed."""
    calls: dict[str, list[int]] = {}
    errnos: dict[str, dict[str, int]] = {}
    for target in RECORDED[engine]["targets"]:
        for row in target["syscalls"]:
            sums = calls.setdefault(row["name"], [0, 0])
            sums[0] += row["calls"]
            sums[1] += row["errors"]
            for e, n in row.get("errnos", {}).items():
                errnos.setdefault(row["name"], {})[e] = errnos.get(row["name"], {}).get(e, 0) + n
    def most_first(name: str) -> tuple[tuple[str, int], ...]:
        return tuple(sorted(errnos.get(name, {}).items(), key=lambda en: (-en[1], en[0])))

    return {name: diff.Count(c, e, most_first(name)) for name, (c, e) in calls.items() if c or e}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("view", VIEWS, ids=["plain", "top2", "all-by-name", "by-class"])
def test_diff_reads_what_the_plugin_prints(engine: str, view: View) -> None:
    doc = RECORDED[engine]
    snap = diff.parse(printed(load(doc), view), "web.json")
    assert snap.source == "web.json"
    assert snap.names == ("web", "db")
    assert snap.requested_seconds == doc["window"]["requested_seconds"]
    assert snap.measured_seconds == doc["window"]["measured_seconds"]
    assert snap.started_at == datetime.fromisoformat(doc["window"]["started_at"])
    rows = recorded_rows(engine)
    assert snap.total == diff.Count(sum(c.calls for c in rows.values()), sum(c.errors for c in rows.values()))
    listed = {name: count for name, count in snap.syscalls if count.calls or count.errors}
    if view.top is None:
        assert listed == rows and snap.complete
    else:  # --top lists the busiest only, and diff says it cannot tell new from gone then
        assert len(listed) == view.top and all(rows[n] == c for n, c in listed.items())
        assert not snap.complete
    assert snap.partial is False and snap.stopped is None


@pytest.mark.parametrize("engine", ENGINES)
def test_report_to_document_is_a_report_diff_reads(engine: str, tmp_path: Path) -> None:
    doc = report.to_document(load(RECORDED[engine]))
    path = tmp_path / "report.json"
    path.write_text(json.dumps(doc))
    snap = diff.load(str(path))
    assert snap.names == ("web", "db") and dict(snap.syscalls) == recorded_rows(engine)
    assert snap.started_at == datetime.fromisoformat(RECORDED[engine]["window"]["started_at"])


@pytest.mark.parametrize("engine", ENGINES)
def test_a_report_compared_with_itself_is_the_same_everywhere(engine: str) -> None:
    snap = diff.parse(printed(load(RECORDED[engine])), "a.json")
    result = diff.compare(snap, snap)
    assert {c.status for c in result.syscalls} == {"same"}
    assert [c.name for c in result.syscalls] == sorted(recorded_rows(engine))  # no change: by name
    assert result.total.status == "same" and result.appeared == result.disappeared == ()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_partial_report_with_an_exited_target_is_read_too(engine: str) -> None:
    doc = json.loads(json.dumps(RECORDED[engine]))
    doc.update(partial=True, stopped="target-exited")
    doc["targets"][1]["exited"] = True
    snap = diff.parse(printed(load(doc)), "cut.json")
    assert (snap.partial, snap.stopped) == (True, "target-exited")
    assert snap.names == ("web", "db")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("stopped", report.STOP_REASONS)
def test_every_stop_reason_the_plugin_prints_is_one_diff_knows(engine: str, stopped: str) -> None:
    rep = dataclasses.replace(load(RECORDED[engine]), partial=True, stopped=stopped)
    assert diff.parse(printed(rep), "a.json").stopped == stopped


@pytest.mark.parametrize("engine", ENGINES)
def test_a_report_counted_until_ctrl_c_has_no_requested_window_and_is_read(engine: str) -> None:
    rep = load(RECORDED[engine])
    rep = dataclasses.replace(rep, window=dataclasses.replace(rep.window, requested_seconds=None))
    snap = diff.parse(printed(rep), "a.json")
    assert snap.requested_seconds is None
    assert snap.measured_seconds == RECORDED[engine]["window"]["measured_seconds"]
