"""systables.py read in the tests themselves (test_bpf_pure reads the tables once, at import):
the shipped tables (plugin/helper/tables, the kernel's own generated files) counted line by
line here, and small tables written by hand for the parser's corners."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin.helper import systables

TABLES = Path(systables.__file__).resolve().parent / "tables"


def entries(name: str) -> dict[int, str]:
    """`__SYSCALL(nr, sys_name[, compat entry])` lines of a shipped table, read without systables'
    pattern: the first entry point names the call (i386's vm86 is compat_vm86 on x86_64, though
    the kernel answers it with ENOSYS there: the program still made that call)."""
    found = {}
    for line in (TABLES / name).read_text().splitlines():
        if line.startswith("__SYSCALL"):
            nr, entry = line[line.index("(") + 1:line.index(")")].split(",")[:2]
            if entry.strip() != "sys_ni_syscall":
                found[int(nr)] = entry.strip().removeprefix("sys_")
    return found


@pytest.mark.parametrize("machine, alias", [("x86_64", "amd64"), ("aarch64", "arm64")])
def test_for_machine_reads_every_table_of_its_architecture(machine: str, alias: str) -> None:
    arch = systables.for_machine(machine)
    assert arch == systables.for_machine(alias)  # Docker's and Go's spelling of the machine
    assert arch.machine == machine and arch.layout == systables.LAYOUTS[machine]
    assert arch.native == entries(f"{machine}-native.h")
    assert arch.compat == entries(f"{machine}-compat.h")
    # errno-base.h, errno.h and the kernel's own errno-kernel.h, each read
    assert (arch.errno_name(1), arch.errno_name(35), arch.errno_name(133), arch.errno_name(512)) == (
        "EPERM", "EDEADLK", "EHWPOISON", "ERESTARTSYS")


def test_an_unknown_machine_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        systables.for_machine("s390x")


def test_for_machine_reads_the_tables_it_is_given(tmp_path: Path) -> None:
    tables = {"x86_64-native.h": "__SYSCALL(0, sys_read)\n", "x86_64-compat.h": "__SYSCALL(20, sys_getpid)\n",
              "errno-base.h": "#define\tEPERM\t\t 1\n", "errno.h": "#define\tEDEADLK\t\t35\n",
              "errno-kernel.h": "#define ERESTARTSYS\t512\n"}
    for name, text in tables.items():
        (tmp_path / name).write_text(text)
    arch = systables.for_machine("amd64", tmp_path)
    assert (arch.native, arch.compat) == ({0: "read"}, {20: "getpid"})
    assert arch.errnos == {1: "EPERM", 35: "EDEADLK", 512: "ERESTARTSYS"}


def test_parse_syscalls_skips_what_is_no_entry_and_unimplemented_numbers() -> None:
    text = ("/* generated */\n#ifdef X\n__SYSCALL(0, sys_read)\n  __SYSCALL(1, sys_write)  \n"
            "__SYSCALL(2, sys_ni_syscall)\n__SYSCALL_WITH_COMPAT(3, sys_ioctl, compat_sys_ioctl)\n"
            "__SYSCALL_NORETURN(60, sys_exit)\n#endif\n")
    assert systables.parse_syscalls(text) == {0: "read", 1: "write", 3: "ioctl", 60: "exit"}


def test_parse_syscalls_refusals_say_which_line() -> None:
    long_name = "x" * 100
    with pytest.raises(ValueError) as info:
        systables.parse_syscalls(f"__SYSCALL(0, {long_name})\n")
    assert str(info.value) == f"not a syscall entry point: {f'__SYSCALL(0, {long_name})'[:80]!r}"
    with pytest.raises(ValueError) as info:
        systables.parse_syscalls("/* nothing */\n")
    assert str(info.value) == "no syscall entries in the table"


def test_parse_errnos_first_name_of_a_number_wins() -> None:
    text = "#define\tEAGAIN\t\t11\t/* Try again */\n  #define EWOULDBLOCK 11\n#define EDEADLOCK EDEADLK\n"
    assert systables.parse_errnos(text, "#define EPERM 1\n#define EAGAIN2 11\n") == {11: "EAGAIN", 1: "EPERM"}


def test_numbers_of_names() -> None:
    arch = systables.for_machine("x86_64")
    assert arch.numbers({"clone", "fork", "vfork", "clone3", "no_such_call"}) == [56, 57, 58, 435]
    assert arch.numbers(set()) == []
