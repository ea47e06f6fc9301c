"""Syscall numbers and errno values -> names, per architecture, from the kernel's own tables
(tables/, see its README), and what the BPF engine must know of each architecture's pt_regs.

Parsing is pure (texts in, dicts out); `for_machine` reads the shipped tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

TABLES = Path(__file__).resolve().parent / "tables"
NOT_IMPLEMENTED = "ni_syscall"
_ENTRY = re.compile(r"^__SYSCALL(?:_NORETURN|_WITH_COMPAT)?\((\d+),\s*(\w+)")
_DEFINE = re.compile(r"^#define\s+(E[A-Z0-9_]+)\s+(\d+)\b")

# The syscalls every engine counts where they enter (they never return, or, for
# rt_sigreturn, return with the saved syscall number set to -1 so no exit names them), and
# those that return twice (in the child with 0: only the parent's return is a call).
COUNT_AT_ENTER = ("exit", "exit_group", "rt_sigreturn")
RETURN_TWICE = frozenset({"fork", "vfork", "clone", "clone3"})


def parse_syscalls(text: str) -> dict[int, str]:
    """A generated syscall table (`__SYSCALL(nr, sys_name)` lines) -> number -> name. A name is
    the entry point's without `sys_`: the SYSCALL_DEFINE name, which the tracepoints carry.
    Unimplemented numbers (sys_ni_syscall) are left out."""
    table = {}
    for line in text.splitlines():
        match = _ENTRY.match(line.strip())
        if not match:
            continue
        nr, entry = int(match.group(1)), match.group(2)
        name = entry.removeprefix("sys_")
        if name == entry:
            raise ValueError(f"not a syscall entry point: {line.strip()[:80]!r}")
        if name != NOT_IMPLEMENTED:
            table[nr] = name
    if not table:
        raise ValueError("no syscall entries in the table")
    return table


def parse_errnos(*texts: str) -> dict[int, str]:
    """errno headers -> number -> name; the first name of a number wins (EAGAIN, not the
    alias EWOULDBLOCK, which is defined by name and not by number anyway)."""
    names: dict[int, str] = {}
    for text in texts:
        for line in text.splitlines():
            match = _DEFINE.match(line.strip())
            if match:
                names.setdefault(int(match.group(2)), match.group(1))
    return names


@dataclass(frozen=True)
class Layout:
    """Where a syscall's number and the task's mode are in `struct pt_regs` at syscall exit:
    the BPF program reads 32 bytes from regs_off and takes 64-bit words from them."""

    regs_off: int
    nr_word: int
    nr_is_s32: bool
    mode_word: int
    compat_mask: int
    compat_value: int


# x86_64: orig_ax at 120, then ip, cs (136): a 32-bit task runs in __USER32_CS (0x23). The
# number is orig_ax's low 32 bits, sign-extended, as the kernel reads it (since 5.14: a
# syscall(0x100000027) is getpid).
# arm64: pstate at 264 (PSR_MODE32_BIT 0x10 for an AArch32 task), orig_x0, syscallno (s32) at 280.
LAYOUTS = {
    "x86_64": Layout(regs_off=120, nr_word=0, nr_is_s32=True, mode_word=2,
                     compat_mask=0xFFFF, compat_value=0x23),
    "aarch64": Layout(regs_off=264, nr_word=2, nr_is_s32=True, mode_word=0,
                      compat_mask=0x10, compat_value=0x10),
}
ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}


@dataclass(frozen=True)
class Arch:
    machine: str
    layout: Layout
    native: dict[int, str]
    compat: dict[int, str]
    errnos: dict[int, str]

    def name(self, nr: int, compat: bool = False) -> str:
        """A syscall's name as reported: compat calls get `compat_`, numbers the table does
        not know `syscall_<nr>` (a kernel newer than the tables)."""
        table = self.compat if compat else self.native
        name = table.get(nr, f"syscall_{nr}")
        return f"compat_{name}" if compat else name

    def errno_name(self, err: int) -> str:
        return self.errnos.get(err, f"E{err}")

    def numbers(self, names: frozenset[str] | set[str]) -> list[int]:
        return sorted(nr for nr, name in self.native.items() if name in names)


def for_machine(machine: str, tables: Path = TABLES) -> Arch:
    """The architecture `platform.machine()` names, with its tables; KeyError if unknown."""
    machine = ALIASES.get(machine, machine)
    layout = LAYOUTS[machine]

    def read(name: str) -> str:
        return (tables / name).read_text()

    return Arch(machine, layout, parse_syscalls(read(f"{machine}-native.h")),
                parse_syscalls(read(f"{machine}-compat.h")),
                parse_errnos(read("errno-base.h"), read("errno.h"), read("errno-kernel.h")))
