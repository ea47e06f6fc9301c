"""Property-based: hostile and random input to the parsers and the validator. Each either
returns well-formed data or raises its own documented error, never anything else."""

from __future__ import annotations

import json
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from plugin import report
from plugin.errors import ContractError, HelperError
from plugin.helper import cgroup, perf

from .test_perf import cgroups_of, recorded
from .test_report import INTERVALS as BY_ENGINE
from .test_report import PIDS, TARGETS
from .test_report import RECORDED as REPORTS

INTERVALS, RECORDED = BY_ENGINE["bpf"], REPORTS["bpf"]

LINES, COUNTERS = recorded("interval-two-cgroups.csv")
CGROUPS = cgroups_of(LINES)
text = st.text(alphabet=st.characters(codec="utf-8"), max_size=400)
lines_of_text = st.lists(text, max_size=40)


@settings(max_examples=300, deadline=None)
@given(lines_of_text)
def test_perf_parser_on_random_lines(lines: list[str]) -> None:
    try:
        counts = perf.parse_interval(lines, COUNTERS, CGROUPS)
    except perf.PerfOutputError:
        return
    assert all(v >= 0 for c in counts for v in c.calls.values())


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(LINES) - 1),
       st.sampled_from(range(8)), text)
def test_perf_parser_on_one_mutated_field(line_no: int, field_no: int, value: str) -> None:
    fields = LINES[line_no].rstrip("\n").split(",")
    fields[field_no] = value
    mutated = [*LINES[:line_no], ",".join(fields), *LINES[line_no + 1:]]
    try:
        counts = perf.parse_interval(mutated, COUNTERS, CGROUPS)
    except perf.PerfOutputError:
        return
    # Accepted: then every count is a non-negative integer and every syscall is present.
    for c in counts:
        assert set(c.calls) == {counter.syscall for counter in COUNTERS}
        assert all(isinstance(v, int) and v >= 0 for v in c.calls.values())


@settings(max_examples=300, deadline=None)
@given(text, text)
def test_cgroup_resolver_on_random_text(proc_cgroup: str, mountinfo: str) -> None:
    try:
        got = cgroup.resolve(proc_cgroup, mountinfo)
    except cgroup.CgroupError:
        return
    assert got.name.startswith("/") and got.name != "/" and "," not in got.name
    assert ".." not in got.path.split("/")


path_part = st.text(alphabet=string.ascii_letters + string.digits + "._-@,: \\\n", min_size=1,
                    max_size=20)


@settings(max_examples=300, deadline=None)
@given(st.lists(path_part, min_size=0, max_size=6))
def test_cgroup_resolver_on_hostile_paths(parts: list[str]) -> None:
    path = "/" + "/".join(parts)
    mountinfo = "120 113 0:38 / /sys/fs/cgroup ro,relatime - cgroup2 cgroup2 rw\n"
    try:
        got = cgroup.resolve(f"0::{path}\n", mountinfo)
    except cgroup.CgroupError:
        return
    assert got.directory == "/sys/fs/cgroup" + got.name
    assert "," not in got.name and "\n" not in got.name


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | text,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(text, children, max_size=5),
    max_leaves=30,
)


def _validate(doc: object) -> None:
    raw = json.dumps(doc).encode()
    try:
        rep = report.from_helper(raw, targets=TARGETS, requested_seconds=3.0)
    except (ContractError, HelperError):
        return
    for row in rep.syscalls:
        assert row.name.isascii() and 0 <= row.calls and 0 <= row.errors
    assert [t.target.pid for t in rep.targets] == PIDS


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_report_validator_on_random_json(doc: object) -> None:
    _validate(doc)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["schema", "kind", "partial", "stopped", "targets", "window", "host",
                        "tracepoints"]),
       json_values)
def test_report_validator_on_one_replaced_field(key: str, value: object) -> None:
    _validate({**RECORDED, key: value})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.fixed_dictionaries({"name": text, "calls": st.integers(), "errors": st.integers()}),
                max_size=20))
def test_report_validator_on_random_rows(rows: list[dict]) -> None:
    targets = [dict(RECORDED["targets"][0], syscalls=rows), RECORDED["targets"][1]]
    _validate({**RECORDED, "targets": targets})


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["schema", "kind", "index", "seconds", "targets"]), json_values)
def test_interval_validator_on_one_replaced_field(key: str, value: object) -> None:
    doc = {**json.loads(INTERVALS[1]), key: value}
    try:
        interval = report.interval_from_helper(json.dumps(doc).encode(), pids=PIDS, previous=1.0)
    except (ContractError, HelperError):
        return
    assert interval.seconds >= 1.0 and len(interval.targets) == 2
