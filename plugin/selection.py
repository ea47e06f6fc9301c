"""`--syscall`: which syscalls to count, from names and classes, checked before any helper runs.

A value is a comma-separated list of syscall names (`openat,read`) and class names as
`--by-class` groups them (`network`); the flag may be repeated. A name is known if the
syscall tables the helper carries (x86_64 and arm64) know it: the helper counts the names of
its own architecture and says which it does not have. One name is both a class and a
syscall: `time` is the class (which holds the syscall); `sys_time` is the syscall alone, and
any name may be spelt with `sys_` before it.

Pure but for reading the tables this package ships (once, on first use).
"""

from __future__ import annotations

import difflib
import functools

from . import classes
from .helper import systables

SYS_PREFIX = "sys_"
MACHINES = ("x86_64", "aarch64")


@functools.cache
def known_names() -> frozenset[str]:
    """Every syscall name of the architectures the helper counts."""
    names: set[str] = set()
    for machine in MACHINES:
        names |= set(systables.for_machine(machine).native.values())
    return frozenset(names)


def near(name: str, known: frozenset[str]) -> list[str]:
    """The known names closest to a misspelt one, closest first (at most three)."""
    return difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.75)


def members(cls: str, known: frozenset[str], mapping: dict[str, str]) -> set[str]:
    """The known syscalls of a class; `other` also holds those the class list does not name,
    as --by-class puts them there."""
    return {name for name in known if mapping.get(name, "other") == cls}


def check_value(text: str, known: frozenset[str] | None = None) -> str:
    """One --syscall value -> its names, comma-separated, as given; ValueError names what is
    wrong and, for a misspelt name, what was meant (the flag's error message)."""
    known = known_names() if known is None else known
    words = [w.strip() for w in text.split(",")]
    if not any(words):
        raise ValueError("name a syscall, or a class: " + ", ".join(classes.CLASSES))
    for word in words:
        if not word:
            raise ValueError("an empty name between commas")
        if word in classes.CLASSES:
            continue
        name = word.removeprefix(SYS_PREFIX)
        if name not in known:
            close = near(name, known) + [c for c in near(name, frozenset(classes.CLASSES))]
            meant = f" (did you mean {' or '.join(close)}?)" if close else ""
            raise ValueError(f"{word} is not a syscall nor a class{meant}")
    return ",".join(words)


def named(values: list[str]) -> tuple[str, ...]:
    """The syscalls the checked values name one by one (not through a class), sorted."""
    return tuple(sorted({word.removeprefix(SYS_PREFIX) for value in values
                         for word in value.split(",") if word not in classes.CLASSES}))


def resolve(values: list[str], known: frozenset[str] | None = None,
            mapping: dict[str, str] | None = None) -> tuple[str, ...]:
    """The checked values of every --syscall -> the syscall names they stand for, sorted;
    () when none was given (count every syscall)."""
    known = known_names() if known is None else known
    mapping = classes.mapping() if mapping is None else mapping
    names: set[str] = set()
    for value in values:
        for word in value.split(","):
            if word in classes.CLASSES:
                names |= members(word, known, mapping)
            else:
                names.add(word.removeprefix(SYS_PREFIX))
    return tuple(sorted(names))
