"""--syscall: the names and classes a user gives, checked and resolved before any helper runs
(plugin/selection.py); what the helper keeps of its counts (helper/main.py); how the report,
the table and diff carry the selection."""

from __future__ import annotations

import copy
import json

import pytest

from plugin import cli, diff, render, report, selection
from plugin.errors import ContractError, UsageError
from plugin.helper import main as helper
from plugin.helper.engine import Counts
from plugin.usage import FlagError

from .test_diff_messages import BPF
from .test_report import RECORDED, TARGETS

KNOWN = frozenset({"getppid", "getpid", "getpgid", "openat", "open", "read", "time", "socket",
                   "connect", "futex"})
MAPPING = {"getppid": "process", "getpid": "process", "getpgid": "process", "openat": "file",
           "open": "file", "read": "file", "time": "time", "socket": "network",
           "connect": "network"}  # futex: in no list, so "other"


def test_the_real_tables_know_both_architectures_names() -> None:
    known = selection.known_names()
    assert {"getppid", "openat", "open", "clone3", "renameat"} <= known  # open: x86_64 only
    assert not any(n.startswith(("sys_", "compat_")) for n in known)
    assert "ni_syscall" not in known and len(known) > 350


@pytest.mark.parametrize(("value", "says"), [
    ("getppidd", "getppidd is not a syscall nor a class (did you mean getppid or getpid or getpgid?)"),
    ("netwrk", "netwrk is not a syscall nor a class (did you mean network?)"),
    ("read,nosuchthing", "nosuchthing is not a syscall nor a class"),
    ("", "name a syscall, or a class: file, network, process, memory, signal, time, ipc, other"),
    (" , ", "name a syscall, or a class: file, network, process, memory, signal, time, ipc, other"),
    ("read,,open", "an empty name between commas"),
    ("read,", "an empty name between commas"),
    ("sys_nosuch", "sys_nosuch is not a syscall nor a class"),
    ("Read", "Read is not a syscall nor a class (did you mean read?)"),
])
def test_a_bad_value_says_what_is_wrong(value: str, says: str) -> None:
    with pytest.raises(ValueError) as info:
        selection.check_value(value, KNOWN)
    assert str(info.value) == says


def test_near_names_at_most_three_and_close_ones_only() -> None:
    # four as close as 0.75 (three shown, the closest first, then from z to a as difflib
    # ranks ties), and one at 0.67, too far to be what was meant
    assert selection.near("abcd", frozenset({"abce", "abcf", "abcg", "abch", "abcdefgh"})) == \
        ["abch", "abcg", "abcf"]
    assert selection.near("abcd", frozenset({"abce", "abcdefgh"})) == ["abce"]


def test_the_names_checked_against_are_those_given() -> None:
    assert selection.check_value("frob,network", frozenset({"frob"})) == "frob,network"
    with pytest.raises(ValueError, match="getppidd is not a syscall"):
        selection.check_value("network,getppidd", KNOWN)  # a class first: the rest still checked


@pytest.mark.parametrize(("value", "kept"), [
    ("read", "read"), ("read,openat", "read,openat"), (" read , network", "read,network"),
    ("sys_time", "sys_time"), ("other", "other"),
])
def test_a_good_value_is_kept_as_its_words(value: str, kept: str) -> None:
    assert selection.check_value(value, KNOWN) == kept


def test_classes_and_names_resolve_to_sorted_syscalls() -> None:
    assert selection.resolve([], KNOWN, MAPPING) == ()
    assert selection.resolve(["read", "openat,read"], KNOWN, MAPPING) == ("openat", "read")
    assert selection.resolve(["network"], KNOWN, MAPPING) == ("connect", "socket")
    assert selection.resolve(["process,sys_read"], KNOWN, MAPPING) == ("getpgid", "getpid", "getppid", "read")
    # `time` is the class; the class holds the syscall, and sys_time is the syscall alone.
    assert selection.resolve(["time"], KNOWN, MAPPING) == ("time",)
    assert selection.resolve(["sys_time"], KNOWN, MAPPING) == ("time",)
    # other: what the class lists leave out too, as --by-class files it.
    assert selection.resolve(["other"], KNOWN, MAPPING) == ("futex",)


