"""--by-process: what the kernel's maps become (bpfengine.processes_of), what the helper reports
of each process (helper/processes.py, main.by_process), how the plugin checks it (the processes
and the rest add up to their target, syscall by syscall) and shows it (table, CSV, JSON). The
recorded report is the helper's real output on tests/e2e/family.c."""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from plugin import render, report
from plugin.errors import ContractError
from plugin.helper import bpfengine, processes, systables
from plugin.helper import main as helper
from plugin.helper.engine import Counts, Process, Processes

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "helper" / "report-by-process.json"
RECORDED = json.loads(FIXTURE.read_text())
TARGET = [report.TargetInfo("f" * 64, "family", RECORDED["targets"][0]["pid"])]
X86 = systables.for_machine("x86_64")
A, B, C, D = 1500, 700, 900, 1100  # as record.sh made the family do


def load(doc: Any) -> report.Report:
    return report.from_helper(json.dumps(doc).encode(), targets=TARGET, requested_seconds=3.0,
                              by_process=True)


def calls(rows: Any, name: str) -> int:
    return next((s.calls for s in rows if s.name == name), 0)


# --- the recorded report ---------------------------------------------------------------------

def test_the_recorded_family_loads_with_its_processes_apart() -> None:
    rep = load(RECORDED)
    assert rep.by_process
    (t,) = rep.targets
    by_comm = {p.comm: p for p in t.processes or ()}
    assert list(by_comm) == ["parent", "child-c", "child-b"]  # most calls first
    parent, b, c = by_comm["parent"], by_comm["child-b"], by_comm["child-c"]
    assert parent.pid == 1 and calls(parent.syscalls, "getppid") == A
    assert calls(parent.syscalls, "getuid") == D  # its thread's calls are its own
    assert calls(b.syscalls, "getpgid") == B and calls(c.syscalls, "getpgid") == C
    assert (parent.exited, b.exited, c.exited) == (False, False, True)
    assert parent.cmdline == "/spy/workload" and t.other_processes is None
    assert sum(p.total_calls for p in by_comm.values()) == t.total_calls


def test_a_report_without_processes_is_refused_where_they_were_asked_for() -> None:
    with pytest.raises(ContractError, match="by_process is not what was asked for"):
        report.from_helper(FIXTURE.read_bytes(), targets=TARGET, requested_seconds=3.0)


def changed(change: Any) -> dict:
    doc = copy.deepcopy(RECORDED)
    change(doc["targets"][0])
    return doc


def first_row(t: dict, name: str) -> dict:
    return next(r for r in t["processes"][0]["syscalls"] if r["name"] == name)


@pytest.mark.parametrize(("change", "says"), [
    (lambda t: first_row(t, "getppid").update(calls=A + 1), "total is not the sum of its syscalls"),
    (lambda t: (first_row(t, "getppid").update(calls=A + 1), t["processes"][0]["total"].update(
        calls=t["processes"][0]["total"]["calls"] + 1)), "do not add up to it"),
    (lambda t: t["processes"].pop(), "do not add up to it"),
    (lambda t: t["processes"].append(t["processes"][0]), "lists a process twice"),
    (lambda t: t["processes"][0].update(comm="x" * 17), "comm is longer than a command name"),
    (lambda t: t["processes"][0].update(comm="a\nb"), "comm is not short printable text"),
    (lambda t: t["processes"][0].update(pid=0), "pid is out of range"),
    (lambda t: t["processes"][0].update(host_pid=None), "host_pid has the wrong type"),
    (lambda t: t["processes"][0].update(exited=1), "exited has the wrong type"),
    (lambda t: t["processes"][0].update(cmdline="\x00"), "cmdline is not short printable text"),
    (lambda t: first_row(t, "getppid").update(time_ns=5, max_ns=1), "latency was not measured"),
    (lambda t: t.pop("processes"), "processes is missing"),
    (lambda t: t.update(other_processes=[]), "other_processes has the wrong type"),
    (lambda t: t.update(processes=[t["processes"][0]] * 101), "more than 100 processes"),
])
def test_hostile_processes_are_refused(change: Any, says: str) -> None:
    with pytest.raises(ContractError) as info:
        load(changed(change))
    assert says in info.value.what, info.value.what


def moved_to_rest(t: dict, processes_in_it: int = 4, more: bool = False) -> None:
    """The last process's counts become the rest's, as if it had not been kept."""
    gone = t["processes"].pop()
    t["other_processes"] = {"processes": processes_in_it, "more": more, "total": gone["total"],
                            "syscalls": gone["syscalls"]}


def test_the_rest_adds_up_and_says_how_many_processes_it_holds() -> None:
    (t,) = load(changed(moved_to_rest)).targets
    assert len(t.processes or ()) == 2 and t.other_processes is not None
    assert t.other_processes.processes == 4 and calls(t.other_processes.syscalls, "getpgid") == B
    doc = report.to_document(load(changed(moved_to_rest)))
    rest = doc["targets"][0]["other_processes"]
    assert rest["processes"] == 4 and rest["total"]["calls"] == t.other_processes.total_calls
    assert doc["by_process"] is True and [p["comm"] for p in doc["targets"][0]["processes"]] == \
        ["parent", "child-c"]


# --- the table and CSV ---------------------------------------------------------------------------

