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
    written = json.loads(path.read_text())  # what docker run --security-opt seccomp= reads
    allowed = allowed_names(written)
    # The tracepoint newuname is the syscall uname to libseccomp, which ignores newuname.
    assert {"getppid", "uname", "openat"} <= allowed and "newuname" not in allowed
    assert libseccomp()["newuname"][0] < 0 <= libseccomp()["uname"][0]
    assert written["defaultAction"] == "SCMP_ACT_ERRNO" and written["defaultErrnoRet"] == 1
    assert not {"reboot", "mount", "fchdir"} & allowed  # neither observed nor needed to start
    every = {n for rule in written["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" for n in rule["names"]}
    assert summary.path == str(path)
    assert summary.observed == 3
    assert summary.allowed == len(every)  # the names the file allows, clone's condition and all
    assert summary.added_for_startup == len(every) - 3
    assert str(summary) == (f"wrote the seccomp profile {path}: {len(every)} syscalls allowed (3 observed, "
                            f"{len(every) - 3} more that containers need to start); use it with "
                            f"docker run --security-opt seccomp={path}")
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


def test_write_audit_table() -> None:
    profile = parse_profile(seccomp.make_profile(["read"], "x86_64"), "p.json", "p.json")
    result = seccomp.audit({"fchdir": 12345, "read": 7, "newuname": 2}, profile, "x86_64")
    out = io.StringIO()
    seccomp.write_audit(result, "table", out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "seccomp audit against p.json (x86_64): 2 of 3 observed syscalls would be denied"
    # no verdict here depends on arguments: no WHEN column, empty in every row
    assert lines[2].split() == ["SYSCALL", "CALLS", "VERDICT", "ACTION"]
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


# -- Docker's default profile, read as text ------------------------------------------------
# seccomp_default.json is moby's profiles/seccomp/default.json as shipped (its sha256 is
# checked above). The verdicts below are read off that text and moby's rules for it
# (profiles/seccomp/seccomp_linux.go: a rule's includes must all hold and none of its excludes,
# caps are the container's, arches Docker's spelling), not computed by seccomp.py.

DEFAULT_TEXT = json.loads(Path(seccomp.__file__).with_name("seccomp_default.json").read_text())
# moby oci/caps/defaults.go (20.10): the capabilities of a container run without --cap-add.
DOCKER_DEFAULT_CAPS = {"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                       "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                       "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}


def default_rules(names: str | None = None) -> list[dict]:
    return [r for r in DEFAULT_TEXT["syscalls"] if names is None or names in r["names"]]


def unconditional_allow() -> set[str]:
    """The names of the default's rules that allow every call, on every arch, for everyone."""
    return {n for r in default_rules() if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args")
            and not r.get("includes") and not r.get("excludes") for n in r["names"]}


def test_the_default_capabilities_are_dockers() -> None:
    assert set(data()["default_capabilities"]) == DOCKER_DEFAULT_CAPS


def test_the_default_profile_denies_with_eperm_what_it_does_not_name() -> None:
    # No defaultErrnoRet: runc answers SCMP_ACT_ERRNO without one with EPERM.
    assert DEFAULT_TEXT["defaultAction"] == "SCMP_ACT_ERRNO" and "defaultErrnoRet" not in DEFAULT_TEXT
    named = {n for r in default_rules() for n in r["names"]}
    table = [n for n, (number, where) in libseccomp().items() if where != "tracepoint" and number >= 0]
    unnamed = [n for n in table if n not in named]
    assert {"kexec_load", "kexec_file_load", "nfsservctl", "uselib", "userfaultfd", "tuxcall"} <= set(unnamed)
    got = default_verdicts(dict.fromkeys(unnamed, 1), kernel="6.18.44")
    assert {(v.verdict, v.action, v.errno, v.when) for v in got.values()} == {
        ("denied", "SCMP_ACT_ERRNO", 1, "")}
    assert set(got) == set(unnamed)


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
@pytest.mark.parametrize("caps", [None, []], ids=["default-caps", "no-caps"])
def test_the_default_profile_allows_its_unconditional_names_to_everyone(arch: str, caps: list | None) -> None:
    names = unconditional_allow()
    assert len(names) == 346 and {"read", "openat", "getppid", "uname", "futex"} <= names
    got = default_verdicts(dict.fromkeys(names, 1), arch=arch, caps=caps, kernel="3.10.0")
    assert {n for n, v in got.items() if (v.verdict, v.action) != ("allowed", "SCMP_ACT_ALLOW")} == set()


# clone: args [arg0 MASKED_EQ 2114060288], excludes CAP_SYS_ADMIN; personality: five EQ rules
CLONE_WHEN = "(arg0 & 0x7e020000) == 0x0"
PERSONALITY_WHEN = " or ".join(f"arg0 == {v:#x}" for v in (0, 8, 131072, 131080, 4294967295))
A, D, C = "allowed", "denied", "conditional"
ALLOW, ERRNO = "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO"
# (observed name, arch, caps (None: Docker's default), kernel, verdict, action, errno, when)
DEFAULT_VERDICTS = [
    ("read", "x86_64", None, "6.18.44", A, ALLOW, None, ""),
    ("newuname", "x86_64", None, "6.18.44", A, ALLOW, None, ""),  # the tracepoint of uname
    ("arch_prctl", "x86_64", None, "6.18.44", A, ALLOW, None, ""),  # includes arches amd64, x32
    ("arch_prctl", "aarch64", None, "6.18.44", D, ERRNO, 1, ""),
    ("modify_ldt", "x86_64", None, "6.18.44", A, ALLOW, None, ""),  # amd64, x32, x86
    ("modify_ldt", "aarch64", None, "6.18.44", D, ERRNO, 1, ""),
    ("sync_file_range2", "aarch64", None, "6.18.44", A, ALLOW, None, ""),  # arm, arm64
    ("sync_file_range2", "x86_64", None, "6.18.44", D, ERRNO, 1, ""),
    ("chroot", "x86_64", None, "6.18.44", A, ALLOW, None, ""),  # CAP_SYS_CHROOT: a default cap
    ("chroot", "x86_64", [], "6.18.44", D, ERRNO, 1, ""),
    ("reboot", "x86_64", None, "6.18.44", D, ERRNO, 1, ""),  # CAP_SYS_BOOT
    ("reboot", "x86_64", ["CAP_SYS_BOOT"], "6.18.44", A, ALLOW, None, ""),
    ("mount", "x86_64", None, "6.18.44", D, ERRNO, 1, ""),  # CAP_SYS_ADMIN
    ("mount", "x86_64", ["CAP_SYS_ADMIN"], "6.18.44", A, ALLOW, None, ""),
    ("unshare", "x86_64", None, "6.18.44", D, ERRNO, 1, ""),
    ("bpf", "aarch64", None, "6.18.44", D, ERRNO, 1, ""),
    ("clone", "x86_64", None, "6.18.44", C, ALLOW, 1, CLONE_WHEN),  # other flags: EPERM
    ("clone", "aarch64", None, "6.18.44", C, ALLOW, 1, CLONE_WHEN),
    ("clone", "x86_64", ["CAP_SYS_ADMIN"], "6.18.44", A, ALLOW, None, ""),
    ("clone3", "x86_64", None, "6.18.44", D, ERRNO, 38, ""),  # errnoRet 38: ENOSYS
    ("clone3", "x86_64", ["CAP_SYS_ADMIN"], "6.18.44", A, ALLOW, None, ""),
    ("personality", "x86_64", None, "6.18.44", C, ALLOW, 1, PERSONALITY_WHEN),
    ("ptrace", "x86_64", None, "6.18.44", A, ALLOW, None, ""),  # includes minKernel 4.8
    ("ptrace", "x86_64", None, "4.4.0", D, ERRNO, 1, ""),
    ("ptrace", "x86_64", None, "4.8.0", A, ALLOW, None, ""),
    ("ptrace", "x86_64", ["CAP_SYS_PTRACE"], "4.4.0", A, ALLOW, None, ""),
    ("ptrace", "x86_64", None, None, A, ALLOW, None, ""),  # kernel unknown: a recent one
    ("process_vm_readv", "x86_64", None, "6.18.44", D, ERRNO, 1, ""),  # CAP_SYS_PTRACE
    ("process_vm_readv", "x86_64", ["CAP_SYS_PTRACE"], "6.18.44", A, ALLOW, None, ""),
    ("open_by_handle_at", "x86_64", None, "6.18.44", D, ERRNO, 1, ""),  # CAP_DAC_READ_SEARCH
    ("open_by_handle_at", "x86_64", ["CAP_DAC_READ_SEARCH"], "6.18.44", A, ALLOW, None, ""),
    ("syslog", "x86_64", None, "6.18.44", D, ERRNO, 1, ""),  # CAP_SYSLOG or CAP_SYS_ADMIN
    ("syslog", "x86_64", ["CAP_SYSLOG"], "6.18.44", A, ALLOW, None, ""),
    ("clock_settime", "x86_64", None, "6.18.44", D, ERRNO, 1, ""),  # CAP_SYS_TIME
    ("init_module", "x86_64", ["CAP_SYS_MODULE"], "6.18.44", A, ALLOW, None, ""),
    ("mbind", "x86_64", None, "6.18.44", D, ERRNO, 1, ""),  # CAP_SYS_NICE
    ("kexec_load", "x86_64", None, "6.18.44", D, ERRNO, 1, ""),  # named by no rule
    ("s390_runtime_instr", "x86_64", None, "6.18.44", D, ERRNO, 1, ""),  # s390, s390x
]


@pytest.mark.parametrize("name, arch, caps, kernel, verdict, action, errno, when", DEFAULT_VERDICTS,
                         ids=[f"{v[0]}-{v[1]}-{v[2]}-{v[3]}" for v in DEFAULT_VERDICTS])
def test_default_profile_verdict(name: str, arch: str, caps: list[str] | None, kernel: str | None,
                                 verdict: str, action: str, errno: int | None, when: str) -> None:
    got = default_verdicts({name: 7}, arch=arch, caps=caps, kernel=kernel)[name]
    assert (got.verdict, got.action, got.errno, got.when, got.calls) == (verdict, action, errno, when, 7)


def test_the_conditions_are_the_default_profiles_own() -> None:
    (clone,) = [r for r in default_rules("clone") if not r["includes"]]
    assert clone["args"] == [{"index": 0, "value": 0x7E020000, "op": "SCMP_CMP_MASKED_EQ"}]
    assert clone["excludes"]["caps"] == ["CAP_SYS_ADMIN"]
    assert sorted(r["args"][0]["value"] for r in default_rules("personality")) == [0, 8, 131072, 131080,
                                                                                   4294967295]
    (clone3,) = [r for r in default_rules("clone3") if not r["includes"]]
    assert (clone3["action"], clone3["errnoRet"]) == ("SCMP_ACT_ERRNO", 38)


def test_a_generated_profile_allows_on_its_own_no_more_than_the_default_does() -> None:
    # What the default allows a container with the default caps on amd64, read off its text:
    # the unconditional rules, the amd64 ones, those of a default cap, ptrace (minKernel 4.8).
    by_default = {n for r in default_rules() if r["action"] == ALLOW and not r.get("args")
                  and not r.get("excludes")
                  and ("amd64" in r["includes"].get("arches", ["amd64"]))
                  and set(r["includes"].get("caps", [])) <= DOCKER_DEFAULT_CAPS
                  for n in r["names"]}
    profile = seccomp.make_profile([], "x86_64")
    assert allowed_names(profile) <= by_default
    assert "chroot" in by_default and "reboot" not in by_default and "arch_prctl" in by_default
    (clone,) = rule_for(profile, "clone")
    (default_clone,) = [r for r in default_rules("clone") if not r["includes"]]
    assert [{k: a[k] for k in ("index", "value", "op")} for a in clone["args"]] == default_clone["args"]


def test_check_destination_before_the_window(tmp_path: Path) -> None:
    seccomp.check_destination(str(tmp_path / "profile.json"))  # a new file in a writable folder
    with pytest.raises(ProfileError, match="it is a directory") as info:
        seccomp.check_destination(str(tmp_path))
    assert info.value.hint == "give a file name"
    missing = tmp_path / "no" / "profile.json"
    with pytest.raises(ProfileError, match=f"{tmp_path / 'no'} is not a writable folder"):
        seccomp.check_destination(str(missing))


def test_a_profile_that_cannot_be_put_in_place_leaves_no_temporary_file(tmp_path: Path) -> None:
    (tmp_path / "profile.json").mkdir()  # os.replace onto a directory fails after the write
    with pytest.raises(ProfileError, match="cannot write the seccomp profile .*: Is a directory"):
        seccomp.write_profile(["read"], "x86_64", str(tmp_path / "profile.json"))
    assert os.listdir(tmp_path) == ["profile.json"]


def test_write_audit_table_counts_the_conditional_ones() -> None:
    result = seccomp.audit({"clone": 3, "personality": 1, "read": 2, "reboot": 1},
                           seccomp.load_profile("default"), "x86_64")
    out = io.StringIO()
    seccomp.write_audit(result, "table", out)
    lines = out.getvalue().splitlines()
    assert lines[0] == ("seccomp audit against Docker 20.10.24's default profile (x86_64): 1 of 4 observed "
                        "syscalls would be denied, 2 allowed only with some arguments")
    assert [line.split()[:4] for line in lines[4:]] == [["reboot", "1", "denied", "ERRNO"],
                                                        ["clone", "3", "conditional", "ALLOW"],
                                                        ["personality", "1", "conditional", "ALLOW"]]
    assert lines[5].endswith(CLONE_WHEN) and lines[2].split()[-1] == "WHEN"
