"""--by-process: a target's processes as the report lists them, from what the kernel kept of
each (engine.Processes) and what /proc says of those still running.

The report's rule: a target's counts are exact whatever the kernel kept per process; its
processes' rows are what was kept of each; `other_processes` is the target's counts less
theirs, so that, syscall by syscall, the processes and the rest add up to the target.

Pure but for `look`, which reads /proc.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .engine import Counts, Process

# A target keeps this many processes, each with its own rows; the calls of the rest are the
# target's less those (never lost), and how many they were is counted. A hundred is more than a
# table of processes is read for, and more than nginx's workers on a 64-core host; the bound
# keeps a fork storm from growing the kernel's maps and the helper's memory.
MAX_PROCESSES = 100
CMDLINE_CHARS = 120  # a command line is shortened to this, ending in "..."
COMM_CHARS = 15  # the kernel's TASK_COMM_LEN, less its NUL
LOST = "ELOST"  # a failure whose errno the kernel's map had no room for (as bpfengine says it)


@dataclass(frozen=True)
class Seen:
    """A process as /proc shows it at the end of the window; None: it is gone (or a zombie)."""

    comm: str
    cmdline: str
    nspids: tuple[int, ...]  # NSpid: from the host's pid namespace inwards


def printable(text: str, limit: int) -> str:
    """Text as the plugin takes it: printable ASCII (others become ?), at most `limit` chars."""
    clean = "".join(c if " " <= c <= "~" else "?" for c in text)
    return clean if len(clean) <= limit else clean[:limit - 3] + "..."


def cmdline(raw: bytes) -> str:
    """/proc/<pid>/cmdline (NUL-separated arguments) as one shortened line."""
    words = raw.rstrip(b"\0").split(b"\0")
    return printable(" ".join(w.decode("utf-8", "replace") for w in words), CMDLINE_CHARS)


def nspids(status: str) -> tuple[int, ...]:
    """The NSpid line of /proc/<pid>/status (kernels 4.1+); () if it has none."""
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            return tuple(int(p) for p in line.split()[1:])
    return ()


def zombie(status: str) -> bool:
    return any(line.startswith("State:") and line.split()[1:2] in (["Z"], ["X"])
               for line in status.splitlines())


def look(host_pid: int, proc: str = "/proc") -> Seen | None:
    """What /proc shows of a process now; None if it is gone or only a zombie."""
    try:
        with open(f"{proc}/{host_pid}/status", encoding="utf-8", errors="replace") as f:
            status = f.read()
        with open(f"{proc}/{host_pid}/cmdline", "rb") as f:
            raw = f.read(4096)
        with open(f"{proc}/{host_pid}/comm", encoding="utf-8", errors="replace") as f:
            comm = f.read().rstrip("\n")
    except OSError:
        return None
    if zombie(status):
        return None
    return Seen(comm, cmdline(raw), nspids(status))


def cgroup_pids(directory: str, limit: int) -> list[int]:
    """The pids in a cgroup v2 and the cgroups below it (cgroup.procs), at most `limit`."""
    found: list[int] = []
    for root, _, _ in os.walk(directory):
        try:
            with open(os.path.join(root, "cgroup.procs"), encoding="ascii") as f:
                found += [int(line) for line in f if line.strip().isdigit()]
        except (OSError, ValueError):
            continue
        if len(found) >= limit:
            return found[:limit]
    return found


def covering(total: Counts, parts: list[Counts]) -> Counts:
    """A target's counts read while counting goes on, raised where its processes', read a
    moment later, add up to more: by syscall and errno, the larger, with failures at least
    their errnos and calls at least their failures (no time: a report so far has none to add)."""
    added = summed_counts(parts)

    def larger(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
        return {k: max(a.get(k, 0), b.get(k, 0)) for k in a.keys() | b.keys()}

    errnos = {name: larger(total.errnos.get(name, {}), added.errnos.get(name, {}))
              for name in total.errnos.keys() | added.errnos.keys()}
    errors = larger(total.errors, added.errors)
    for name, by_errno in errnos.items():
        errors[name] = max(errors.get(name, 0), sum(by_errno.values()))
        errnos[name] = balanced(by_errno, errors[name])  # short of the failures: ELOST
    calls = larger(total.calls, added.calls)
    for name, failed in errors.items():
        calls[name] = max(calls.get(name, 0), failed)
    return Counts(calls, errors, errnos, total.time_ns, total.max_ns)


def since(now: list[Process], before: list[Process]) -> list[tuple[Process, Counts]]:
    """Each process's calls since the last read (an interval of the live view): those that
    called, with what they did since, by syscall and errno (as read: they need not agree)."""
    was = {p.host_pid: p.counts for p in before}
    out = []
    for p in now:
        gone = minus(p.counts, was.get(p.host_pid, Counts({}, {})), balance=False)
        if gone.calls or gone.errors:
            out.append((p, gone))
    return out


def minus(total: Counts, part: Counts, balance: bool = True) -> Counts:
    """total - part, by syscall and errno: what is left of a target's counts once its kept
    processes' are taken out (no time: times are not kept per process). Where the kernel's maps
    were full the two can disagree a little (a process kept a failure as ELOST that the target
    kept by its errno): nothing goes below zero, and each row's errnos add up to its errors.
    Without `balance` the errnos are left as subtracted (two reads while counting goes on:
    their errnos need not add up, see engine.agreeing)."""
    def less(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
        out = {k: max(0, v - b.get(k, 0)) for k, v in a.items()}
        return {k: v for k, v in out.items() if v}

    calls, errors = less(total.calls, part.calls), less(total.errors, part.errors)
    errnos = {}
    for name, failed in errors.items():
        left = less({e: n for e, n in total.errnos.get(name, {}).items() if e != LOST},
                    part.errnos.get(name, {}))
        errnos[name] = balanced(left, failed) if balance else left
    return Counts(calls, errors, {name: e for name, e in errnos.items() if e})


def balanced(errnos: dict[str, int], errors: int) -> dict[str, int]:
    """Errnos made to add up to `errors`: short, the rest is ELOST; over, the most frequent
    give way first."""
    out = dict(errnos)
    over = sum(out.values()) - errors
    for err in sorted(out, key=lambda e: (-out[e], e)):
        if over <= 0:
            break
        take = min(over, out[err])
        out[err] -= take
        over -= take
    out = {e: n for e, n in out.items() if n}
    if over < 0:
        out[LOST] = -over
    return out


def summed_counts(parts: list[Counts]) -> Counts:
    """Counts added up, by syscall and errno (no time)."""
    calls: dict[str, int] = {}
    errors: dict[str, int] = {}
    errnos: dict[str, dict[str, int]] = {}
    for c in parts:
        for name, n in c.calls.items():
            calls[name] = calls.get(name, 0) + n
        for name, n in c.errors.items():
            errors[name] = errors.get(name, 0) + n
        for name, by_errno in c.errnos.items():
            into = errnos.setdefault(name, {})
            for err, n in by_errno.items():
                into[err] = into.get(err, 0) + n
    return Counts(calls, errors, errnos)


def in_target(seen: Seen | None, level: int) -> int | None:
    """A process's pid as its target sees it (`docker top`, `ps` inside): its NSpid at the
    level of the target's pid namespace; None where /proc never showed it (it exited first)."""
    if seen is not None and 0 <= level < len(seen.nspids):
        return seen.nspids[level]
    return None


def total(c: Counts) -> dict[str, int]:
    return {"calls": sum(c.calls.values()), "errors": sum(c.errors.values())}