def test_the_table_has_a_row_per_process_and_one_for_the_rest() -> None:
    text = render.table(load(changed(lambda t: moved_to_rest(t, 4, True))), render.View())
    block = text.split("\n\nfamily: 6+ processes\n\n", 1)[1].splitlines()
    assert block[0].split() == ["PID", "COMMAND", "CALLS", "ERRORS", "TOP", "SYSCALL", "TOP", "ERRNO",
                                "CALLS/S", "SHARE", "COMMAND", "LINE"]
    parent = block[2].split()
    assert parent[:2] == ["1", "parent"] and parent[-1] == "/spy/workload"
    assert block[3].split()[1:3] == ["child-c", "(exited)"]
    assert block[4].split()[:3] == ["other", "processes", "(4+)"]


def test_top_cuts_processes_into_the_rest() -> None:
    text = render.table(load(RECORDED), render.View(top=1))
    block = text.split("\n\nfamily: 3 processes\n\n", 1)[1].splitlines()
    assert [line.split()[1] for line in block[2:]] == ["parent", "processes"]
    rest = block[3].split()
    assert rest[:3] == ["other", "processes", "(2)"]
    (t,) = load(RECORDED).targets
    assert rest[3] == f"{t.total_calls - (t.processes or ())[0].total_calls:,}"


def test_a_target_whose_processes_made_no_call_says_so() -> None:
    def quiet(t: dict) -> None:
        t["processes"], t["other_processes"], t["syscalls"] = [], None, []

    text = render.table(load(changed(quiet)), render.View())
    assert text.endswith("\n\nfamily: no process made a syscall in the window")


def test_csv_has_a_row_per_process_and_syscall() -> None:
    out = io.StringIO()
    render.write(load(changed(moved_to_rest)), render.View(fmt="csv"), out)
    lines = list(csv.reader(io.StringIO(out.getvalue())))
    assert lines[0][:4] == ["container", "pid", "comm", "syscall"]
    by = {(row[1], row[2], row[3]): int(row[4]) for row in lines[1:]}
    assert by[("1", "parent", "getppid")] == A and by[("1", "parent", "getuid")] == D
    assert by[("", render.OTHER, "getpgid")] == B


def test_top_of_and_top_errno_of() -> None:
    rows = (report.SyscallCount("read", 3, 1, (("EBADF", 1),)),
            report.SyscallCount("open", 1, 1, (("ENOENT", 1),)),
            report.SyscallCount("close", 6, 2, (("EBADF", 2),)))
    assert render.top_of(rows, 10) == "close 60%" and render.top_of((), 0) == ""
    assert render.top_errno_of(rows) == "EBADF 75%" and render.top_errno_of(rows[:0]) == ""


# --- the helper ------------------------------------------------------------------------------------

def seen(comm: str, *nspids: int, cmd: str = "/bin/app") -> processes.Seen:
    return processes.Seen(comm, cmd, nspids)


def family() -> Processes:
    return Processes([
        Process(100, "app", False, Counts({"read": 5, "close": 2}, {"read": 1}, {"read": {"EBADF": 1}})),
        Process(101, "sh", True, Counts({"read": 1, "wait4": 1}, {})),
        Process(102, "sh", False, Counts({"openat": 3}, {"openat": 3}, {"openat": {"ENOENT": 3}}), lost=2),
    ], folded=7)


def test_the_helper_reports_each_process_as_proc_last_showed_it() -> None:
    total = Counts({"read": 9, "close": 2, "wait4": 1, "openat": 5, "futex": 4},
                   {"read": 2, "openat": 5}, {"read": {"EBADF": 2}, "openat": {"ENOENT": 5}})
    looks = {100: (seen("app", 100, 1), True), 101: (seen("sh", 101, 5, cmd="sh -c x"), False),
             102: (seen("curl", 102, 6), False)}
    out = helper.by_process(total, family(), None, 1, lambda pid: looks.get(pid, (None, False)))
    app, other_sh, sh_exited = out["processes"]  # most calls first
    assert (app["pid"], app["comm"], app["cmdline"], app["exited"]) == (1, "app", "/bin/app", False)
    assert app["total"] == {"calls": 7, "errors": 1}
    # /proc saw it before it exited, under the same name: its pid and command line are kept.
    assert (sh_exited["pid"], sh_exited["cmdline"], sh_exited["exited"]) == (5, "sh -c x", True)
    # /proc saw it before an execve that renamed it: the pid stays, the command line is not its.
    assert (other_sh["pid"], other_sh["comm"], other_sh["cmdline"]) == (6, "sh", None)
    assert other_sh["lost"] == 2 and "lost" not in app
    rest = out["other_processes"]
    assert rest["processes"] == 7 and rest["more"] is False
    assert {r["name"]: (r["calls"], r["errors"]) for r in rest["syscalls"]} == \
        {"read": (3, 1), "openat": (2, 2), "futex": (4, 0)}
    assert {r["name"]: r.get("errnos") for r in rest["syscalls"]}["openat"] == {"ENOENT": 2}


def test_the_helper_keeps_the_syscalls_asked_for_and_drops_processes_without_them() -> None:
    total = Counts({"read": 6, "close": 2, "wait4": 1, "openat": 3}, {"read": 1, "openat": 3},
                   {"read": {"EBADF": 1}, "openat": {"ENOENT": 3}})
    out = helper.by_process(helper.selected(total, frozenset({"read"})), family(), frozenset({"read"}), 0,
                            lambda pid: (None, False))
    assert [p["host_pid"] for p in out["processes"]] == [100, 101]  # 102 made no read
    assert all(r["name"] == "read" for p in out["processes"] for r in p["syscalls"])
    assert out["processes"][0]["pid"] is None  # /proc never showed it
    assert out["other_processes"] == {"processes": 7, "more": False, "total": {"calls": 0, "errors": 0},
                                      "syscalls": []}


