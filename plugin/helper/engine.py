"""What every counting engine answers: start, tick, stop, close. helper/main.py holds one of
these and never asks which.

Pure: the data types and the interface, no I/O.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Counts:
    """One target's counts over an interval, by syscall name; absent names are zeros."""

    calls: dict[str, int]
    errors: dict[str, int]
    errnos: dict[str, dict[str, int]] = field(default_factory=dict)  # syscall -> errno -> failures
    time_ns: dict[str, int] = field(default_factory=dict)  # time spent in the calls
    max_ns: dict[str, int] = field(default_factory=dict)  # the longest call


@dataclass(frozen=True)
class Process:
    """One process (thread group) of a target over the window, as the kernel saw it."""

    host_pid: int  # in the host's pid namespace
    comm: str  # its command name: at its last execve, or at exit_group
    exited: bool  # it called exit_group
    counts: Counts  # its calls, failures and errnos, by syscall name
    lost: int = 0  # calls the kernel's map had no room to keep for it


@dataclass(frozen=True)
class Processes:
    """A target's processes: those kept (at most the engine's bound), and how many were not."""

    kept: list[Process]
    folded: int = 0  # processes beyond the bound: their calls are the target's less the kept's
    more: bool = False  # more were folded than could be told apart: `folded` is a floor


@dataclass(frozen=True)
class Tick:
    """One interval of every target."""

    counts: list[Counts]  # per target, in the order given
    seconds: float  # its end, since counting started
    final: bool  # the window ends here


class Engine(Protocol):
    name: str  # "bpf" or "perf", as the report says
    version: str  # of the tool that counts: "libbpf 1.5", "perf 6.12.117"
    syscalls: list[str]  # every name it can count (the --all rows)
    finished: threading.Event  # set once the last tick is read: nothing can stop it now

    def start(self) -> float:
        """Block until every target is counted; the moment it began (monotonic clock)."""

    def tick(self) -> Tick | None:
        """The next interval's counts, or None when there is nothing more."""

    def stop(self) -> None:
        """End the window now (any thread): the next tick is the last."""

    def cost(self) -> dict[str, int] | None:
        """What counting cost the kernel over the window, where the engine can tell."""

    def totals(self) -> list[Counts] | None:
        """After the last tick: the whole window per target, where the engine reads it whole
        (None: the ticks add up to it)."""

    def uncounted(self) -> int:
        """Calls it saw but could not count (a full map)."""

    def process_ids(self) -> list[tuple[int, int]]:
        """While counting: the (target index, host pid) of the processes kept so far."""

    def processes(self, whole: bool = True) -> list[Processes] | None:
        """Each target's processes, where the engine counted them (--by-process, BPF); None
        where it did not. `whole`: after the last tick, the window's; else so far, read while
        counting goes on (a call's errnos need not add up to its errors: see settled)."""

    def close(self) -> None:
        """After the report: let go of everything counting held."""


class HelperFailure(Exception):
    """The helper cannot count; `code` names the cause for the plugin (tracefs, cgroup, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def merge(total: Counts, part: Counts) -> Counts:
    """total + part: sums, and the larger maximum."""

    def add(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
        out = dict(a)
        for k, v in b.items():
            out[k] = out.get(k, 0) + v
        return out

    errnos = {name: dict(e) for name, e in total.errnos.items()}
    for name, e in part.errnos.items():
        errnos[name] = add(errnos.get(name, {}), e)
    longest = dict(total.max_ns)
    for name, v in part.max_ns.items():
        longest[name] = max(longest.get(name, 0), v)
    return Counts(add(total.calls, part.calls), add(total.errors, part.errors), errnos,
                  add(total.time_ns, part.time_ns), longest)


def settled(c: Counts) -> Counts:
    """Counts read while counting goes on, made to agree with themselves: the BPF engine reads
    a call's errnos a moment after its calls and errors, so they may differ by the failures in
    between, and a document whose errnos do not add up to its errors is refused. A call with
    errnos takes their sum as its errors, and at least that many calls. Only a report so far
    is settled; the final one is read with counting off, and agrees as read."""
    errors = dict(c.errors)
    calls = dict(c.calls)
    for name, by_errno in c.errnos.items():
        errors[name] = sum(by_errno.values())
        calls[name] = max(calls.get(name, 0), errors[name])
    return Counts(calls, errors, c.errnos, c.time_ns, c.max_ns)


def agreeing(c: Counts) -> Counts:
    """An interval's counts as read, with each call's errnos only where they add up to its
    errors (read a moment apart while counting goes on): calls and errors stay exact deltas,
    and a row whose errnos ran ahead shows none for that interval; likewise times."""
    errnos = {name: e for name, e in c.errnos.items() if sum(e.values()) == c.errors.get(name, 0)}
    # The longest call may be one of an earlier interval: then this one's time says nothing.
    timed = {name: t for name, t in c.time_ns.items() if c.max_ns.get(name, 0) <= t}
    return Counts(c.calls, c.errors, errnos, timed, {n: c.max_ns.get(n, 0) for n in timed})

