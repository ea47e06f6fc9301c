"""seccomp.py: generated profiles, names, start-up calls, and audits, against libseccomp's real
name table (tests/fixtures/seccomp/README.md) and the engine's real default profile."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import pytest

from plugin import seccomp
from plugin.seccomp import ProfileError
from plugin.seccomp_profile import data, parse_profile

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "seccomp"
CLONE_MASK = 0x7E020000  # moby's mask of the namespace flags in clone's first argument


def libseccomp() -> dict[str, tuple[int, str]]:
    rows = (line.split() for line in (FIXTURES / "libseccomp-x86_64.txt").read_text().splitlines())
    return {name: (int(number), where) for name, number, where in rows}


def allowed_names(profile: dict) -> set[str]:
    return {n for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args")
            for n in rule["names"]}


def rule_for(profile: dict, name: str) -> list[dict]:
    return [rule for rule in profile["syscalls"] if name in rule["names"]]


# -- the profile ---------------------------------------------------------------------------

def test_profile_has_the_shape_of_dockers_default() -> None:
    profile = seccomp.make_profile(["getppid", "openat", "read"], "x86_64")
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    assert profile["defaultErrnoRet"] == 1  # EPERM
    # Docker refuses a profile with both "architectures" and "archMap".
    assert "architectures" not in profile
    assert profile["archMap"] == [{"architecture": "SCMP_ARCH_X86_64",
                                   "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}]
    first = profile["syscalls"][0]
    assert first["action"] == "SCMP_ACT_ALLOW" and "args" not in first
    assert first["names"] == sorted(set(first["names"]))
    assert {"getppid", "openat", "read"} <= set(first["names"])
    json.dumps(profile)  # plain JSON


def test_profile_for_aarch64() -> None:
    profile = seccomp.make_profile(["getppid"], "aarch64")
    assert profile["archMap"] == [{"architecture": "SCMP_ARCH_AARCH64",
                                   "subArchitectures": ["SCMP_ARCH_ARM"]}]
    assert "arch_prctl" not in allowed_names(profile)  # no such call on arm64
    assert seccomp.make_profile([], "arm64") == seccomp.make_profile([], "aarch64")


def test_unsupported_arch_is_a_clear_error() -> None:
    with pytest.raises(ProfileError, match="s390x"):
        seccomp.make_profile(["read"], "s390x")


@pytest.mark.parametrize("bad", ["", "Read", "sys_enter_read; rm", "a" * 65])
def test_a_name_that_is_no_syscall_name_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        seccomp.make_profile([bad], "x86_64")


@pytest.mark.parametrize(("tracepoint", "name"), [
    ("newuname", "uname"), ("newstat", "stat"), ("newlstat", "lstat"), ("newfstat", "fstat"),
    ("sendfile64", "sendfile"), ("umount", "umount2"), ("newfstatat", "newfstatat"),
    ("pread64", "pread64"), ("openat", "openat"),
])
def test_tracepoint_names_become_syscall_table_names(tracepoint: str, name: str) -> None:
    assert seccomp.seccomp_name(tracepoint, "x86_64") == name
    names = allowed_names(seccomp.make_profile([tracepoint], "x86_64"))
    assert name in names
    if tracepoint != name:
        assert tracepoint not in names


def test_aarch64_names() -> None:
    assert seccomp.seccomp_name("fadvise64_64", "aarch64") == "fadvise64"
    assert seccomp.seccomp_name("arm64_personality", "aarch64") == "personality"
    assert seccomp.seccomp_name("newfstat", "aarch64") == "fstat"
    assert seccomp.seccomp_name("newfstatat", "aarch64") == "newfstatat"


def test_every_tracepoint_becomes_a_name_libseccomp_knows() -> None:
    table = libseccomp()
    tracepoints = [n for n, (_, where) in table.items() if where != "table"]
    assert len(tracepoints) == 360
    unknown = []
    for tracepoint in tracepoints:
        name = seccomp.seccomp_name(tracepoint, "x86_64")
        if table[tracepoint][0] >= 0:
            assert name == tracepoint, f"{tracepoint} is renamed needlessly"
        elif name == tracepoint:
            unknown.append(tracepoint)
        else:
            assert table[name][0] >= 0, f"{tracepoint} -> {name}, which libseccomp does not know"
    # What is left is newer than libseccomp 2.5.4: runc ignores these names in a profile.
    assert sorted(unknown) == [
        "file_getattr", "file_setattr", "getxattrat", "listmount", "listxattrat",
        "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "mseal", "open_tree_attr",
        "removexattrat", "setxattrat", "statmount", "uprobe", "uretprobe"]


# -- start-up calls ------------------------------------------------------------------------

def test_startup_calls_are_always_in_the_profile() -> None:
    startup = seccomp.startup_calls("x86_64")
    for observed in ([], ["getppid"], ["clone", "execve", "read"]):
        profile = seccomp.make_profile(observed, "x86_64")
        every = {n for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW"
                 for n in rule["names"]}
        assert startup <= every


def test_startup_calls_include_the_ones_measured_to_be_needed() -> None:
    # Each of these, left out, made `docker run` fail on runc 1.1.5 (seccomp_data.json).
    needed = {"arch_prctl", "capget", "capset", "chdir", "close", "execve", "exit_group",
              "faccessat2", "fstat", "fstatfs", "futex", "getcwd", "getdents64", "getppid",
              "mmap", "mprotect", "newfstatat", "openat", "prctl", "pread64", "read",
              "rt_sigreturn", "setgid", "setgroups", "setuid", "write",
              "setpgid", "ioctl", "rt_sigtimedwait", "wait4", "kill"}  # the last five: --init
    assert needed <= seccomp.startup_calls("x86_64")


def test_startup_names_are_x86_64_syscalls_to_libseccomp() -> None:
    table = libseccomp()
    assert [n for n in sorted(seccomp.startup_calls("x86_64")) if table.get(n, (-1,))[0] < 0] == []


def test_startup_calls_are_never_broader_than_dockers_default() -> None:
    # What docker spy adds on its own is allowed by the default profile too, clone with the
    # default's own condition.
    startup = seccomp.startup_calls("x86_64")
    result = seccomp.audit(dict.fromkeys(startup, 1), seccomp.load_profile("default"), "x86_64")
    assert result.denied == ()
    assert [v.name for v in result.conditional] == ["clone"]
    rules = rule_for(seccomp.make_profile([], "x86_64"), "clone")
    assert rules == [{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "comment": rules[0]["comment"],
                      "args": [{"index": 0, "value": CLONE_MASK, "valueTwo": 0,
                                "op": "SCMP_CMP_MASKED_EQ"}]}]


def test_an_observed_clone_is_allowed_whole() -> None:
    rules = rule_for(seccomp.make_profile(["clone"], "x86_64"), "clone")
    assert len(rules) == 1 and "args" not in rules[0]


def test_clone3_answers_enosys_unless_observed() -> None:
    # Under Docker's default clone3 fails with ENOSYS before a tracepoint sees it; glibc then
    # falls back to clone. EPERM would make pthread_create fail.
    rules = rule_for(seccomp.make_profile(["clone"], "x86_64"), "clone3")
    assert [(r["action"], r["errnoRet"]) for r in rules] == [("SCMP_ACT_ERRNO", 38)]
    assert "clone3" in allowed_names(seccomp.make_profile(["clone3"], "x86_64"))
    assert len(rule_for(seccomp.make_profile(["clone3"], "x86_64"), "clone3")) == 1


# -- writing and reading -------------------------------------------------------------------

def test_write_profile(tmp_path: Path) -> None:
    path = tmp_path / "profile.json"
    path.write_text("old")
    summary = seccomp.write_profile(["getppid", "newuname", "openat"], "x86_64", str(path))
    profile = json.loads(path.read_text())
    assert profile == seccomp.make_profile(["getppid", "newuname", "openat"], "x86_64")
    assert summary.path == str(path)
    assert summary.observed == 3
    startup = seccomp.startup_calls("x86_64")
    assert summary.added_for_startup == len(startup - {"getppid", "uname", "openat"})
    assert summary.allowed == len(startup | {"getppid", "uname", "openat"})
    assert os.listdir(tmp_path) == ["profile.json"]  # no temporary file left
    assert path.stat().st_mode & 0o777 == 0o644


def test_write_profile_to_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot write the seccomp profile"):
        seccomp.write_profile(["read"], "x86_64", str(tmp_path / "no" / "profile.json"))


def test_a_written_profile_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    seccomp.write_profile(["getppid", "newuname"], "x86_64", str(path))
    profile = seccomp.load_profile(str(path))
    assert profile.description == str(path)
    assert profile.default_action == "SCMP_ACT_ERRNO" and profile.default_errno == 1
    result = seccomp.audit({"getppid": 5, "newuname": 2, "read": 1}, profile, "x86_64")
    assert result.denied == () and result.conditional == ()


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read"),
    ("{", "is not JSON"),
    ("[]", "defaultAction"),
    ('{"defaultAction": "SCMP_ACT_NOPE"}', "defaultAction"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}', "names"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"]}]}', "action"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], '
     '"action": "SCMP_ACT_ALLOW", "args": [{"op": "SCMP_CMP_EQ", "value": "x"}]}]}', "args"),
])
def test_a_bad_profile_is_one_clear_error(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "profile.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ProfileError, match=message) as info:
        seccomp.load_profile(str(path))
    assert info.value.hint


def test_the_packaged_default_profile_is_the_one_its_provenance_names() -> None:
    meta = data()["default_profile"]
    raw = (Path(seccomp.__file__).with_name(meta["file"])).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == meta["sha256"]
    assert "Apache-2.0" in meta["license"] and "20.10.24" in meta["source"]


# -- audits --------------------------------------------------------------------------------

def test_audit_names_a_syscall_the_profile_lacks() -> None:
    profile = parse_profile(seccomp.make_profile(["openat", "read"], "x86_64"), "p.json", "p.json")
    result = seccomp.audit({"fchdir": 12345, "read": 7, "openat": 2, "unlink": 0}, profile, "x86_64")
    assert result.would_deny
    assert [(v.name, v.calls, v.verdict, v.errno) for v in result.denied] == [
        ("fchdir", 12345, "denied", 1)]
    assert {v.name for v in result.verdicts} == {"fchdir", "read", "openat"}  # 0 calls: not seen


def test_audit_of_a_deny_list_profile() -> None:
    doc = {"defaultAction": "SCMP_ACT_ALLOW",
           "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"},
                        {"name": "uname", "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}
    result = seccomp.audit({"getppid": 3, "newuname": 2, "read": 9},
                           parse_profile(doc, "deny.json", "deny.json"), "x86_64")
    assert [(v.name, v.seccomp_name, v.action, v.errno) for v in result.denied] == [
        ("getppid", "getppid", "SCMP_ACT_KILL_PROCESS", None),
        ("newuname", "uname", "SCMP_ACT_ERRNO", 38)]


def default_verdicts(observed: dict[str, int], **kw: object) -> dict[str, seccomp.Verdict]:
    result = seccomp.audit(observed, seccomp.load_profile("default"), kw.pop("arch", "x86_64"), **kw)
    return {v.name: v for v in result.verdicts}


def test_default_profile_verdicts_for_known_syscalls() -> None:
    names = ["read", "openat", "getppid", "newuname", "arch_prctl", "chroot", "reboot",
             "kexec_load", "mount", "unshare", "bpf", "clone", "clone3", "personality", "ptrace"]
    got = default_verdicts(dict.fromkeys(names, 1), kernel="6.18.44-fc-v669")
    assert {n for n, v in got.items() if v.verdict == "allowed"} == {
        "read", "openat", "getppid", "newuname", "arch_prctl", "chroot", "ptrace"}
    assert {n for n, v in got.items() if v.verdict == "denied"} == {
        "reboot", "kexec_load", "mount", "unshare", "bpf", "clone3"}
    assert {n for n, v in got.items() if v.verdict == "conditional"} == {"clone", "personality"}
    assert got["reboot"].errno == 1 and got["clone3"].errno == 38  # EPERM; ENOSYS
    assert got["clone"].when == f"(arg0 & {CLONE_MASK:#x}) == 0x0"
    assert "arg0 == 0xffffffff" in got["personality"].when


def test_default_profile_depends_on_caps_arch_and_kernel() -> None:
    assert default_verdicts({"ptrace": 1}, kernel="4.4.0")["ptrace"].verdict == "denied"  # minKernel 4.8
    assert default_verdicts({"chroot": 1}, caps=[])["chroot"].verdict == "denied"
    assert default_verdicts({"reboot": 1}, caps=["CAP_SYS_BOOT"])["reboot"].verdict == "allowed"
    with_admin = default_verdicts({"clone": 1, "clone3": 1, "mount": 1}, caps=["CAP_SYS_ADMIN"])
    assert {v.verdict for v in with_admin.values()} == {"allowed"}
    assert default_verdicts({"arch_prctl": 1}, arch="aarch64")["arch_prctl"].verdict == "denied"


def test_write_audit_table() -> None:
    profile = parse_profile(seccomp.make_profile(["read"], "x86_64"), "p.json", "p.json")
    result = seccomp.audit({"fchdir": 12345, "read": 7, "newuname": 2}, profile, "x86_64")
    out = io.StringIO()
    seccomp.write_audit(result, "table", out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "seccomp audit against p.json (x86_64): 2 of 3 observed syscalls would be denied"
    assert lines[2].split() == ["SYSCALL", "CALLS", "VERDICT", "ACTION", "WHEN"]
    assert lines[4].split() == ["fchdir", "12,345", "denied", "ERRNO", "(EPERM)"]
    assert lines[5].split() == ["newuname", "(uname)", "2", "denied", "ERRNO", "(EPERM)"]
    assert len(lines) == 6  # allowed rows are not listed


def test_write_audit_table_when_nothing_is_denied() -> None:
    result = seccomp.audit({"read": 1}, seccomp.load_profile("default"), "x86_64")
    out = io.StringIO()
    seccomp.write_audit(result, "table", out)
    assert out.getvalue() == ("seccomp audit against Docker 20.10.24's default profile (x86_64): "
                              "0 of 1 observed syscalls would be denied\n")


def test_write_audit_json() -> None:
    result = seccomp.audit({"clone3": 4, "clone": 2, "read": 9}, seccomp.load_profile("default"),
                           "x86_64")
    out = io.StringIO()
    seccomp.write_audit(result, "json", out)
    doc = json.loads(out.getvalue())
    assert doc["would_deny"] is True and doc["denied"] == 1
    assert [(r["name"], r["calls"], r["verdict"]) for r in doc["syscalls"]] == [
        ("clone3", 4, "denied"), ("clone", 2, "conditional"), ("read", 9, "allowed")]
    assert doc["syscalls"][0]["errno_name"] == "ENOSYS"
    with pytest.raises(ValueError):
        seccomp.write_audit(result, "csv", io.StringIO())