def test_the_helpers_process_rows_at_their_edges() -> None:
    # Asked for read: a process that made none is passed over, not the end of the list; /proc's
    # name for a process that still runs (the kernel's is from its last execve); equal calls,
    # more errors first; the rest has calls and no errors, and no process: it is still shown.
    procs = Processes([Process(7, "tiny", False, Counts({"close": 9}, {})),
                       Process(8, "old", False, Counts({"read": 4}, {})),
                       Process(9, "b", False, Counts({"read": 4}, {"read": 2}, {"read": {"EAGAIN": 2}}))])
    total = Counts({"read": 11, "close": 9}, {"read": 2}, {"read": {"EAGAIN": 2}})
    looks = {8: (seen("new", 8, 2), True)}
    out = helper.by_process(helper.selected(total, frozenset({"read"})), procs, frozenset({"read"}), 1,
                            lambda pid: looks.get(pid, (None, False)))
    assert [(p["host_pid"], p["pid"], p["comm"]) for p in out["processes"]] == [(9, None, "b"), (8, 2, "new")]
    assert out["other_processes"] == {"processes": 0, "more": False, "total": {"calls": 3, "errors": 0},
                                      "syscalls": [{"name": "read", "calls": 3, "errors": 0}]}


def test_no_rest_when_every_process_was_kept() -> None:
    one = Processes([Process(9, "a", False, Counts({"read": 2}, {}))])
    assert helper.by_process(Counts({"read": 2}, {}), one, None, 0, lambda pid: (None, False))[
        "other_processes"] is None


def test_processes_beyond_the_bound_join_the_rest() -> None:
    many = Processes([Process(i + 1, "w", False, Counts({"read": 1000 - i}, {}))
                      for i in range(processes.MAX_PROCESSES + 3)], folded=2, more=True)
    total = Counts({"read": sum(1000 - i for i in range(processes.MAX_PROCESSES + 3))}, {})
    out = helper.by_process(total, many, None, 0, lambda pid: (None, False))
    assert len(out["processes"]) == processes.MAX_PROCESSES
    assert out["other_processes"]["processes"] == 5 and out["other_processes"]["more"] is True
    assert out["other_processes"]["total"]["calls"] == sum(1000 - i for i in range(100, 103))


def test_processes_of_the_maps() -> None:
    # Another target's entries come first in both maps (the maps keep no order).
    procs = {(1, 200): (1, 0, 0, 0, 0, b"other"), (0, 100): (7, 1, 0, 0, 0, b"app\0\0\0"),
             (0, 101): (1, 0, 3, 1, 0, b"sh\0x"), (0, 102): (0, 0, 0, 0, 0, b"idl\xffe\0")}
    read, openat = 0, 257
    calls = {(1, 200, read, 0, 0): (1, 0), (0, 100, read, 0, 0): (5, 1), (0, 100, read, 0, 9): (1, 0),
             (0, 100, 3, 0, 0): (2, 0), (0, 101, openat, 0, 0): (1, 1),
             (0, 101, 3, bpfengine.ABI_COMPAT, 0): (2, 0), (0, 999, read, 0, 0): (4, 0)}  # 999: not kept
    got = bpfengine.processes_of(0, procs, calls, (3, 1), X86)
    assert got.folded == 3 and got.more is True
    app, sh, idle = got.kept
    # kept, but it made no call in the window; a name that is not UTF-8 is shown, not refused
    assert (idle.host_pid, idle.comm, idle.counts) == (102, "idl\ufffde", Counts({}, {}, {}))
    assert (app.host_pid, app.comm, app.exited, app.lost) == (100, "app", False, 0)
    assert app.counts == Counts({"read": 5, "close": 2}, {"read": 1}, {"read": {"EBADF": 1}})
    assert (sh.host_pid, sh.comm, sh.exited, sh.lost) == (101, "sh", True, 3)
    # a failure whose errno found no room is ELOST; a compat call has its compat_ name
    assert sh.counts == Counts({"openat": 1, "compat_read": 2}, {"openat": 1}, {"openat": {"ELOST": 1}})
    # read while counting goes on, the errno may simply not have been read yet: no ELOST then
    _, sh, _ = bpfengine.processes_of(0, procs, calls, (3, 1), X86, whole=False).kept
    assert sh.counts == Counts({"openat": 1, "compat_read": 2}, {"openat": 1}, {})


def test_minus_and_balanced() -> None:
    t = Counts({"read": 10, "close": 5}, {"read": 4, "close": 5},
               {"read": {"EBADF": 4}, "close": {"EBADF": 5}})
    p = Counts({"read": 6, "close": 5}, {"read": 2, "close": 5},
               {"read": {"EBADF": 1, "ELOST": 1}, "close": {"EBADF": 5}})
    assert processes.minus(t, p) == Counts({"read": 4}, {"read": 2}, {"read": {"EBADF": 2}})
    assert processes.minus(p, t) == Counts({}, {}, {})  # never below zero
    assert processes.balanced({"A": 3, "B": 1}, 2) == {"A": 1, "B": 1}
    assert processes.balanced({"A": 1}, 3) == {"A": 1, "ELOST": 2}
    assert processes.balanced({"A": 2, "B": 2}, 1) == {"B": 1}
    assert processes.balanced({}, 0) == {}
    assert processes.balanced({"A": 1, "B": 3}, 2) == {"A": 1, "B": 1}  # the most frequent first
    # a failure the target holds without its errno (never read): the rest's is ELOST
    assert processes.minus(Counts({"read": 3}, {"read": 2}), Counts({}, {})) == \
        Counts({"read": 3}, {"read": 2}, {"read": {"ELOST": 2}})
    # added up across processes, by syscall and errno
    one = Counts({"read": 2}, {"read": 1}, {"read": {"EBADF": 1}})
    assert processes.summed_counts([one, one]) == Counts({"read": 4}, {"read": 2}, {"read": {"EBADF": 2}})


