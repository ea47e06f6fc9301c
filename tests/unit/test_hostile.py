"""Property-based: the parsers and validators on valid input generated from the recorded fixtures
and the contract's schema, then on the same input perturbed. Valid input must be accepted and
read exactly as generated; perturbed input is either refused with the module's own error or
accepted and still right. `event()` labels each example, so
`pytest tests/unit/test_hostile.py --hypothesis-show-statistics` shows how many were accepted."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from plugin import report
from plugin.errors import ContractError, HelperError
from plugin.helper import cgroup, perf

from .strategies import HelperReport, counts, helper_intervals, helper_reports, perturbed, text
from .test_cgroup import texts
from .test_perf import cgroups_of, recorded
from .test_report import RECORDED

LINES, COUNTERS = recorded("interval-two-cgroups.csv")
CGROUPS = cgroups_of(LINES)
CGROUP_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cgroup"
LAYOUTS = sorted(p.name for p in CGROUP_FIXTURES.iterdir() if (p / "expected.json").is_file())


def accepted(ok: bool, why: str = "") -> None:
    event("accepted" if ok else f"refused: {why}"[:60])


# --- perf's output ------------------------------------------------------------------------------

def printed_counts(lines: list[str]) -> list[tuple[dict[str, int], dict[str, int]]]:
    """What each data line says, read by its position: cgroup by cgroup, counter by counter."""
    data = [line for line in lines if perf.is_data_line(line)]
    out = []
    for i in range(len(CGROUPS)):
        calls: dict[str, int] = {}
        errors: dict[str, int] = {}
        for line, counter in zip(data[i * len(COUNTERS):(i + 1) * len(COUNTERS)], COUNTERS, strict=True):
            field = line.split(",")[1]
            n = 0 if field in ("<not counted>", "") else int(field)
            into = calls if counter.kind == "calls" else errors
            into[counter.syscall] = into.get(counter.syscall, 0) + n
        out.append((calls, errors))
    return out


VALID_PERF_CHANGES = ("none", "slash", "comment")


@st.composite
def perf_outputs(draw: st.DrawFn) -> tuple[list[str], list[str], str]:
    """The recorded two-cgroup interval with other counts and another stamp, perturbed or not;
    the cgroup names the helper gives (with or without the leading slash); the change."""
    stamp = f"{draw(st.floats(0.001, 1e6)):.9f}"
    new = draw(st.dictionaries(st.integers(0, len(LINES) - 1),
                               counts.map(str) | st.just("<not counted>"), max_size=12))
    lines = []
    for i, line in enumerate(LINES):
        fields = line.rstrip("\n").split(",")
        fields[0], fields[1] = stamp, new.get(i, fields[1])
        lines.append(",".join(fields) + "\n")
    names = [("/" if draw(st.booleans()) else "") + name for name in CGROUPS]
    change = draw(st.sampled_from([*VALID_PERF_CHANGES, "field", "field", "drop", "swap", "insert"]))
    at = draw(st.integers(0, len(lines) - 1))
    if change == "slash":  # the names as given, if a perf printed them so: the same cgroups
        lines = [",".join(f if k != 4 else "/" + f for k, f in enumerate(line.split(","))) for line in lines]
    elif change == "comment":
        lines.insert(at, draw(st.sampled_from(["\n", "# started on Wed Nov 25\n", "   \n"])))
    elif change == "field":
        fields = lines[at].split(",")
        fields[draw(st.integers(0, 7))] = draw(text | st.sampled_from(["0", "-1", "", "<not supported>"]))
        lines[at] = ",".join(fields)
    elif change == "drop":
        del lines[at]
    elif change == "swap":
        other = draw(st.integers(0, len(lines) - 1))
        lines[at], lines[other] = lines[other], lines[at]
    elif change == "insert":
        lines.insert(at, draw(text))
    return lines, names, change


@settings(deadline=None)
@given(perf_outputs())
def test_perf_parser_on_generated_and_perturbed_output(drawn: tuple[list[str], list[str], str]) -> None:
    lines, names, change = drawn
    try:
        got = perf.parse_interval(lines, COUNTERS, names)
    except perf.PerfOutputError as e:
        accepted(False, change)
        assert change not in VALID_PERF_CHANGES, f"valid output refused: {e}"
        return
    accepted(True)
    # Accepted: every line was the counter and cgroup its place says, of one interval, and
    # each count is the one printed.
    data = [line.rstrip("\n").split(",") for line in lines if perf.is_data_line(line)]
    for i, name in enumerate(names):
        for fields, counter in zip(data[i * len(COUNTERS):(i + 1) * len(COUNTERS)], COUNTERS, strict=True):
            assert fields[3] == counter.event and fields[4].lstrip("/") == name.lstrip("/")
            assert float(fields[0]) == got[i].seconds
    assert [(c.calls, c.errors) for c in got] == printed_counts(lines)


# --- /proc/<pid>/cgroup and mountinfo -----------------------------------------------------------

SAFE_PART = st.text(string.ascii_letters + string.digits + "._-@", min_size=1, max_size=20).filter(
    lambda p: p not in (".", ".."))
HOSTILE_PART = st.text(string.ascii_letters + string.digits + "._-@,: \\\n", min_size=1, max_size=20)


@st.composite
def cgroup_texts(draw: st.DrawFn) -> tuple[str, str, dict[str, Any], str]:
    """A recorded layout's two texts with the target moved to another cgroup below the same
    mount root, then perturbed or not; what must come of them; the change."""
    layout = draw(st.sampled_from(LAYOUTS))
    proc, mountinfo = texts(layout)  # as the helper reads them
    want = json.loads((CGROUP_FIXTURES / layout / "expected.json").read_text())
    root = want["perf"]["path"][:len(want["perf"]["path"]) - len(want["perf"]["name"])]  # the mount's
    change = draw(st.sampled_from(["none", "none", "hostile", "drop", "insert"]))
    parts = draw(st.lists(HOSTILE_PART if change == "hostile" else SAFE_PART, min_size=1, max_size=6))
    name = "/" + "/".join(parts)
    proc = proc.replace(want["perf"]["path"], root + name)
    expected = {"name": name, "path": root + name, "level": len((root + name).strip("/").split("/")),
                "directory": want["perf"]["directory"][:-len(want["perf"]["name"])] + name,
                "v2_directory": want["v2"]["directory"][:-len(want["perf"]["name"])] + name,
                "mount_point": want["perf"]["mount_point"]}
    if change in ("drop", "insert"):
        which = draw(st.booleans())
        lines = (proc if which else mountinfo).splitlines(keepends=True)
        at = draw(st.integers(0, len(lines) - 1))
        if change == "drop":
            del lines[at]
        else:
            lines.insert(at, draw(text) + "\n")
        proc, mountinfo = ("".join(lines), mountinfo) if which else (proc, "".join(lines))
    return proc, mountinfo, expected, change


@settings(deadline=None)
@given(cgroup_texts())
def test_cgroup_resolvers_on_recorded_layouts_moved_and_perturbed(drawn: tuple[str, str, dict, str]) -> None:
    proc, mountinfo, want, change = drawn
    try:
        got = cgroup.resolve(proc, mountinfo)
        v2 = cgroup.resolve_v2(proc, mountinfo)
    except cgroup.CgroupError as e:
        accepted(False, change)
        assert change != "none", f"a valid layout refused: {e}"
        return
    accepted(True)
    # Accepted: the name perf is given is below its mount, no pattern perf would misread, and
    # a suffix of the process's cgroup; the BPF engine's cgroup is the process's own.
    assert got.name.startswith("/") and got.name != "/" and "," not in got.name
    assert ".." not in got.path.split("/") and got.path.endswith(got.name)
    assert got.directory == got.mount_point.rstrip("/") + got.name
    assert v2.level == len([p for p in v2.path.split("/") if p]) and v2.directory.endswith(got.name)
    if change == "none":
        assert (got.name, got.path, got.directory, got.mount_point) == (
            want["name"], want["path"], want["directory"], want["mount_point"])
        assert (v2.path, v2.directory, v2.level) == (want["path"], want["v2_directory"], want["level"])


# --- the helper's documents ---------------------------------------------------------------------

def expected_rows(doc: dict[str, Any], counted: list[str]) -> list[dict[str, tuple]]:
    """Each target's rows as the generated document has them, the counted ones it left out as 0."""
    out = []
    for target in doc["targets"]:
        rows = {name: (0, 0, None, None, None) for name in counted}
        for r in target["syscalls"]:
            errnos = r.get("errnos")
            rows[r["name"]] = (r["calls"], r["errors"],
                               tuple(sorted(((e, n) for e, n in errnos.items() if n),
                                            key=lambda en: (-en[1], en[0]))) if errnos is not None else None,
                               r.get("time_ns"), r.get("max_ns"))
        out.append(rows)
    return out


