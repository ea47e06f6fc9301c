"""perf argv builder and perf output parser. Pure: names, texts and numbers are handed in.

How calls are counted (measured on a 2-core kernel 6.18 host, a getppid loop in the target;
bench/ repeats it): counting both `sys_enter_X` and `sys_exit_X` with a failure filter left
the loop 0.40 of its speed and took 30 s to close; counting at the exit tracepoint only, once
plain (calls) and once with the filter (failed calls), left it 0.47 and closes in 15 s. So a
call is counted when it returns, as the BPF engine counts it, with these exceptions:
- exit and exit_group never return, and rt_sigreturn returns with the saved syscall number
  set to -1, so that its exit tracepoint never fires: counted where they enter, no failures.
- fork, vfork, clone and clone3 return twice, in the child with 0: a call is the parent's
  return, a pid or an error (`ret != 0`).
A failure is a return value in [-4095, -1], the kernel's own IS_ERR_VALUE, as libc reads it
(F_GETOWN returns a process group as a negative number that is not an error).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .systables import COUNT_AT_ENTER, RETURN_TWICE

ERROR_FILTER = "ret < 0 && ret >= -4095"
PARENT_FILTER = "ret != 0"


class PerfOutputError(ValueError):
    """perf printed something that is not the counts we asked for."""


@dataclass(frozen=True)
class Counter:
    syscall: str
    kind: str  # "calls" or "errors"
    event: str  # e.g. syscalls:sys_exit_openat
    filter: str | None = None


@dataclass(frozen=True)
class Counts:
    seconds: float  # the end of the interval, in seconds since counting started (perf's stamp)
    calls: dict[str, int]
    errors: dict[str, int]


def plan(enter_events: Iterable[str], exit_events: Iterable[str]) -> list[Counter]:
    """The counters for every syscall that has tracepoints, given the names under
    events/syscalls/ (`sys_enter_openat`, `sys_exit_openat`, ...)."""
    enters = {e[len("sys_enter_"):] for e in enter_events if e.startswith("sys_enter_")}
    exits = {e[len("sys_exit_"):] for e in exit_events if e.startswith("sys_exit_")}
    counters = []
    for name in sorted(enters | exits):
        exit_event = f"syscalls:sys_exit_{name}"
        if (name in COUNT_AT_ENTER and name in enters) or name not in exits:
            counters.append(Counter(name, "calls", f"syscalls:sys_enter_{name}"))
            continue
        counters.append(Counter(name, "calls", exit_event,
                                PARENT_FILTER if name in RETURN_TWICE else None))
        counters.append(Counter(name, "errors", exit_event, ERROR_FILTER))
    return counters


# perf reads a --for-each-cgroup entry with any of these as a regular expression, and the
# comma separates entries: such a name cannot be given to perf as it is.
NOT_IN_CGROUP_NAMES = frozenset(",{}[]()|*+?^$")


def argv(
    counters: list[Counter],
    cgroups: list[str],
    window_ms: int,
    control: tuple[int, int],
    log_fd: int,
    perf: str = "perf",
) -> list[str]:
    """perf stat counting `counters` for each of `cgroups` on every CPU, printing every window.

    `-I window` prints on time; the plain end-of-run print would come only after closing
    every event (one RCU grace period per tracepoint, ~15 s). perf goes on printing every
    window until it is stopped, which lets the helper keep the events open. The control
    fds let the caller learn when counting starts (`ping` is acked from perf's main loop,
    which runs only once every event is enabled). SIGINT prints the counts so far.
    --for-each-cgroup repeats every event (filter included) per cgroup, cgroup by cgroup,
    in one perf process: several containers cost one start and one close."""
    for name in cgroups:
        if not name or NOT_IN_CGROUP_NAMES & set(name):
            raise ValueError(f"perf cannot be given the cgroup name {name!r}")
    args = [
        perf, "stat", "--no-big-num", "-x", ",",
        "-I", str(window_ms),
        "-a", "--control", f"fd:{control[0]},{control[1]}", "--log-fd", str(log_fd),
    ]
    for counter in counters:
        args += ["-e", counter.event]
        if counter.filter:
            args += ["--filter", counter.filter]
    args += ["--for-each-cgroup", ",".join(cgroups)]
    return args


def _count(field: str, line: str) -> int:
    if field in ("<not counted>", ""):
        return 0  # the cgroup never ran while the counter was enabled
    if field == "<not supported>":
        raise PerfOutputError(f"perf cannot count this event: {line[:200]!r}")
    if not (field.isascii() and field.isdigit()):  # int() would take "١٢" too
        raise PerfOutputError(f"not a count: {line[:200]!r}")
    return int(field)


def is_data_line(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def parse_interval(lines: list[str], counters: list[Counter], cgroups: list[str]) -> list[Counts]:
    """The counts of one interval of `perf stat -x, -I ... --for-each-cgroup` output, one
    Counts per cgroup, in the order given.

    Each data line is `time,count,unit,event,cgroup,run-time,percent,...`: every counter of
    the first cgroup in the order the counters were given, then of the next cgroup. The
    order is the only thing that tells the filtered counter from the plain one, so the
    event and the cgroup of every line are checked."""
    data = [line.rstrip("\n") for line in lines if is_data_line(line)]
    expected = len(counters) * len(cgroups)
    if len(data) != expected:
        raise PerfOutputError(f"perf printed {len(data)} counts for {expected} counters")
    seconds = None
    result = []
    for i, cgroup in enumerate(cgroups):
        calls: dict[str, int] = {}
        errors: dict[str, int] = {}
        block = data[i * len(counters):(i + 1) * len(counters)]
        for line, counter in zip(block, counters, strict=True):
            fields = line.strip().split(",")
            if len(fields) < 5:
                raise PerfOutputError(f"too few fields: {line[:200]!r}")
            # perf prints the cgroup name without its leading slash
            if fields[3] != counter.event or fields[4].lstrip("/") != cgroup.lstrip("/"):
                raise PerfOutputError(f"expected {counter.event} of {cgroup}, perf printed {line[:200]!r}")
            try:
                stamp = float(fields[0])
            except ValueError:
                raise PerfOutputError(f"not a timestamp: {line[:200]!r}") from None
            if seconds is None:
                seconds = stamp
            elif stamp != seconds:
                raise PerfOutputError("counts of more than one interval")
            target = calls if counter.kind == "calls" else errors
            target[counter.syscall] = target.get(counter.syscall, 0) + _count(fields[1], line)
        result.append(Counts(seconds=seconds or 0.0, calls=calls, errors=errors))
    return result