def test_proc_texts() -> None:
    assert processes.cmdline(b"nginx: worker process\0\0") == "nginx: worker process"
    assert processes.cmdline(b"run\0caf\xc3\0-X\0") == "run caf? -X"  # not UTF-8: replaced, not refused
    exact = "x" * processes.CMDLINE_CHARS
    assert processes.printable(exact, processes.CMDLINE_CHARS) == exact  # at the limit: whole
    assert processes.printable("a~\x7f", 10) == "a~?"
    assert processes.in_target(seen("a", 40, 3), 0) == 40  # a target in the host's pid namespace
    assert processes.cmdline(b"sh\0-c\0echo hi\0") == "sh -c echo hi"
    long = processes.cmdline(b"x" * 500)
    assert len(long) == processes.CMDLINE_CHARS and long.endswith("...")
    assert processes.cmdline("caf\u00e9\tz".encode()) == "caf??z"
    assert processes.nspids("Name:\tx\nNSpid:\t5338\t1\n") == (5338, 1)
    assert processes.nspids("Name:\tx\n") == ()
    assert processes.zombie("State:\tZ (zombie)\n") and processes.zombie("State:\tX (dead)\n")
    assert not processes.zombie("State:\tS (sleeping)\n")
    assert processes.in_target(seen("a", 50, 7, 1), 1) == 7 and processes.in_target(seen("a", 50), 1) is None
    assert processes.in_target(None, 0) is None and processes.in_target(seen("a", 50), -1) is None
    assert processes.total(Counts({"a": 2, "b": 3}, {"a": 1})) == {"calls": 5, "errors": 1}


def test_look_and_cgroup_pids(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    for pid, state, comm in ((10, "S (sleeping)", "appX"), (11, "Z (zombie)", "gone")):
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "status").write_text(f"Name:\t{comm}\nState:\t{state}\nNSpid:\t{pid}\t3\n")
        (proc / str(pid) / "cmdline").write_bytes(b"/bin/app\0-v\0")
        (proc / str(pid) / "comm").write_text(comm + "\n")
    assert processes.look(10, str(proc)) == processes.Seen("appX", "/bin/app -v", (10, 3))
    me = processes.look(os.getpid())  # the real /proc by default
    assert me is not None and me.nspids[-1] == os.getpid()
    assert processes.look(11, str(proc)) is None and processes.look(12, str(proc)) is None
    # names that are not UTF-8 (a process names itself as it likes) and trailing blanks kept
    (proc / "13").mkdir()
    (proc / "13" / "status").write_bytes(b"Name:\tx\xff\nState:\tR (running)\nNSpid:\t13\n")
    (proc / "13" / "cmdline").write_bytes(b"")
    (proc / "13" / "comm").write_bytes(b"x\xff \n")
    assert processes.look(13, str(proc)) == processes.Seen("x\ufffd ", "", (13,))
    group = tmp_path / "cg"
    (group / "sub").mkdir(parents=True)
    (group / "cgroup.procs").write_text("10\n11\n")
    (group / "sub" / "cgroup.procs").write_text("12\n")
    assert sorted(processes.cgroup_pids(str(group), 10)) == [10, 11, 12]
    (group / "unreadable" / "below").mkdir(parents=True)  # no cgroup.procs: the walk goes on
    (group / "unreadable" / "below" / "cgroup.procs").write_text("14\n")
    assert sorted(processes.cgroup_pids(str(group), 10)) == [10, 11, 12, 14]
    assert len(processes.cgroup_pids(str(group), 2)) == 2


# --- diff --------------------------------------------------------------------------------------

def printed(doc: dict) -> bytes:
    """The report as `--format json` prints it."""
    return json.dumps(render.document(load(doc), render.View(fmt="json"))).encode()


def test_diff_matches_processes_by_command_name() -> None:
    from plugin import diff

    def busier(t: dict) -> None:  # child-b makes 300 more getpgid; new pids in the second run
        row = next(r for r in t["processes"][2]["syscalls"] if r["name"] == "getpgid")
        row["calls"] += 300
        t["processes"][2]["total"]["calls"] += 300
        next(r for r in t["syscalls"] if r["name"] == "getpgid")["calls"] += 300
        for p in t["processes"]:
            p["pid"], p["host_pid"] = (p["pid"] or 0) + 40, p["host_pid"] + 40

    before = diff.parse(printed(RECORDED), "a.json")
    after = diff.parse(printed(changed(busier)), "b.json")
    assert dict(before.processes or ())["child-b"].calls == 1122
    d = diff.compare(before, after)
    changes = {c.name: c for c in d.processes}
    assert set(changes) == {"parent", "child-b", "child-c"}
    assert changes["child-b"].after.calls - changes["child-b"].before.calls == 300
    assert changes["parent"].status == changes["child-c"].status == "same"
    assert d.processes[0].name == "child-b"  # the largest change first
    text = render.diff_table(d, list(d.syscalls))
    block = text.split("processes by command name (pids change between runs)\n\n", 1)[1].splitlines()
    assert block[0].split()[:3] == ["COMMAND", "CALLS", "A"]
    assert block[2].split()[:3] == ["child-b", "1,122", "1,422"]
    assert [p["name"] for p in render.diff_document(d, [])["processes"]][0] == "child-b"


