"""What seccomp.py writes and prints: the profile file as Docker reads it, the audit as a table
and as JSON, and the verdicts of rules that the default profile does not have (a deny rule with
conditions, a seccomp agent, an errno without a name, two plain rules)."""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
from pathlib import Path

import pytest

from plugin import seccomp
from plugin.seccomp import ProfileError
from plugin.seccomp_profile import parse_profile

# The fields of a rule in Docker's profile format (moby's profiles/seccomp types.go, Syscall).
RULE_KEYS = {"name", "names", "action", "args", "comment", "includes", "excludes", "errnoRet"}


def profile_of(rules: list[dict], default: str = "SCMP_ACT_ERRNO") -> seccomp.Profile:
    return parse_profile({"defaultAction": default, "syscalls": rules}, "p.json", "p.json")


def test_a_written_profile_is_json_indented_and_every_rule_in_dockers_format(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    seccomp.write_profile(["getppid"], "x86_64", str(path))
    text = path.read_text()
    assert text.startswith('{\n  "defaultAction": "SCMP_ACT_ERRNO",\n') and text.endswith("}\n")
    for rule in json.loads(text)["syscalls"]:
        assert set(rule) <= RULE_KEYS and rule["comment"]


@pytest.mark.skipif(not os.access("/dev/shm", os.W_OK)
                    or os.stat("/dev/shm").st_dev == os.stat(tempfile.gettempdir()).st_dev,
                    reason="no writable file system other than the temporary folder's")
def test_a_profile_is_written_on_its_own_file_system() -> None:
    # Written beside its destination and renamed: a temporary file elsewhere could not be.
    with tempfile.TemporaryDirectory(dir="/dev/shm") as folder:
        path = os.path.join(folder, "p.json")
        seccomp.write_profile(["read"], "x86_64", path)
        assert os.listdir(folder) == ["p.json"]


def test_a_profile_that_cannot_be_written_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "p.json").mkdir()
    with pytest.raises(ProfileError) as info:
        seccomp.write_profile(["read"], "x86_64", str(tmp_path / "p.json"))
    assert info.value.line() == (f"docker spy: cannot write the seccomp profile {tmp_path / 'p.json'}: "
                                 "Is a directory (choose a path in a writable folder)")
    with pytest.raises(ProfileError) as info:
        seccomp.check_destination(str(tmp_path / "no" / "p.json"))
    no = tmp_path / "no"
    assert info.value.line() == (f"docker spy: cannot write the seccomp profile {no / 'p.json'}: {no} is "
                                 "not a writable folder (choose a path in a writable folder)")


def test_a_name_that_is_no_syscall_name_says_which() -> None:
    with pytest.raises(ValueError) as info:
        seccomp.make_profile(["ok", "Bad"], "x86_64")
    assert str(info.value) == "not a syscall name: 'Bad'"


def test_denied_come_first_whatever_the_calls() -> None:
    result = seccomp.audit({"clone": 1000, "reboot": 1, "read": 5000}, seccomp.load_profile("default"),
                           "x86_64")
    assert [(v.name, v.verdict) for v in result.verdicts] == [
        ("reboot", "denied"), ("clone", "conditional"), ("read", "allowed")]


def test_a_deny_rule_with_conditions_makes_an_allowed_call_conditional() -> None:
    rules = [{"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 25,
              "args": [{"index": 1, "value": 0x5412, "op": "SCMP_CMP_EQ"}]}]
    (v,) = seccomp.audit({"ioctl": 3}, profile_of(rules, "SCMP_ACT_ALLOW"), "x86_64").verdicts
    assert (v.verdict, v.action, v.errno, v.when) == ("conditional", "SCMP_ACT_ERRNO", None, "arg1 == 0x5412")


