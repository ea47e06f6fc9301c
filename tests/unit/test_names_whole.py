"""A name or a text field is checked whole: `$` in a Python pattern also matches before a final
newline, so "read\\n" passed for a syscall name and "web\\n" for printable text, and went on into
tables, titles and seccomp profiles."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from plugin import diff, report, seccomp
from plugin.errors import ContractError, UsageError

from .test_report import RECORDED, TARGETS

DIFF = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "diff" / "bpf-before.json").read_text())


@pytest.mark.parametrize("pattern, text", [
    (report.SYSCALL_NAME, "read\n"), (report.ERRNO_NAME, "EBADF\n"), (report.PRINTABLE, "6.18\n"),
    (report.UNTABLED_NAME, "compat_read\n"), (report.UNTABLED_NAME, "syscall_472\n"),
])
def test_a_final_newline_is_not_part_of_a_name(pattern: object, text: str) -> None:
    assert not pattern.match(text)  # type: ignore[attr-defined]
    assert pattern.match(text.rstrip("\n"))  # type: ignore[attr-defined]


@pytest.mark.parametrize("path, value, message", [
    (("host", "kernel"), "6.18.44\n", "host.kernel is not short printable text"),
    (("targets", 0, "syscalls", 4, "name"), "fchdir\n", "targets[0].syscalls[4].name is not a syscall that "
     "was counted"),
    (("targets", 0, "syscalls", 4, "errnos"), {"EBADF\n": 777}, "fchdir.errnos is not a map of errno names"),
])
def test_the_helpers_document_with_a_final_newline_is_refused(path: tuple, value: object, message: str) \
        -> None:
    doc = copy.deepcopy(RECORDED["bpf"])
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ContractError) as info:
        report.from_helper(json.dumps(doc).encode(), targets=TARGETS, requested_seconds=3.0)
    assert info.value.what == f"the helper's report is invalid: {message}"


@pytest.mark.parametrize("path, value, message", [
    (("targets", 0, "name"), "spy-fixture-web\n", "targets[0].name is not short printable text"),
    (("targets", 0, "id"), DIFF["targets"][0]["id"] + "\n", "targets[0].id is not a container id"),
    (("syscalls", 0, "name"), DIFF["syscalls"][0]["name"] + "\n", "syscalls[0].name is not a syscall name"),
])
def test_a_report_with_a_final_newline_is_refused_by_diff(path: tuple, value: object, message: str) -> None:
    doc = copy.deepcopy(DIFF)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(UsageError) as info:
        diff.parse(json.dumps(doc).encode(), "a.json")
    assert info.value.what == f"a.json is not a docker spy report: {message}"


def test_a_profile_is_not_made_of_a_name_with_a_final_newline() -> None:
    with pytest.raises(ValueError, match="not a syscall name"):
        seccomp.make_profile(["read\n"], "x86_64")