def test_diff_sums_the_processes_of_a_name_and_the_rest() -> None:
    from plugin import diff

    snap = diff.parse(printed(changed(moved_to_rest)), "a.json")
    names = dict(snap.processes or ())
    assert set(names) == {"parent", "child-c", diff.OTHER} and names[diff.OTHER].calls == 1122
    from .test_report import RECORDED as PLAIN
    from .test_report import load as load_plain

    plain = diff.parse(json.dumps(report.to_document(load_plain(PLAIN["bpf"]))).encode(), "b.json")
    assert plain.processes is None
    assert diff.compare(snap, snap).processes and not diff.compare(plain, plain).processes


def test_a_swarm_tasks_helper_cannot_look_so_exited_is_the_kernels_word() -> None:
    blind = helper.Looker(None)
    assert blind.at_end(1) == (None, None) and blind.look(1) is None
    total = Counts({"read": 6, "close": 2, "wait4": 1, "openat": 3}, {"read": 1, "openat": 3},
                   {"read": {"EBADF": 1}, "openat": {"ENOENT": 3}})
    out = helper.by_process(total, family(), None, -1, blind.at_end)
    by_pid = {p["host_pid"]: p for p in out["processes"]}
    assert [by_pid[pid]["exited"] for pid in (100, 101, 102)] == [False, True, False]
    assert all(p["pid"] is None and p["cmdline"] is None for p in out["processes"])
    assert by_pid[102]["comm"] == "sh"  # the kernel's name


def test_the_looker_remembers_what_it_saw_while_a_process_ran() -> None:
    alive = {100: seen("app", 100, 1), 101: seen("sh", 101, 2)}

    class Engine:
        def process_ids(self) -> list[tuple[int, int]]:
            return [(0, 100), (0, 101), (0, 102)]

    looker = helper.Looker(lambda pid: alive.get(pid))
    looker.look_new(Engine())  # type: ignore[arg-type]
    assert set(looker.seen) == {100, 101}
    del alive[101]  # it exits
    assert looker.at_end(100) == (alive[100], True)
    assert looker.at_end(101) == (seen("sh", 101, 2), False)
    assert looker.at_end(102) == (None, False)


def test_a_report_so_far_covers_what_its_processes_add_up_to() -> None:
    # Read while counting goes on: the processes, read a moment after the target, made more calls.
    target = Counts({"read": 10, "close": 4}, {"read": 2}, {"read": {"EBADF": 2}})
    parts = [Counts({"read": 8, "open": 1}, {"read": 3, "open": 1}, {"read": {"EBADF": 2, "EINTR": 1},
                                                                     "open": {"ENOENT": 1}}),
             Counts({"read": 3, "close": 4}, {})]
    got = processes.covering(target, parts)
    assert got.calls == {"read": 11, "close": 4, "open": 1}
    assert got.errors == {"read": 3, "open": 1}
    assert got.errnos == {"read": {"EBADF": 2, "EINTR": 1}, "open": {"ENOENT": 1}}
    rest = processes.minus(got, processes.summed_counts(parts))
    assert rest == Counts({}, {}, {})  # they add up exactly
    # errors beyond the errnos known (read before them): ELOST makes them add up
    short = processes.covering(Counts({"read": 5}, {"read": 4}, {"read": {"EBADF": 1}}), [])
    assert short.errnos == {"read": {"EBADF": 1, "ELOST": 3}} and short.calls == {"read": 5}
    assert processes.covering(Counts({"x": 1}, {"x": 3}), []).calls == {"x": 3}
    # a name absent from calls or errors is a zero there; zeros stay zeros; times are the target's
    assert processes.covering(Counts({}, {"x": 2}), []).calls == {"x": 2}
    assert processes.covering(Counts({"x": 2}, {}, {"x": {"EBADF": 1}}), []).errors == {"x": 1}
    zeros = processes.covering(Counts({"r": 2}, {"r": 0}, {"w": {}}, {"r": 50}, {"r": 20}),
                               [Counts({"o": 1}, {"o": 0})])
    assert (zeros.calls, zeros.errors) == ({"r": 2, "o": 1, "w": 0}, {"r": 0, "o": 0, "w": 0})
    assert (zeros.time_ns, zeros.max_ns) == ({"r": 50}, {"r": 20})
    assert processes.covering(Counts({}, {"x": 0}), []).calls == {"x": 0}