def test_a_rule_of_the_same_kind_with_conditions_changes_nothing() -> None:
    rules = [{"names": ["ioctl"], "action": "SCMP_ACT_ALLOW"},
             {"names": ["ioctl"], "action": "SCMP_ACT_LOG",
              "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}]}]
    (v,) = seccomp.audit({"ioctl": 3}, profile_of(rules), "x86_64").verdicts
    assert (v.verdict, v.action, v.errno, v.when) == ("allowed", "SCMP_ACT_ALLOW", None, "")


def test_the_first_plain_rule_of_a_name_is_its_action() -> None:
    rules = [{"names": ["ioctl"], "action": "SCMP_ACT_ALLOW"},
             {"names": ["ioctl"], "action": "SCMP_ACT_KILL"}]
    (v,) = seccomp.audit({"ioctl": 3}, profile_of(rules), "x86_64").verdicts
    assert (v.verdict, v.action) == ("allowed", "SCMP_ACT_ALLOW")


def test_a_seccomp_agent_decides_a_notify_rule() -> None:
    (v,) = seccomp.audit({"mount": 1}, profile_of([{"names": ["mount"], "action": "SCMP_ACT_NOTIFY"}]),
                         "x86_64").verdicts
    assert (v.verdict, v.action, v.errno, v.when) == ("conditional", "SCMP_ACT_NOTIFY", None,
                                                      "a seccomp agent decides")


def test_the_audit_table_reads_as_a_table() -> None:
    rules = [{"names": ["reboot"], "action": "SCMP_ACT_ERRNO", "errnoRet": 200},
             {"names": ["kill"], "action": "SCMP_ACT_KILL"}]
    result = seccomp.audit({"reboot": 12_345, "kill": 2, "read": 1, "clone": 7},
                           profile_of([*rules, {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                                       {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                                        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]), "x86_64")
    out = io.StringIO()
    seccomp.write_audit(result, "table", out)
    title, blank, header, rule, *rows = out.getvalue().splitlines()
    assert title == ("seccomp audit against p.json (x86_64): 2 of 4 observed syscalls would be denied, "
                     "1 allowed only with some arguments")
    spans = [m.span() for m in re.finditer(r"-+", rule)]
    cells = [[line.ljust(spans[-1][1])[a:b] for a, b in spans] for line in [header, *rows]]
    assert [c.strip() for c in cells[0]] == list(seccomp.AUDIT_HEADERS)
    for row in cells:  # the calls flush right, the rest flush left
        assert not row[1].endswith(" ")
        assert all(not c.startswith(" ") for i, c in enumerate(row) if i != 1 and c.strip())
    assert [[c.strip() for c in row] for row in cells[1:]] == [
        ["reboot", "12,345", "denied", "ERRNO (200)", ""],  # an errno without a name: its number
        ["kill", "2", "denied", "KILL", ""],
        ["clone", "7", "conditional", "ALLOW", "arg0 == 0x1"]]  # ALLOW when so, else the default


def test_the_audit_as_json() -> None:
    result = seccomp.audit({"clone": 2, "newuname": 1, "reboot": 3}, seccomp.load_profile("default"),
                           "x86_64")
    out = io.StringIO()
    seccomp.write_audit(result, "json", out)
    assert out.getvalue().startswith('{\n  "schema": 1,\n')
    assert json.loads(out.getvalue()) == {
        "schema": 1, "profile": "Docker 20.10.24's default profile", "arch": "x86_64", "would_deny": True,
        "denied": 1, "syscalls": [
            {"name": "reboot", "seccomp_name": "reboot", "calls": 3, "verdict": "denied",
             "action": "SCMP_ACT_ERRNO", "errno": 1, "errno_name": "EPERM", "when": None},
            {"name": "clone", "seccomp_name": "clone", "calls": 2, "verdict": "conditional",
             "action": "SCMP_ACT_ALLOW", "errno": 1, "errno_name": "EPERM",
             "when": "(arg0 & 0x7e020000) == 0x0"},
            {"name": "newuname", "seccomp_name": "uname", "calls": 1, "verdict": "allowed",
             "action": "SCMP_ACT_ALLOW", "errno": None, "errno_name": None, "when": None}]}
    with pytest.raises(ValueError) as info:
        seccomp.write_audit(result, "csv", io.StringIO())
    assert str(info.value) == "unknown audit format: 'csv'"


def test_a_destination_whose_folder_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ProfileError, match="is not a writable folder"):
        seccomp.check_destination(str(tmp_path / "file" / "p.json"))


def test_each_rule_of_a_written_profile_says_why_it_is_there() -> None:
    profile = seccomp.make_profile(["read"], "x86_64")
    assert [(rule["names"][0] if len(rule["names"]) == 1 else "...", rule["comment"])
            for rule in profile["syscalls"]] == [
        ("...", "seen by docker spy, plus the calls every container makes while it starts"),
        ("clone", "a start-up call, with the condition of Docker's default"),
        ("clone3", "ENOSYS, as Docker's default: libc then falls back to clone")]