def test_named_are_those_given_one_by_one() -> None:
    assert selection.named(["network,sys_read", "open", "read"]) == ("open", "read")
    assert selection.named(["file"]) == ()


def test_the_flag_through_the_command_line() -> None:
    values, args = cli.parse(cli.SPY, ["web", "--syscall", "getppid,network", "--syscall", "sys_fork"])
    opts = cli.spy_options(values, args)
    assert "getppid" in opts.syscalls and "fork" in opts.syscalls and "connect" in opts.syscalls
    assert "read" not in opts.syscalls and list(opts.syscalls) == sorted(opts.syscalls)
    assert opts.syscalls_named == ("fork", "getppid")
    values, args = cli.parse(cli.SPY, ["web"])
    assert cli.spy_options(values, args).syscalls == () == cli.spy_options(values, args).syscalls_named
    with pytest.raises(FlagError) as info:
        cli.parse(cli.SPY, ["web", "--syscall", "getppidd"])
    assert info.value.what.startswith('invalid argument "getppidd" for "--syscall" flag: getppidd is '
                                      "not a syscall nor a class (did you mean getppid")
    assert info.value.exit_status == 125
    values, args = cli.parse(cli.SPY, ["web", "--syscall", "read", "--seccomp-profile", "p.json"])
    with pytest.raises(UsageError) as refused:
        cli.spy_options(values, args)
    assert refused.value.line() == ("docker spy: --seccomp-profile needs every syscall counted "
                                    "(leave --syscall out)")


# --- the helper ---------------------------------------------------------------------------------

COUNTS = Counts({"read": 5, "compat_read": 2, "openat": 3, "syscall_999": 1},
                {"read": 1, "openat": 3}, {"read": {"EBADF": 1}, "openat": {"ENOENT": 3}},
                {"read": 50, "openat": 30}, {"read": 20, "openat": 10})


def test_the_helper_keeps_only_what_was_asked_for() -> None:
    assert helper.selected(COUNTS, None) is COUNTS
    kept = helper.selected(COUNTS, frozenset({"read"}))
    assert kept == Counts({"read": 5, "compat_read": 2}, {"read": 1}, {"read": {"EBADF": 1}},
                          {"read": 50}, {"read": 20})
    assert helper.selected(COUNTS, frozenset({"close"})) == Counts({}, {}, {}, {}, {})
    assert helper.wanted("compat_read", frozenset({"read"})) and not helper.wanted("syscall_999",
                                                                                    frozenset({"read"}))


class FakeEngine:
    syscalls = ["close", "openat", "read"]


def test_the_helper_counts_the_names_it_has_and_fails_when_it_has_none() -> None:
    assert helper.counted_names(FakeEngine(), None) == ["close", "openat", "read"]  # type: ignore[arg-type]
    assert helper.counted_names(FakeEngine(), frozenset({"read", "open"})) == ["read"]  # type: ignore[arg-type]
    with pytest.raises(helper.HelperFailure) as info:
        helper.counted_names(FakeEngine(), frozenset({"open", "fork"}))  # type: ignore[arg-type]
    assert info.value.code == "syscall" and str(info.value).endswith("): fork, open")
    many = frozenset(f"nosuchcall_{i:02}" for i in range(30))
    with pytest.raises(helper.HelperFailure) as info:
        helper.counted_names(FakeEngine(), many)  # type: ignore[arg-type]
    assert str(info.value).endswith("): " + ", ".join(sorted(many))[:120])  # shortened


@pytest.mark.parametrize(("value", "ok"), [("read,openat", True), ("read", True), ("", False),
                                           ("read,", False), ("re ad", False), ("réad", False)])