def test_a_report_so_far_agrees_with_itself_process_by_process() -> None:
    # A Swarm task's report read while counting goes on: one process's errnos were read after
    # one more failure than its errors, another's before one; each process is made to agree
    # with itself, and the target covers them (CI once lost a task's report to this: "the
    # helper's report is invalid: access.errnos do not add up to its errors").
    from datetime import UTC, datetime

    asked: list[bool] = []

    class Engine:
        name, version, syscalls = "bpf", "x", sorted(set(X86.native.values()))

        def processes(self, whole: bool = True) -> list[Processes]:
            asked.append(whole)
            return [Processes([
                Process(100, "app", False, Counts({"access": 5, "read": 2}, {"access": 5},
                                                  {"access": {"ENOENT": 6}})),
                Process(101, "sh", False, Counts({"openat": 3}, {"openat": 3}, {"openat": {"EACCES": 2}}))])]

        def cost(self) -> None:
            return None

        def uncounted(self) -> int:
            return 0

    args = helper.parse_args(["--pid", str(TARGET[0].pid), "--duration", "3", "--by-process"])
    target = Counts({"access": 5, "read": 2, "openat": 3}, {"access": 5, "openat": 3},
                    {"access": {"ENOENT": 5}, "openat": {"EACCES": 2}})
    doc = helper.so_far(args, Engine(), ["/x"], [target], [1], helper.Looker(None),  # type: ignore[arg-type]
                        helper.Exits(args.targets, ["/x"]), helper.Stop(), {
                            "kernel": "6.1", "arch": "x86_64", "cpus": 2, "cgroup_version": 2,
                            "cgroup_layout": "unified"}, 1.5, datetime.now(UTC))
    assert asked == [False]  # read as a report so far, not as the window's whole
    got = load(doc)
    (t,) = got.targets
    assert {(s.name, s.calls, s.errors, s.errnos) for s in t.syscalls if s.calls} == {
        ("access", 6, 6, (("ENOENT", 6),)), ("read", 2, 0, None), ("openat", 3, 2, (("EACCES", 2),))}
    app, sh = t.processes or ()
    assert [(s.name, s.calls, s.errors) for s in app.syscalls] == [("access", 6, 6), ("read", 2, 0)]
    assert [(s.name, s.calls, s.errors) for s in sh.syscalls] == [("openat", 3, 2)]
    assert t.other_processes is None  # they add up to their target exactly


# --- the live view ---------------------------------------------------------------------------------

def interval(index: int, seconds: float, rows: list[dict], procs: list[dict], not_kept: int = 0) -> bytes:
    return json.dumps({"schema": report.SCHEMA, "kind": "interval", "index": index, "seconds": seconds,
                       "targets": [{"pid": TARGET[0].pid, "syscalls": rows, "processes": procs,
                                    "processes_not_kept": not_kept}]}).encode()


def test_the_live_view_adds_up_each_processs_intervals() -> None:
    from plugin import live

    totals = live.Totals(TARGET, by_process=True)
    totals.add(interval(1, 1.0, [{"name": "read", "calls": 10, "errors": 0}],
                        [{"pid": None, "host_pid": 50, "comm": "sh", "syscalls": [
                            {"name": "read", "calls": 6, "errors": 0}]}]))
    totals.add(interval(2, 2.0, [{"name": "read", "calls": 5, "errors": 1},
                                 {"name": "close", "calls": 2, "errors": 0}],
                        [{"pid": 7, "host_pid": 50, "comm": "app", "syscalls": [
                            {"name": "read", "calls": 4, "errors": 1}]},
                         {"pid": 8, "host_pid": 51, "comm": "cat", "syscalls": [
                             {"name": "close", "calls": 1, "errors": 0}]}], not_kept=3))
    rep = live.so_far(totals, "bpf", False, 10.0)
    (t,) = rep.targets
    first, second = t.processes or ()
    # The pid once /proc showed it, the name as last read, the calls of both intervals.
    assert (first.pid, first.comm, first.total_calls, first.total_errors) == (7, "app", 10, 1)
    assert (second.host_pid, second.total_calls) == (51, 1)
    rest = t.other_processes
    assert rest is not None and rest.processes == 3
    assert [(s.name, s.calls, s.errors) for s in rest.syscalls] == [("read", 5, 0), ("close", 1, 0)]
    line = live.document(totals)["targets"][0]["processes"]
    assert [(p["host_pid"], p["calls"], p["interval_calls"]) for p in line] == [(50, 10, 4), (51, 1, 1)]
    frame = live.frame(totals, render.View(), 60, "bpf")
    assert "family: 5 processes" in frame and "other processes (3)" in frame


def test_a_frame_lists_the_busiest_five_processes() -> None:
    from plugin import live

    totals = live.Totals(TARGET, by_process=True)
    procs = [{"pid": i, "host_pid": 100 + i, "comm": f"w{i}",
              "syscalls": [{"name": "read", "calls": 10 + i, "errors": 0}]} for i in range(1, 9)]
    totals.add(interval(1, 1.0, [{"name": "read", "calls": sum(10 + i for i in range(1, 9)),
                                  "errors": 0}], procs))
    frame = live.frame(totals, render.View(), 80, "bpf")
    listed = [line.split()[1] for line in frame.split("COMMAND LINE")[1].splitlines()[2:]]
    assert listed == ["w8", "w7", "w6", "w5", "w4", "processes"]  # the rest: "  other processes (3)"
    assert "other processes (3)" in frame
    # rest_of never goes below zero where the processes ran ahead of their target
    assert live.rest_of([report.SyscallCount("read", 2, 0)], [[report.SyscallCount("read", 5, 1)]]) == ()


