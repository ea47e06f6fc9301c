"""What the BPF engine needs and can be checked without a kernel: the kernel's syscall and
errno tables (plugin/helper/tables, recorded from Debian's linux-headers), the cgroup v2 of a
target on every recorded layout, the layout handed to the BPF program, and the arithmetic of
its snapshots."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from plugin.helper import bpfengine, cgroup, systables
from plugin.helper.bpfengine import ABI_COMPAT, Snapshot

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
X86, ARM = systables.for_machine("x86_64"), systables.for_machine("aarch64")
TRACEPOINTS = set((FIXTURES / "syscalls" / "tracepoints-x86_64.txt").read_text().split())


# --- the tables -------------------------------------------------------------------------------

@pytest.mark.parametrize("arch, nr, name", [
    (X86, 0, "read"), (X86, 5, "newfstat"), (X86, 15, "rt_sigreturn"), (X86, 39, "getpid"),
    (X86, 56, "clone"), (X86, 57, "fork"), (X86, 81, "fchdir"), (X86, 110, "getppid"),
    (X86, 231, "exit_group"), (X86, 435, "clone3"), (X86, 469, "file_setattr"),
    (ARM, 17, "getcwd"), (ARM, 50, "fchdir"), (ARM, 57, "close"), (ARM, 79, "newfstatat"),
    (ARM, 94, "exit_group"), (ARM, 139, "rt_sigreturn"), (ARM, 172, "getpid"), (ARM, 173, "getppid"),
    (ARM, 220, "clone"), (ARM, 223, "fadvise64_64"), (ARM, 435, "clone3"),
])
def test_native_numbers_are_named_as_the_kernel_names_them(arch: systables.Arch, nr: int, name: str) -> None:
    assert arch.name(nr) == name


def test_every_tracepoint_of_this_kernel_is_in_the_x86_64_table() -> None:
    # The names both engines give are the same: perf's are the tracepoints' (recorded on the
    # 6.18 development kernel), the BPF engine's the table's entry points.
    names = set(X86.native.values())
    assert TRACEPOINTS <= names
    # The table knows more: syscalls this kernel was built without, and newer ones.
    assert names - TRACEPOINTS == {"delete_module", "finit_module", "init_module", "kexec_file_load",
                                   "kexec_load", "listns", "map_shadow_stack", "rseq_slice_yield"}


def test_compat_calls_are_named_from_the_32_bit_tables_never_the_64_bit_ones() -> None:
    # i386 20 is getpid; x86_64 20 is writev. arm 20 is getpid; arm64 20 is epoll_create1.
    assert X86.name(20, compat=True) == "compat_getpid" and X86.name(20) == "writev"
    assert ARM.name(20, compat=True) == "compat_getpid" and ARM.name(20) == "epoll_create1"
    assert X86.name(119, compat=True) == "compat_sigreturn"
    assert X86.name(999) == "syscall_999" and X86.name(999, compat=True) == "compat_syscall_999"


def test_unimplemented_numbers_are_not_names() -> None:
    assert 134 not in X86.native  # sys_ni_syscall (uselib)
    assert "ni_syscall" not in X86.native.values()


def test_the_tables_have_no_name_twice() -> None:
    for table in (X86.native, X86.compat, ARM.native, ARM.compat):
        assert len(set(table.values())) == len(table)


@pytest.mark.parametrize("err, name", [(1, "EPERM"), (2, "ENOENT"), (9, "EBADF"), (11, "EAGAIN"),
                                       (38, "ENOSYS"), (110, "ETIMEDOUT"), (512, "ERESTARTSYS"),
                                       (516, "ERESTART_RESTARTBLOCK"), (4000, "E4000")])
def test_errnos_are_the_kernels_names(err: int, name: str) -> None:
    assert X86.errno_name(err) == name == ARM.errno_name(err)


def test_a_table_line_that_is_not_an_entry_point_is_refused() -> None:
    with pytest.raises(ValueError, match="not a syscall entry point"):
        systables.parse_syscalls("__SYSCALL(0, read)\n")
    with pytest.raises(ValueError, match="no syscall entries"):
        systables.parse_syscalls("#define X 1\n")


# --- the cgroup v2 a target is counted by -----------------------------------------------------

def texts(layout: str) -> tuple[str, str]:
    return ((FIXTURES / "cgroup" / layout / "cgroup").read_text(),
            (FIXTURES / "cgroup" / layout / "mountinfo").read_text())


@pytest.mark.parametrize("layout, directory, level", [
    ("hybrid-cgroupfs", "/sys/fs/cgroup/unified/docker/"
     "e89eaf0e531a4f6a96ff32ab35ee19c1ecb499a4ac1eeeb9391b039383d55702", 2),
    ("systemd-driver-scope", "/sys/fs/cgroup/system.slice/"
     "docker-16135f82b7f94dd141e2623fce3827b09b5e5b42196489f8886737dfa79de45d.scope", 2),
    ("rootless-user-slice", "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/user.slice/"
     "docker-48af5cb5b60ad22b0ebd3717718ab962e943e4fde924341414b4a8eb397fd040.scope", 5),
    # cgroup2 mounted with its root at /docker: the directory is below the mount, the level
    # is the cgroup's own (from the hierarchy's root).
    ("mount-root-docker",
     "/sys/fs/cgroup/bccc18fc72c848e95688bf4fe68bdb0e230aa763172bb82a08d2e0f49ffd1555", 2),
    ("v1-perf-event-cgroupfs", "/sys/fs/cgroup/unified/docker/"
     "c21b78ce9f4173f175efe1d4d0f06eaf13b0cf151919976e3561319528dcc999", 2),
])
def test_v2_cgroup_of_every_recorded_layout(layout: str, directory: str, level: int) -> None:
    found = cgroup.resolve_v2(*texts(layout))
    assert found.directory == directory and found.level == level
    assert found.path == texts(layout)[0].split("0::")[1].strip()


def test_a_v1_only_host_has_no_v2_cgroup() -> None:
    proc, mountinfo = texts("v1-perf-event-cgroupfs")
    v1_only = "\n".join(line for line in mountinfo.splitlines() if " cgroup2 " not in line)
    with pytest.raises(cgroup.CgroupError, match="no cgroup2 is mounted"):
        cgroup.resolve_v2(proc, v1_only)


def test_a_container_left_in_its_engines_cgroup_v2_is_refused() -> None:
    # Hybrid, but the runtime gave the container v1 cgroups only: its processes sit in the
    # engine's own cgroup v2, with every other container's. Counting that would count them all.
    proc, mountinfo = texts("v1-perf-event-cgroupfs")
    shared = "\n".join(line for line in proc.splitlines() if not line.startswith("0::")) + \
        "\n0::/system.slice/docker.service\n"
    with pytest.raises(cgroup.CgroupError, match="is not its container's cgroup"):
        cgroup.resolve_v2(shared, mountinfo)
    in_root = "\n".join(line for line in proc.splitlines() if not line.startswith("0::")) + "\n0::/\n"
    with pytest.raises(cgroup.CgroupError, match="root cgroup v2"):
        cgroup.resolve_v2(in_root, mountinfo)


def test_a_cgroup_outside_the_namespace_is_refused() -> None:
    _, mountinfo = texts("systemd-driver-scope")
    with pytest.raises(cgroup.CgroupError, match="outside this cgroup namespace"):
        cgroup.resolve_v2("0::/../../system.slice/x.scope\n", mountinfo)


# --- what is handed to the BPF program ------------------------------------------------------

def test_config_lays_out_the_architecture_for_the_program() -> None:
    raw = bpfengine.config_bytes(X86, latency=True)
    assert len(raw) == 592  # sizeof(struct config) in spy.bpf.c, and the object's .rodata
    regs_off, nr_word, nr_is_s32, mode_word, mask, value, latency, _, twice, *compat = \
        bpfengine.CONFIG.unpack(raw)[:13]
    # --by-process off; the process bound, and execve, execveat and exit_group's numbers
    assert bpfengine.CONFIG.unpack(raw)[13:] == (0, 100, 59, 322, 231, 0)
    # orig_ax's low 32 bits, sign-extended, as the kernel reads the number
    assert (regs_off, nr_word, nr_is_s32, mode_word, mask, value) == (120, 0, 1, 2, 0xFFFF, 0x23)
    assert latency == 1
    assert {nr for nr, flag in enumerate(twice) if flag} == {56, 57, 58, 435}  # clone, fork, vfork, clone3
    assert compat == [2, 120, 190, 435]  # i386: fork, clone, vfork, clone3
    arm = bpfengine.CONFIG.unpack(bpfengine.config_bytes(ARM, latency=False))
    assert arm[:7] == (264, 2, 1, 0, 0x10, 0x10, 0)
    assert {nr for nr, flag in enumerate(arm[8]) if flag} == {220, 435}  # arm64 has no fork, vfork
    assert list(arm[9:13]) == [2, 120, 190, 435]  # the 32-bit ARM table numbers them as i386 does
    by_process = bpfengine.CONFIG.unpack(bpfengine.config_bytes(ARM, latency=False, by_process=True,
                                                                max_procs=7))
    assert by_process[13:] == (1, 7, 221, 281, 94, 0)  # arm64: execve, execveat, exit_group


def test_the_objects_rodata_is_the_config_struct() -> None:
    # The object ships prebuilt (build.sh): its .rodata must be exactly the struct laid out here.
    data = bpfengine.OBJECT.read_bytes()
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab = sections[shstrndx]
    names = {data[strtab[4] + s[0]:].split(b"\0", 1)[0].decode(): s for s in sections}
    assert names[".rodata"][5] == bpfengine.CONFIG.size
    assert not any(name.startswith(("tp_btf", "fentry", ".rel.BTF.ext.core")) for name in names)


def test_control_has_the_levels_and_a_few_targets_in_place() -> None:
    fields = bpfengine.CONTROL.unpack(bpfengine.control_bytes(True, {901: (0, 2), 902: (1, 5), 903: (2, 2)},
                                                              since_ns=77))
    enabled, n_levels, levels, n_ids, ids, slots, since = fields[0], fields[1], fields[2:10], fields[10], \
        fields[12:20], fields[20:28], fields[28]
    assert (enabled, n_levels, levels[:3]) == (1, 2, (2, 5, 0))
    assert n_ids == 3 and ids[:4] == (901, 902, 903, 0) and slots[:3] == (0, 1, 2)
    assert since == 77
    assert bpfengine.CONTROL.size == 8 + 32 + 8 + 64 + 32 + 8  # sizeof(struct control)
    many = {1000 + i: (i, 2) for i in range(9)}  # more than 8: the hash map, not in place
    assert bpfengine.CONTROL.unpack(bpfengine.control_bytes(True, many))[10] == 0
    with pytest.raises(bpfengine.BpfError, match="more than 8 depths"):
        bpfengine.control_bytes(True, {i: (i, i) for i in range(9)})
    assert bpfengine.CONTROL.unpack(bpfengine.control_bytes(False, {}))[:2] == (0, 0)


# --- snapshots --------------------------------------------------------------------------------

def test_delta_names_subtracts_and_keeps_the_longest_call() -> None:
    before = Snapshot({0: {(0, 110): [100, 0, 0, 0], (0, 81): [10, 10, 0, 0]}},
                      {0: {(0, 81): {9: 10}}})
    after = Snapshot({0: {(0, 110): [150, 0, 5000, 300], (0, 81): [30, 30, 0, 0],
                          (ABI_COMPAT, 20): [4, 1, 0, 0]},
                      1: {(0, 110): [7, 0, 0, 0]}},
                     {0: {(0, 81): {9: 25, 2: 5}, (ABI_COMPAT, 20): {1: 1}}})
    got = bpfengine.delta(before, after, 0, X86)
    assert got.calls == {"getppid": 50, "fchdir": 20, "compat_getpid": 4}
    assert got.errors == {"getppid": 0, "fchdir": 20, "compat_getpid": 1}
    assert got.errnos == {"fchdir": {"EBADF": 15, "ENOENT": 5}, "compat_getpid": {"EPERM": 1}}
    assert got.time_ns == {"getppid": 5000} and got.max_ns == {"getppid": 300}
    assert bpfengine.delta(before, after, 1, X86).calls == {"getppid": 7}
    assert bpfengine.delta(after, after, 0, X86).calls == {}  # nothing happened in between


def test_failures_the_errno_map_had_no_room_for_are_named_so() -> None:
    # The map of errnos is bounded (1,024 + 128 per target); a failure that finds it full is
    # still counted as a failure, and its errno as ELOST, so that errnos add up to errors.
    before = Snapshot({0: {(0, 81): [0, 0, 0, 0]}}, {})
    after = Snapshot({0: {(0, 81): [10, 10, 0, 0]}}, {0: {(0, 81): {9: 7}}})
    assert bpfengine.delta(before, after, 0, X86, whole=True).errnos == {"fchdir": {"EBADF": 7, "ELOST": 3}}
    # Read while counting goes on, errnos come a little after errors: no such account then.
    assert bpfengine.delta(before, after, 0, X86).errnos == {"fchdir": {"EBADF": 7}}


def test_the_reason_of_a_refusal_is_the_verifiers_last_word() -> None:
    from plugin.helper.libbpf import Messages

    messages = Messages.__new__(Messages)  # no libc needed to read lines back
    messages.lines = ["libbpf: prog 'count_exit': BPF program load failed: Invalid argument",
                      "libbpf: prog 'count_exit': -- BEGIN PROG LOAD LOG --",
                      "0: R1=ctx() R10=fp0", "; int count_exit(...)",
                      "unknown func bpf_get_current_ancestor_cgroup_id#123",
                      "processed 12 insns (limit 1000000)",
                      "-- END PROG LOAD LOG --",
                      "libbpf: failed to load object 'spy.bpf.o'"]
    assert messages.reason() == "unknown func bpf_get_current_ancestor_cgroup_id#123"
    messages.lines = ["libbpf: failed to load object 'spy.bpf.o'"]
    assert messages.reason() == "libbpf: failed to load object 'spy.bpf.o'"


def test_the_cost_measured_in_samples_is_scaled_to_the_window() -> None:
    engine = object.__new__(bpfengine.BpfEngine)  # its cost arithmetic alone, no kernel
    engine.cost_before = [(100, 10_000), (5, 500)]
    engine.cost_after = [(1_100, 90_000), (15, 1_500)]  # 1,010 runs, 81,000 ns while measured
    engine.sampled_s, engine.sampling_s = 0.3, 3.0
    assert engine.cost() == {"runs": 10_100, "run_time_ns": 810_000, "sampled_seconds": 0.3}
    engine.sampled_s = engine.sampling_s = 0.05  # a window shorter than one sample: all of it
    assert engine.cost() == {"runs": 1_010, "run_time_ns": 81_000, "sampled_seconds": 0.05}
    engine.sampled_s = 0.0  # the kernel never measured: no cost rather than a made-up one
    assert engine.cost() is None
    del engine.cost_after  # the window never ended
    engine.sampled_s = 0.3
    assert engine.cost() is None