def test_the_helpers_flag_takes_names_only(value: str, ok: bool, capsys) -> None:
    argv = ["--pid", "1", "--duration", "1", "--syscalls", value]
    if ok:
        assert helper.parse_args(argv).syscalls == frozenset(value.split(","))
    else:
        with pytest.raises(SystemExit):
            helper.parse_args(argv)
        assert "--syscalls takes syscall names" in capsys.readouterr().err


# --- the report, the table, diff ------------------------------------------------------------------

def with_only(only: object, doc: dict = RECORDED["bpf"]) -> bytes:
    doc = copy.deepcopy(doc)
    doc["only"] = only
    return json.dumps(doc).encode()


def test_the_report_carries_the_selection_and_refuses_counts_beyond_it() -> None:
    counted = RECORDED["bpf"]["syscalls_counted"]
    rep = report.from_helper(with_only(counted), targets=TARGETS, requested_seconds=3.0)
    assert rep.only == tuple(sorted(counted))
    assert report.to_document(rep)["only"] == sorted(counted)
    rep = report.from_helper(with_only(None), targets=TARGETS, requested_seconds=3.0)
    assert rep.only is None and report.to_document(rep)["only"] is None
    for bad, says in [(counted[1:], "it counted syscalls that were not asked for"),
                      ([], "only is not a list of syscall names"),
                      (["Bad Name", *counted], "only is not a list of syscall names"),
                      ([7, *counted], "only is not a list of syscall names"),
                      ("read", "report.only has the wrong type")]:
        with pytest.raises(ContractError) as info:
            report.from_helper(with_only(bad), targets=TARGETS, requested_seconds=3.0)
        assert info.value.what.endswith(says), (bad, info.value.what)
    doc = copy.deepcopy(RECORDED["bpf"])
    del doc["only"]
    with pytest.raises(ContractError) as info:
        report.from_helper(json.dumps(doc).encode(), targets=TARGETS, requested_seconds=3.0)
    assert info.value.what.endswith("report.only is missing")


def test_the_title_says_what_was_asked_for() -> None:
    rep = report.from_helper(with_only(None), targets=TARGETS, requested_seconds=3.0)
    assert " syscalls in 3.00 s" in render.title(rep)
    few = report.from_helper(with_only(sorted(RECORDED["bpf"]["syscalls_counted"])),
                             targets=TARGETS, requested_seconds=3.0)
    n = len(few.only or ())
    assert f" calls of {n} syscalls asked for in 3.00 s" in render.title(few)
    assert render.asked(["read", "write"]) == "read, write"
    assert render.asked(["a", "b", "c", "d"]) == "a, b, c, d"
    assert render.asked(["a", "b", "c", "d", "e"]) == "5 syscalls asked for"


def snapshot(only: object, schema: int = report.SCHEMA) -> diff.Snapshot:
    doc = copy.deepcopy(BPF)
    doc["schema"] = schema
    if schema >= 4:
        doc["by_process"] = False
    if only is not ...:
        doc["only"] = only
    return diff.parse(json.dumps(doc).encode(), "a.json")


def test_diff_reads_the_selection_and_compares_only_the_same_one() -> None:
    names = sorted({row["name"] for row in BPF["syscalls"]})
    assert snapshot(..., schema=3).only is None  # schema 3 had no selection
    assert snapshot(None).only is None and snapshot(names).only == tuple(names)
    diff.compare(snapshot(names), snapshot(list(reversed(names))))  # the same set: compared
    with pytest.raises(UsageError) as info:
        diff.compare(snapshot(None), snapshot(names))
    assert info.value.line() == ("docker spy: the two reports counted different syscalls "
                                 "(--syscall), so their totals do not compare (make both with "
                                 "the same --syscall)")
    for bad in ([], ["Bad"], "read", [1]):
        with pytest.raises(UsageError):
            snapshot(bad)