def test_an_intervals_processes_are_checked() -> None:
    good = interval(1, 1.0, [{"name": "read", "calls": 1, "errors": 0}],
                    [{"pid": None, "host_pid": 5, "comm": "a", "syscalls": [{"name": "read", "calls": 1,
                                                                             "errors": 0}]}])
    assert report.interval_from_helper(good, pids=[TARGET[0].pid], previous=0.0, by_process=True).processes
    for bad, says in [({"host_pid": 0}, "host_pid is out of range"), ({"comm": "x" * 20}, "comm is longer"),
                      ({"syscalls": [{"name": "Bad", "calls": 1, "errors": 0}]}, "name is not")]:
        doc = json.loads(good)
        doc["targets"][0]["processes"][0].update(bad)
        with pytest.raises(ContractError) as info:
            report.interval_from_helper(json.dumps(doc).encode(), pids=[TARGET[0].pid], previous=0.0,
                                        by_process=True)
        assert says in info.value.what, info.value.what
    doc = json.loads(good)
    doc["targets"][0]["processes"] *= 2
    with pytest.raises(ContractError, match="lists a process twice"):
        report.interval_from_helper(json.dumps(doc).encode(), pids=[TARGET[0].pid], previous=0.0,
                                    by_process=True)


def test_the_helper_tells_each_interval_what_each_process_did_since_the_last() -> None:
    before = [Process(10, "a", False, Counts({"read": 5}, {"read": 1}, {"read": {"EBADF": 1}}))]
    now = [Process(10, "a", False, Counts({"read": 8, "close": 1}, {"read": 2}, {"read": {"EBADF": 2}})),
           Process(11, "b", False, Counts({"open": 2}, {})),
           Process(12, "c", True, Counts({}, {}))]
    got = processes.since(now, before)
    assert [(p.host_pid, c) for p, c in got] == [
        (10, Counts({"read": 3, "close": 1}, {"read": 1}, {"read": {"EBADF": 1}})),
        (11, Counts({"open": 2}, {}))]

    class Engine:
        def __init__(self) -> None:
            self.reads = [[Processes(before, folded=1)], [Processes(now, folded=4)], [Processes(ahead)]]
            self.whole: list[bool] = []

        def processes(self, whole: bool = True) -> list[Processes]:
            self.whole.append(whole)
            return self.reads.pop(0)

    # read while counting goes on: b's errnos were read after one more failure than its errors,
    # a's before one (never an ELOST for an errno that was simply not read yet)
    ahead = [Process(10, "a", False, Counts({"read": 10, "close": 1}, {"read": 4}, {"read": {"EBADF": 3}})),
             Process(11, "b", False, Counts({"open": 4}, {"open": 1}, {"open": {"ENOENT": 2}}))]

    live, engine = helper.LiveProcesses(1), Engine()
    looker = helper.Looker(lambda pid: None)
    looker.seen[11] = seen("b", 11, 3)
    first: list[dict] = [{"pid": 1}]
    live.add(first, engine, None, [1], looker)  # type: ignore[arg-type]
    assert first[0]["processes"][0]["host_pid"] == 10 and first[0]["processes_not_kept"] == 1
    second: list[dict] = [{"pid": 1}]
    live.add(second, engine, frozenset({"read", "open"}), [1], looker)  # type: ignore[arg-type]
    assert [(p["host_pid"], p["pid"], p["syscalls"][0]["calls"]) for p in second[0]["processes"]] == \
        [(10, None, 3), (11, 3, 2)]
    assert second[0]["processes_not_kept"] == 4
    third: list[dict] = [{"pid": 1}]
    live.add(third, engine, None, [1], looker)  # type: ignore[arg-type]
    # exact calls and errors; errnos only where they add up (as the target's own interval rows)
    assert third[0]["processes"] == [
        {"pid": None, "host_pid": 10, "comm": "a", "syscalls": [{"name": "read", "calls": 2, "errors": 2}]},
        {"pid": 3, "host_pid": 11, "comm": "b", "syscalls": [{"name": "open", "calls": 2, "errors": 1}]}]
    assert engine.whole == [False, False, False]  # each read as counting goes on


# --- the process table, byte for byte -----------------------------------------------------------------

def crafted(engine: str = "bpf", seconds: float = 2.0) -> tuple[report.Report, report.TargetCounts]:
    s = report.SyscallCount
    procs = (report.ProcessCounts(1, 101, "nginx", None, False, (s("writev", 300, 3, (("EAGAIN", 3),)),
                                                                 s("read", 100, 0))),
             report.ProcessCounts(None, 150, "sh", None, True, (s("wait4", 2, 1, (("ECHILD", 1),)),)),
             report.ProcessCounts(12, 102, "nginx", "nginx: worker process with a rather long command "
                                  "line indeed", False, (s("read", 50, 0),)))
    t = report.TargetCounts(TARGET[0], (s("writev", 300, 3, (("EAGAIN", 3),)), s("read", 198, 0),
                                        s("wait4", 2, 1, (("ECHILD", 1),))),
                            processes=procs,
                            other_processes=report.OtherProcesses(7, True, (s("read", 48, 0),)))
    rep = report.Report(targets=(t,), window=report.Window(seconds, seconds, ""),
                        host=report.Host("", "", 2, 2, "", ""), syscalls=t.syscalls, partial=False,
                        engine=engine, by_process=True)
    return rep, t


HEAD = "  PID  COMMAND                 CALLS    ERRORS  TOP SYSCALL    TOP ERRNO      CALLS/S    SHARE  "


def test_the_process_table_byte_for_byte() -> None:
    rep, t = crafted()
    assert render.process_table(rep, t, render.View()) == "\n".join([
        "family: 10+ processes",
        "",
        HEAD + "COMMAND LINE",
        "-----  --------------------  -------  --------  -------------  -----------  ---------  -------  "
        "----------------------------------------",
        "    1  nginx                     400         3  writev 75%     EAGAIN 100%      200.0    80.0%",
        "    -  sh (exited)                 2         1  wait4 100%     ECHILD 100%        1.0     0.4%",
        "   12  nginx                      50         0  read 100%                        25.0    10.0%  "
        "nginx: worker process with a rather lon…",
        "       other processes (7+)       48         0  read 100%                        24.0     9.6%"])
    # --top: the processes it leaves out join the rest's row, their count with them
    assert render.process_table(rep, t, render.View(top=1, no_trunc=True)).splitlines()[4:] == [
        "    1  nginx                     400         3  writev 75%     EAGAIN 100%      200.0    80.0%",
        "       other processes (9+)      100         1  read 98%       ECHILD 100%       50.0    20.0%"]


