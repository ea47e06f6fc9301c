"""classes.py and syscall_classes.json against the syscall names recorded from real headers and
a real kernel's tracepoints (tests/fixtures/syscalls/README.md says where each came from)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plugin import classes

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "syscalls"
LISTS = ("x86_64", "arm64", "tracepoints-x86_64")
DOCUMENT = Path(classes.__file__).with_name(classes.RESOURCE)


def recorded(name: str) -> list[str]:
    return (FIXTURES / f"{name}.txt").read_text().split()


def listed() -> dict[str, list[str]]:
    return json.loads(DOCUMENT.read_text())["classes"]


@pytest.mark.parametrize("name", LISTS)
def test_every_recorded_name_is_listed_explicitly(name: str) -> None:
    # "other" is a list too: a name may only land there because someone put it there.
    names = recorded(name)
    assert len(names) > 250
    known = classes.mapping()
    assert [n for n in names if n not in known] == []


def test_the_lists_differ_where_tracepoints_rename_the_table() -> None:
    # Guards the fixtures themselves: both spellings must really be covered.
    assert {"stat", "uname", "sendfile", "umount2"} <= set(recorded("x86_64"))
    assert {"newstat", "newuname", "sendfile64", "umount"} <= set(recorded("tracepoints-x86_64"))
    assert {"newfstatat", "fstat", "mmap", "fcntl"} <= set(recorded("arm64"))
    assert not {"open", "stat", "fork", "fstatat64", "mmap2"} & set(recorded("arm64"))


def test_no_name_is_in_two_classes() -> None:
    names = [n for members in listed().values() for n in members]
    assert len(names) == len(set(names))


def test_the_classes_are_exactly_CLASSES_and_each_list_is_sorted() -> None:
    lists = listed()
    assert tuple(lists) == classes.CLASSES
    for members in lists.values():
        assert members == sorted(members) and members
    assert set(classes.mapping().values()) == set(classes.CLASSES)


@pytest.mark.parametrize(("name", "cls"), [
    ("openat", "file"), ("newfstatat", "file"), ("newstat", "file"), ("epoll_wait", "file"),
    ("ioctl", "file"), ("io_uring_enter", "file"), ("connect", "network"),
    ("recvmmsg", "network"), ("clone3", "process"), ("execve", "process"), ("setns", "process"),
    ("mmap", "memory"), ("mmap2", "memory"), ("brk", "memory"), ("rt_sigaction", "signal"),
    ("rt_sigreturn", "signal"), ("signalfd4", "signal"), ("clock_nanosleep", "time"),
    ("timerfd_settime", "time"), ("semop", "ipc"), ("futex", "ipc"), ("pipe2", "ipc"),
    ("newuname", "other"), ("bpf", "other"), ("perf_event_open", "other"),
])
def test_spot_checks(name: str, cls: str) -> None:
    assert classes.classify(name) == cls


@pytest.mark.parametrize("name", ["sys_openat", "__x64_sys_openat", "__arm64_sys_openat",
                                  "compat_sys_openat", "sys_enter_openat", "syscalls:sys_exit_openat"])
def test_kernel_and_perf_spellings_classify_as_the_bare_name(name: str) -> None:
    assert classes.classify(name) == "file"


@pytest.mark.parametrize("name", ["", "no_such_syscall", "sys_no_such_syscall", "OPENAT", "compat_openat"])
def test_unknown_names_are_other(name: str) -> None:
    assert classes.classify(name) == "other"


def test_real_names_that_look_prefixed_are_not_stripped() -> None:
    assert classes.classify("sysfs") == "file"
    assert classes.classify("syslog") == "other"
    assert classes.classify("_sysctl") == "other"


def test_mapping_is_a_copy() -> None:
    classes.mapping()["openat"] = "network"
    assert classes.classify("openat") == "file"


@pytest.mark.parametrize(("doc", "message"), [
    ({"schema": 2, "classes": {}}, "schema"),
    ({"schema": 1, "classes": {"file": []}}, "exactly"),
    ({"schema": 1, "classes": {c: ["read"] if c in ("file", "ipc") else [] for c in classes.CLASSES}},
     "both file and ipc"),
])
def test_parse_refuses_a_broken_document(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        classes.parse(json.dumps(doc))


def test_parse_says_exactly_what_is_wrong() -> None:
    with pytest.raises(ValueError) as info:
        classes.parse(json.dumps({"schema": 2, "classes": {}}))
    assert str(info.value) == "syscall_classes.json: schema 2, expected 1"
    with pytest.raises(ValueError) as info:
        classes.parse(json.dumps({"schema": 1, "classes": []}))
    assert str(info.value) == ("syscall_classes.json: the classes must be exactly file, network, process, "
                               "memory, signal, time, ipc, other")