def as_rows(syscalls: tuple[report.SyscallCount, ...]) -> dict[str, tuple]:
    return {s.name: (s.calls, s.errors, s.errnos, s.time_ns, s.max_ns) for s in syscalls}


def check_accepted_report(rep: report.Report, drawn: HelperReport, doc: dict[str, Any]) -> None:
    # The cgroup is the accepted document's (a perturbed text is still a text); the rest the plugin's.
    assert [t.target for t in rep.targets] == [
        report.TargetInfo(t.id, t.name, t.pid, e["cgroup"]) for t, e in zip(
            drawn.targets, doc["targets"], strict=True)]
    for t in rep.targets:
        assert list(t.syscalls) == sorted(t.syscalls, key=lambda s: (-s.calls, -s.errors, s.name))
        for s in t.syscalls:
            assert 0 <= s.calls <= report.MAX_COUNT and 0 <= s.errors <= report.MAX_COUNT
            assert s.errnos is None or sum(n for _, n in s.errnos) == s.errors
            assert s.time_ns is None or s.max_ns <= s.time_ns
    assert rep.total_calls == sum(t.total_calls for t in rep.targets)
    assert rep.window.measured_seconds <= rep.window.requested_seconds * 1.05 + 1


@settings(deadline=None)
@given(st.data())
def test_report_validator_on_generated_and_perturbed_documents(data: st.DataObject) -> None:
    drawn = data.draw(helper_reports(RECORDED["bpf"]))
    doc, change = data.draw(perturbed(drawn.doc))
    try:
        rep = report.from_helper(json.dumps(doc).encode(), targets=drawn.targets,
                                 requested_seconds=drawn.requested_seconds)
    except (ContractError, HelperError) as e:
        accepted(False, change.how)
        # A key nobody reads is ignored, except in a map of errnos, where every key is one.
        assert change.how not in ("none", "add") or "errnos" in change.path, f"{change} refused: {e}"
        return
    accepted(True)
    check_accepted_report(rep, drawn, doc)
    if change.how in ("none", "add"):
        want = expected_rows(drawn.doc, drawn.counted)
        assert [as_rows(t.syscalls) for t in rep.targets] == want
        names = {n for rows in want for n in rows}
        assert {s.name: (s.calls, s.errors) for s in rep.syscalls} == {
            n: (sum(rows[n][0] for rows in want if n in rows), sum(rows[n][1] for rows in want if n in rows))
            for n in names}
        window, host = drawn.doc["window"], drawn.doc["host"]
        assert rep.window == report.Window(window["requested_seconds"], window["measured_seconds"],
                                           window["started_at"])
        assert rep.host == report.Host(host["kernel"], host["arch"], host["cpus"], host["cgroup_version"],
                                       host["cgroup_layout"], host["engine_version"])
        assert (rep.engine, rep.latency, rep.partial, rep.stopped) == (
            drawn.doc["engine"], drawn.doc["latency"], drawn.doc["partial"], drawn.doc["stopped"])
        cost = drawn.doc.get("cost")
        assert rep.cost == (report.Cost(cost["runs"], cost["run_time_ns"]) if cost else None)


@settings(deadline=None)
@given(st.data())
def test_interval_validator_on_generated_and_perturbed_documents(data: st.DataObject) -> None:
    doc, pids, previous = data.draw(helper_intervals(RECORDED["bpf"]["syscalls_counted"]))
    changed, change = data.draw(perturbed(doc))
    try:
        interval = report.interval_from_helper(json.dumps(changed).encode(), pids=pids, previous=previous)
    except (ContractError, HelperError) as e:
        accepted(False, change.how)
        assert change.how not in ("none", "add") or "errnos" in change.path, f"{change} refused: {e}"
        return
    accepted(True)
    assert interval.seconds >= previous and len(interval.targets) == len(pids)
    assert all(0 <= s.calls <= report.MAX_COUNT and 0 <= s.errors <= report.MAX_COUNT
               for rows in interval.targets for s in rows)
    if change.how in ("none", "add"):
        assert (interval.index, interval.seconds) == (doc["index"], doc["seconds"])
        assert [{s.name: (s.calls, s.errors) for s in rows} for rows in interval.targets] == [
            {r["name"]: (r["calls"], r["errors"]) for r in t["syscalls"]} for t in doc["targets"]]