def test_the_process_table_of_a_short_window_without_errnos() -> None:
    rep, t = crafted("perf", 0.05)
    assert render.process_table(rep, t, render.View(processes_top=2)).splitlines()[2:] == [
        "  PID  COMMAND                 CALLS    ERRORS  TOP SYSCALL      CALLS/S    SHARE  COMMAND LINE",
        "-----  --------------------  -------  --------  -------------  ---------  -------  --------------",
        "    1  nginx                     400         3  writev 75%             -    80.0%",
        "    -  sh (exited)                 2         1  wait4 100%             -     0.4%",
        "       other processes (8+)       98         0  read 100%              -    19.6%"]
    one = dataclasses.replace(t, processes=t.processes[:1], other_processes=None)  # type: ignore[index]
    assert render.process_table(rep, one, render.View()).splitlines()[0] == "family: 1 process"
    quiet = dataclasses.replace(t, syscalls=(), processes=(report.ProcessCounts(3, 4, "x", None, False, ()),),
                                other_processes=None)
    assert render.process_table(rep, quiet, render.View()).splitlines()[4].split() == \
        ["3", "x", "0", "0", "-", "-"]  # no calls: no top syscall, no share


P = "the helper's report is invalid: targets[0].processes[1]."


@pytest.mark.parametrize(("change", "says"), [
    ({"pid": 0}, P + "pid is out of range"), ({"pid": report.MAX_PID + 1}, P + "pid is out of range"),
    ({"host_pid": 0}, P + "host_pid is out of range"),
    ({"host_pid": report.MAX_PID + 1}, P + "host_pid is out of range"),
    ({"cmdline": 5}, P + "cmdline has the wrong type"), ({"comm": None}, P + "comm has the wrong type"),
    ({"comm": "x" * 17}, P + "comm is longer than a command name"),
    ({"exited": None}, P + "exited has the wrong type"), ({"lost": -1}, P + "lost is out of range"),
    ({"syscalls": None}, P + "syscalls has the wrong type"),
    ({"syscalls": [{"name": "nosuchcall", "calls": 1, "errors": 0}]},
     "the helper's report is invalid: targets[0].processes[1].syscalls[0].name is not a syscall "
     "that was counted"),
    ({"total": {"calls": 1, "errors": 0}}, P[:-1] + ".total is not the sum of its syscalls"),
])
def test_each_field_of_a_process_is_checked_and_named(change: dict, says: str) -> None:
    with pytest.raises(ContractError) as info:
        load(changed(lambda t: t["processes"][1].update(change)))
    assert info.value.what == says


def test_what_a_process_may_leave_out_or_be_at_its_limits() -> None:
    def edges(t: dict) -> None:
        t["processes"][0].update(pid=None, cmdline=None, comm="x" * 16, lost=3)
        t["processes"][1].update(pid=report.MAX_PID, host_pid=1)
        t["processes"][2].update(host_pid=report.MAX_PID)

    (t,) = load(changed(edges)).targets
    first, second, third = t.processes or ()
    assert (first.pid, first.cmdline, first.comm, first.lost) == (None, None, "x" * 16, 3)
    assert (second.pid, second.host_pid, second.lost) == (report.MAX_PID, 1, 0)
    assert third.host_pid == report.MAX_PID
    for gone in ("pid", "cmdline", "comm", "host_pid", "exited", "total"):
        doc = changed(lambda t, key=gone: t["processes"][0].pop(key))
        with pytest.raises(ContractError) as info:
            load(doc)
        assert info.value.what.startswith("the helper's report is invalid: targets[0].processes[0]."), gone
        assert gone in info.value.what


def test_the_rest_is_checked_and_named_too() -> None:
    r = "the helper's report is invalid: targets[0].other_processes."
    for change, says in [({"processes": -1}, r + "processes is out of range"),
                         ({"more": 0}, r + "more has the wrong type"),
                         ({"syscalls": [{"name": "nosuchcall", "calls": 1, "errors": 0}]},
                          r + "syscalls[0].name is not a syscall that was counted"),
                         ({"total": {"calls": 0, "errors": 0}}, r + "total is not the sum of its syscalls")]:
        with pytest.raises(ContractError) as info:
            load(changed(lambda t, c=change: (moved_to_rest(t), t["other_processes"].update(c))))
        assert info.value.what == says


def test_as_many_processes_as_the_bound_and_no_more() -> None:
    def spread(n: int):  # n processes: the recorded three, and idle ones with a row of nothing
        def change(t: dict) -> None:
            idle = [dict(t["processes"][0], host_pid=1000 + i, pid=None, total={"calls": 0, "errors": 0},
                         syscalls=[]) for i in range(n - 3)]
            t["processes"] += idle
        return change

    assert len(load(changed(spread(report.MAX_PROCESSES))).targets[0].processes or ()) == 100
    with pytest.raises(ContractError, match="lists more than 100 processes"):
        load(changed(spread(report.MAX_PROCESSES + 1)))
