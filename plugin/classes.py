"""Syscall name -> class (file, network, ...) for `--by-class`, from syscall_classes.json.

The mapping is data, shipped beside this module, so that deciding where a syscall belongs is
an edit to a reviewed list rather than to code; the JSON's "notes" say why the ambiguous ones
are where they are. It is read on first use, not at import: the metadata path imports the
plugin on every `docker --help`.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

CLASSES: tuple[str, ...] = ("file", "network", "process", "memory", "signal", "time", "ipc", "other")
SCHEMA = 1
RESOURCE = "syscall_classes.json"

# Spellings of a syscall other tools print: perf's tracepoint names and the kernel's entry
# symbols. No syscall name starts with one of these (sysfs, syslog, sysinfo have no `_`), so
# stripping one never turns a real name into another. Longest first: sys_ is a prefix of two.
_PREFIXES = ("syscalls:sys_enter_", "syscalls:sys_exit_", "sys_enter_", "sys_exit_",
             "__x64_sys_", "__arm64_sys_", "compat_sys_", "sys_")


def parse(text: str) -> dict[str, str]:
    """The JSON document -> name -> class; ValueError if it is not a valid mapping."""
    doc = json.loads(text)
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"{RESOURCE}: schema {doc.get('schema')!r}, expected {SCHEMA}")
    classes = doc.get("classes")
    if not isinstance(classes, dict) or set(classes) != set(CLASSES):
        raise ValueError(f"{RESOURCE}: the classes must be exactly {', '.join(CLASSES)}")
    by_name: dict[str, str] = {}
    for cls in CLASSES:
        for name in classes[cls]:
            # A name listed twice would be counted under whichever class came last: refuse.
            if name in by_name:
                raise ValueError(f"{RESOURCE}: {name} is in both {by_name[name]} and {cls}")
            by_name[name] = cls
    return by_name


@functools.cache
def _load() -> dict[str, str]:
    # __package__ is `plugin` from a checkout and `docker_spy` once installed.
    return parse(resources.files(__package__).joinpath(RESOURCE).read_text(encoding="utf-8"))


def mapping() -> dict[str, str]:
    """Every known syscall name -> its class, read once from the packaged JSON."""
    return dict(_load())  # a copy: a caller's edit must not change what classify() answers


def classify(name: str) -> str:
    """The class of a syscall name; "other" for a name the mapping does not know."""
    known = _load()
    if name in known:
        return known[name]
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            return known.get(name[len(prefix):], "other")
    return "other"
