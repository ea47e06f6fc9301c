"""bench/phases.py reads the plugin's own debug log: the two must agree on its format."""

from __future__ import annotations

import datetime
import io
import sys
from pathlib import Path

import pytest

from plugin import logs

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import phases  # noqa: E402

DAY = datetime.date(2026, 12, 5)


def at(clock: str) -> float:
    return datetime.datetime.combine(DAY, datetime.time.fromisoformat(clock)).timestamp()


def test_the_plugins_debug_lines_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    logs.setup("debug")
    try:
        log = logs.get_logger("test")
        log.debug("plugin started", at="08:03:35.281946")
        log.debug("connecting to the engine")
        log.info("counting", containers="web", engine="bpf")
    finally:
        logs.setup("warning")
    found = phases.stamps(err.getvalue(), datetime.date.today())
    assert set(found) == {"plugin started", "connecting to the engine", "counting"}
    started = datetime.datetime.fromtimestamp(found["plugin started"])
    assert started.time() == datetime.time(8, 3, 35, 281946)  # its at=, not the line's own time
    assert 0 <= found["counting"] - found["connecting to the engine"] < 1


def test_a_run_is_cut_into_its_phases() -> None:
    log = "\n".join([
        "08:00:00.100000 [debug    ] plugin started                 at=08:00:00.050000",
        "08:00:00.150000 [debug    ] connecting to the engine",
        "08:00:00.250000 [debug    ] helper created                 container=docker-spy-1",
        "08:00:00.400000 [debug    ] helper started",
        "08:00:00.500000 [info     ] counting                       containers=web",
        "08:00:00.600000 [info     ] counting                       containers=again",
        "garbage that is not a log line",
        "08:00:02.510000 [debug    ] report received                size=6474",
        "08:00:02.515000 [debug    ] report printed",
    ])
    cut = phases.cut(at("08:00:00.000000"), at("08:00:02.565000"), phases.stamps(log, DAY))
    assert [round(v, 3) for v in cut.values()] == [0.05, 0.1, 0.1, 0.15, 0.1, 2.01, 0.005, 0.05]
    assert list(cut) == [phase for phase, _ in phases.STEPS]
    assert sum(cut.values()) == pytest.approx(2.565)


def test_a_log_without_a_step_is_refused() -> None:
    log = "08:00:00.100000 [debug    ] plugin started                 at=08:00:00.050000"
    with pytest.raises(RuntimeError, match="connecting to the engine"):
        phases.cut(at("08:00:00.000000"), at("08:00:01.000000"), phases.stamps(log, DAY))


def test_the_section_prints_the_target_and_every_phase() -> None:
    values = {row: {"quiet": [0.1, 0.2, 0.3], "busy": [0.4, 0.5, 0.6]} for row in phases.ROWS}
    values["time to result"] = {"quiet": [2.6, 2.7, 2.5], "busy": [3.0, 2.9, 2.8]}
    lines = phases.section(values)
    assert "medians of 3" in lines[0] and "window + 0.8 s" in lines[0]
    assert lines[1:3] == [f"  quiet: {phases.TARGETS['quiet']}", f"  busy: {phases.TARGETS['busy']}"]
    assert lines[3].split() == ["quiet", "busy"]
    rows = {" ".join(line.split()[:-2]): line.split()[-2:] for line in lines[4:]}
    assert rows["time to result"] == ["2.600", "2.900"]
    assert rows["over the window"] == ["+0.600", "+0.900"]
    assert all(rows[phase] == ["0.200", "0.500"] for phase, _ in phases.STEPS)
    assert len(lines) == 4 + len(phases.ROWS) + 1
