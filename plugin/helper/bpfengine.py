"""The BPF engine: bpf/spy.bpf.o loaded through libbpf, its maps read as the window goes.

Cost to the host: one program runs at every syscall's exit on the whole host while it is
attached (it returns after one cgroup lookup per target level for tasks that are not
targets), three more at the entry of exit, exit_group and rt_sigreturn alone, and with
latency one at every syscall's entry. Nothing runs per context switch, and closing costs a
handful of tracepoint unregistrations, not perf's ~700.

Before the window, the engine checks itself on this very kernel: its own cgroup is counted as
an extra target while it makes 5 getppid, 3 failing close (EBADF) and 2 signals (rt_sigreturn),
and anything but exactly those counts, named so, is a refusal (auto then counts with perf).
"""

from __future__ import annotations

import mmap
import os
import signal
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import libbpf
from .cgroup import V2Cgroup
from .engine import Counts, Process, Processes, Tick
from .libbpf import BpfError
from .peers import libc
from .processes import MAX_PROCESSES
from .systables import COUNT_AT_ENTER, RETURN_TWICE, Arch

OBJECT = Path(__file__).resolve().parent / "bpf" / "spy.bpf.o"
NR_SLOTS = 512  # as in spy.bpf.c
MAX_LEVELS = 8
FEW_TARGETS = 8
ABI_COMPAT = 1
CONFIG = struct.Struct(f"<IIIIQQII{NR_SLOTS}s4I6I")  # struct config
CONTROL = struct.Struct(f"<II{MAX_LEVELS}III{FEW_TARGETS}Q{FEW_TARGETS}IQ")  # struct control
COUNTS = struct.Struct("<QQ")  # struct counts (and struct times)
OTHER_KEY = struct.Struct("<HHI")
ERRNO_KEY = struct.Struct("<HHI")
SLOT_KEY = struct.Struct("<I")
CGROUP_KEY = struct.Struct("<Q")
PROC_KEY = struct.Struct("<II")  # struct proc_key: slot, tgid
PROC = struct.Struct("<QQQII16s")  # struct proc: calls, errors, lost, exited, pad, comm
CALL_KEY = struct.Struct("<IIIHH")  # struct call_key: slot, tgid, nr, abi, errno
FOLDS = struct.Struct("<II")  # struct folds: processes not kept, and whether more were
CALLS_PER_PROCESS = 48  # room in proc_calls for each kept process: distinct syscalls and errnos
MAX_PROC_CALLS = 65536  # at most, whatever the targets: ~5 MiB of kernel memory, preallocated
FOLD_ROOM = 8192  # processes not kept that are told apart (more: `more` is set)
ENTER_TRACEPOINTS = tuple(f"sys_enter_{name}" for name in COUNT_AT_ENTER)
IN_FLIGHT = 16384  # threads of the targets in a syscall at once, with latency on
SELF_TEST = {"getppid": 5, "close": 3, "rt_sigreturn": 2}
MEMBARRIER_GLOBAL = 1
UNKNOWN_ERRNO = "ELOST"  # a failure whose errno the full map could not take
MEMBARRIER_NR = {"x86_64": 324, "aarch64": 283}
# The kernel measures BPF programs' run time only while BPF_ENABLE_STATS is held, and then
# every BPF program run on the host pays for it (two clock reads: ~80 ns a syscall here, more
# than the counting). So it is held STATS_ON_S of every STATS_PERIOD_S of the window, and the
# cost reported is what was measured then, scaled to the whole window.
STATS_ON_S = 0.1
STATS_PERIOD_S = 1.0

Call = tuple[int, int]  # (abi, nr)


@dataclass
class Snapshot:
    """Everything counted so far, per slot: calls, errors, time and longest call of each
    syscall, and failures by errno."""

    counts: dict[int, dict[Call, list[int]]]  # slot -> call -> [calls, errors, time_ns, max_ns]
    errnos: dict[int, dict[Call, dict[int, int]]]  # slot -> call -> errno -> failures
    errnos_lost: int = 0  # failures whose errno found no room (they are ELOST)
    uncounted: int = 0  # compat or out-of-range calls that found no room


def config_bytes(arch: Arch, latency: bool, by_process: bool = False,
                 max_procs: int = MAX_PROCESSES) -> bytes:
    layout = arch.layout
    twice = bytearray(NR_SLOTS)
    for nr in arch.numbers(RETURN_TWICE):
        if nr < NR_SLOTS:
            twice[nr] = 1
    compat = sorted(nr for nr, name in arch.compat.items() if name in RETURN_TWICE)[:4]
    number = {name: nr for nr, name in arch.native.items()}
    return CONFIG.pack(layout.regs_off, layout.nr_word, int(layout.nr_is_s32), layout.mode_word,
                       layout.compat_mask, layout.compat_value, int(latency), 0, bytes(twice),
                       *compat, *[0] * (4 - len(compat)), int(by_process), max_procs,
                       number["execve"], number["execveat"], number["exit_group"], 0)


def control_bytes(enabled: bool, cgroups: dict[int, tuple[int, int]], since_ns: int = 0) -> bytes:
    """struct control: whether to count, the levels to look at, and, for a few targets, their
    cgroup ids and slots in place (more are looked up in `targets`); with latency, since when
    a stamp counts. `cgroups` maps a cgroup id to its (slot, level). The programs read it
    while the helper writes it (a plain copy), so only `enabled` and `since_ns` ever change
    while it says enabled: ids and slots change only while it says disabled."""
    levels = sorted({level for _, level in cgroups.values()})
    if len(levels) > MAX_LEVELS:
        raise BpfError(f"the targets' cgroups sit at more than {MAX_LEVELS} depths")
    few = list(cgroups.items()) if len(cgroups) <= FEW_TARGETS else []
    ids = [cid for cid, _ in few] + [0] * (FEW_TARGETS - len(few))
    slots = [slot for _, (slot, _) in few] + [0] * (FEW_TARGETS - len(few))
    return CONTROL.pack(int(enabled), len(levels), *levels, *[0] * (MAX_LEVELS - len(levels)),
                        len(few), 0, *ids, *slots, since_ns)


def delta(before: Snapshot, after: Snapshot, slot: int, arch: Arch, whole: bool = False) -> Counts:
    """What target `slot` did between two snapshots, by name. The longest call is after's:
    a maximum cannot be subtracted (the engine zeroes it when the window starts). `whole`:
    both snapshots were taken with counting off, so calls, errors and errnos agree, and any
    failure without its errno found the map of errnos full (ELOST); a snapshot taken while
    counting goes on reads the errnos a little later than the errors, so no such account."""
    calls: dict[str, int] = {}
    errors: dict[str, int] = {}
    errnos: dict[str, dict[str, int]] = {}
    time_ns: dict[str, int] = {}
    max_ns: dict[str, int] = {}
    old = before.counts.get(slot, {})
    for call, (n, failed, spent, longest) in after.counts.get(slot, {}).items():
        was = old.get(call, [0, 0, 0, 0])
        name = arch.name(call[1], compat=call[0] == ABI_COMPAT)
        if n - was[0] or failed - was[1]:
            calls[name] = n - was[0]
            errors[name] = failed - was[1]
        if spent - was[2]:
            time_ns[name] = spent - was[2]
            max_ns[name] = longest
    old_errnos = before.errnos.get(slot, {})
    for call, by_errno in after.errnos.get(slot, {}).items():
        name = arch.name(call[1], compat=call[0] == ABI_COMPAT)
        for err, n in by_errno.items():
            if n - old_errnos.get(call, {}).get(err, 0):
                errnos.setdefault(name, {})[arch.errno_name(err)] = n - old_errnos.get(call, {}).get(err, 0)
    for name, failed in errors.items() if whole else ():
        unknown = failed - sum(errnos.get(name, {}).values())
        if unknown > 0:
            errnos.setdefault(name, {})[UNKNOWN_ERRNO] = unknown
    return Counts(calls, errors, errnos, time_ns, max_ns)


def processes_of(slot: int, procs: dict[tuple[int, int], tuple], calls: dict[tuple, tuple[int, int]],
                 folds: tuple[int, int], arch: Arch, whole: bool = True) -> Processes:
    """Target `slot`'s processes from the maps: `procs` maps (slot, tgid) to struct proc's
    fields, `calls` maps struct call_key's fields to (calls, errors), `folds` is the slot's
    struct folds; most calls first. `whole`: read with counting off, so a process's failures
    without their errno found no room in the map, and are ELOST, as a target's are; read while
    counting goes on, a call's errnos and its errors are read a moment apart, so no such account."""
    rows: dict[int, tuple[dict[str, int], dict[str, int], dict[str, dict[str, int]]]] = {}
    for (s, tgid, nr, abi, err), (n, failed) in calls.items():
        if s != slot:
            continue
        # (nr, abi) names one syscall and err one errno: each key is a row of its own (delta's rule)
        made, errors, errnos = rows.setdefault(tgid, ({}, {}, {}))
        name = arch.name(nr, compat=abi == ABI_COMPAT)
        if err:
            errnos.setdefault(name, {})[arch.errno_name(err)] = n
        else:
            made[name] = n
            if failed:
                errors[name] = failed
    kept = []
    for (s, tgid), (_, _, lost, exited, _, comm) in procs.items():
        if s != slot:
            continue
        made, errors, errnos = rows.get(tgid, ({}, {}, {}))
        for name, failed in errors.items() if whole else ():
            unknown = failed - sum(errnos.get(name, {}).values())
            if unknown > 0:
                errnos.setdefault(name, {})[UNKNOWN_ERRNO] = unknown
        name = comm.partition(b"\0")[0].decode("utf-8", "replace")
        kept.append(Process(tgid, name, bool(exited), Counts(made, errors, errnos), lost))
    kept.sort(key=lambda p: (-sum(p.counts.calls.values()), p.host_pid))
    return Processes(kept, folds[0], bool(folds[1]))


def check_enter_format(tracefs: str) -> None:
    """The enter program reads the syscall number at offset 8 of its context."""
    for event in ENTER_TRACEPOINTS:
        path = os.path.join(tracefs, "events", "syscalls", event, "format")
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise BpfError(f"no tracepoint syscalls:{event} ({e.strerror})") from None
        if "__syscall_nr;\toffset:8;" not in text.replace(" ", "\t").replace("\t\t", "\t"):
            raise BpfError(f"syscalls:{event} does not hold the syscall number at offset 8")


class BpfEngine:
    name = "bpf"

    def __init__(self, targets: list[V2Cgroup], own: V2Cgroup, arch: Arch, tracefs: str,
                 duration_s: float, interval_s: float, latency: bool, by_process: bool = False) -> None:
        self.targets, self.own, self.arch = targets, own, arch
        self.duration_s, self.interval_s, self.latency = duration_s, interval_s, latency
        self.by_process = by_process
        self.version = libbpf.version()
        self.syscalls = sorted(set(arch.native.values()))
        self.finished = threading.Event()
        self._stopped = threading.Event()
        self.ended_at: float | None = None
        self.self_slot = len(targets)
        self.slots = len(targets) + 1
        self.cpus = libbpf.possible_cpus()
        self.stats = False  # whether the kernel measures run times (BPF_ENABLE_STATS, 5.8)
        self.sampled_s = 0.0  # how long it measured them in the window
        self.sampling_s = 0.0  # over how long
        self._sampling = threading.Event()
        self._sampler: threading.Thread | None = None
        self.index = 0
        self.started = 0.0
        self.obj: libbpf.Object | None = None
        self.messages = libbpf.Messages()
        check_enter_format(tracefs)
        try:
            self._load()
            self._self_test()
        except BaseException:
            self.close()
            raise

    # --- loading ------------------------------------------------------------------------------

    def _load(self) -> None:
        obj = self.obj = libbpf.Object(OBJECT.read_bytes(), self.messages)
        obj.set_rodata(config_bytes(self.arch, self.latency, self.by_process))
        entries = self.slots * NR_SLOTS
        for name in ("counts", "touched"):
            obj.set_max_entries(name, entries)
        obj.set_max_entries("times", entries if self.latency else 1)
        obj.set_max_entries("started", IN_FLIGHT if self.latency else 1)
        obj.set_max_entries("errnos", 1024 + 128 * self.slots)
        obj.set_max_entries("other", 256 + 64 * self.slots)
        obj.set_autoload("stamp_enter", self.latency)
        by_process = self.by_process
        obj.set_max_entries("procs", self.slots * (MAX_PROCESSES + self.cpus) if by_process else 1)
        obj.set_max_entries("proc_calls", min(MAX_PROC_CALLS, self.slots * MAX_PROCESSES
                                              * CALLS_PER_PROCESS) if by_process else 1)
        obj.set_max_entries("folded", FOLD_ROOM if by_process else 1)
        for name in ("admitted", "folds"):
            obj.set_max_entries(name, self.slots if by_process else 1)
        obj.load()
        self.fd = {name: obj.map_fd(name) for name in
                   ("control", "targets", "counts", "touched", "times", "other", "errnos", "lost",
                    "procs", "admitted", "proc_calls", "folded", "folds")}
        length = -(-entries * 8 // mmap.PAGESIZE) * mmap.PAGESIZE  # one 8-byte element a slot
        self.touched = mmap.mmap(self.fd["touched"], length, mmap.MAP_SHARED, mmap.PROT_READ)
        probe = libbpf.enable_stats()
        if probe >= 0:
            os.close(probe)
            self.stats = True
        self.programs = ["count_exit", "count_enter"] + (["stamp_enter"] if self.latency else [])
        self.cgroups = {}  # cgroup id -> (slot, level), the engine's own last
        for slot, cgroup in enumerate([*self.targets, self.own]):
            cid = os.stat(cgroup.directory).st_ino
            libbpf.update(self.fd["targets"], CGROUP_KEY.pack(cid), SLOT_KEY.pack(slot))
            self.cgroups[cid] = (slot, cgroup.level)
        libbpf.update(self.fd["control"], SLOT_KEY.pack(0), control_bytes(True, self.cgroups))
        obj.attach_raw_tracepoint("count_exit", "sys_exit")
        for event in ENTER_TRACEPOINTS:
            obj.attach_tracepoint("count_enter", "syscalls", event)
        if self.latency:
            obj.attach_raw_tracepoint("stamp_enter", "sys_enter")

    def _self_test(self) -> None:
        before = self.snapshot()
        for _ in range(SELF_TEST["getppid"]):
            os.getppid()
        for _ in range(SELF_TEST["close"]):
            try:
                os.close(-1)
            except OSError:
                pass
        previous = signal.signal(signal.SIGUSR2, lambda *_: None)
        try:
            for _ in range(SELF_TEST["rt_sigreturn"]):
                signal.raise_signal(signal.SIGUSR2)
        finally:
            signal.signal(signal.SIGUSR2, previous)
        got = delta(before, self.snapshot(), self.self_slot, self.arch)
        seen = {"getppid": got.calls.get("getppid"), "close": got.errors.get("close"),
                "rt_sigreturn": got.calls.get("rt_sigreturn")}
        ebadf = got.errnos.get("close", {}).get("EBADF")
        if seen != SELF_TEST or ebadf != SELF_TEST["close"]:
            raise BpfError(f"its self-test on this kernel counted {seen} and EBADF {ebadf}, "
                           f"not {SELF_TEST}")

    # --- the window ---------------------------------------------------------------------------

    def start(self) -> float:
        """The baseline, read while nothing counts (calls, errors and errnos are separate
        increments, and only a still snapshot has them agree), then counting on."""
        self._disable()
        # The engine's own cgroup is no target: forget it, and its level unless a target's.
        own = next(cid for cid, (slot, _) in self.cgroups.items() if slot == self.self_slot)
        libbpf.delete(self.fd["targets"], CGROUP_KEY.pack(own))
        del self.cgroups[own]
        libbpf.update(self.fd["control"], SLOT_KEY.pack(0), control_bytes(False, self.cgroups))
        self._zero_times()
        self._forget_processes()
        self.baseline = self.previous = self.snapshot()
        self.cost_before = self._program_stats()
        self.started = time.monotonic()
        libbpf.update(self.fd["control"], SLOT_KEY.pack(0),
                      control_bytes(True, self.cgroups, time.monotonic_ns()))
        if self.stats:
            self._sampler = threading.Thread(target=self._sample_stats, args=(self.started,),
                                             name="bpf-stats", daemon=True)
            self._sampler.start()
        return self.started

    def _sample_stats(self, since: float) -> None:
        """BPF_ENABLE_STATS for STATS_ON_S of every STATS_PERIOD_S, until _end_sampling."""
        while not self._sampling.is_set():
            fd = libbpf.enable_stats()
            if fd < 0:
                break
            on = time.monotonic()
            try:
                self._sampling.wait(STATS_ON_S)
            finally:
                os.close(fd)
                self.sampled_s += time.monotonic() - on
            self._sampling.wait(STATS_PERIOD_S - STATS_ON_S)
        self.sampling_s = time.monotonic() - since

    def _end_sampling(self) -> None:
        self._sampling.set()
        if self._sampler is not None:
            self._sampler.join()
            self._sampler = None

    def stop(self) -> None:
        if not self.finished.is_set() and not self._stopped.is_set():
            self.ended_at = time.monotonic()
            self._stopped.set()

    def tick(self) -> Tick | None:
        if self.finished.is_set() or self.obj is None:
            return None
        self.index += 1
        end = min(self.started + self.index * self.interval_s, self.started + self.duration_s)
        stopped = self._stopped.wait(max(0.0, end - time.monotonic()))
        if stopped and self.ended_at is not None:
            end = min(end, self.ended_at)
        final = stopped or end >= self.started + self.duration_s * 0.999
        if final:
            self._disable()
        now = self.snapshot()
        counts = [delta(self.previous, now, slot, self.arch) for slot in range(len(self.targets))]
        self.previous = now
        if final:
            self._end_sampling()
            self.cost_after = self._program_stats()
            self.finished.set()
        return Tick(counts, round(end - self.started, 9), final)

    def totals(self) -> list[Counts]:
        """The whole window of every target: the final snapshot less the baseline, both
        read with counting off."""
        return [delta(self.baseline, self.previous, slot, self.arch, whole=True)
                for slot in range(len(self.targets))]

    def uncounted(self) -> int:
        """Calls seen but not counted: compat calls, or numbers beyond the array, that found
        the shared map full."""
        return self.previous.uncounted - self.baseline.uncounted

    def cost(self) -> dict[str, int | float] | None:
        """The programs' runs and run time over the window, measured while the stats were on
        (sampled_seconds of it) and scaled to the whole of it."""
        if not hasattr(self, "cost_after") or self.sampled_s <= 0:
            return None
        runs = sum(a[0] - b[0] for a, b in zip(self.cost_after, self.cost_before, strict=True))
        spent = sum(a[1] - b[1] for a, b in zip(self.cost_after, self.cost_before, strict=True))
        scale = max(1.0, self.sampling_s / self.sampled_s)
        return {"runs": round(runs * scale), "run_time_ns": round(spent * scale),
                "sampled_seconds": round(self.sampled_s, 6)}

    def close(self) -> None:
        if self.obj is not None:
            self.obj.close()
            self.obj = None
        if getattr(self, "touched", None) is not None:
            self.touched.close()
            self.touched = None
        self._end_sampling()
        self.finished.set()

    # --- reading the maps ---------------------------------------------------------------------

    def _disable(self) -> None:
        """Stop counting, then wait until no program that saw counting on can still be
        running: a global memory barrier is an RCU grace period, and the programs run with
        preemption off, inside one."""
        libbpf.update(self.fd["control"], SLOT_KEY.pack(0), control_bytes(False, self.cgroups))
        nr = MEMBARRIER_NR.get(self.arch.machine)
        if nr is None or libc().syscall(nr, MEMBARRIER_GLOBAL, 0, 0) != 0:
            time.sleep(0.05)

    def _forget_processes(self) -> None:
        """With counting off: the processes seen before the window (the self-test's, and the
        targets' while it ran) are not the window's, nor do they take a target's room."""
        if not self.by_process:
            return
        for name, size in (("procs", PROC_KEY.size), ("proc_calls", CALL_KEY.size),
                           ("folded", PROC_KEY.size)):
            for key in list(libbpf.keys(self.fd[name], size)):
                libbpf.delete(self.fd[name], key)
        for slot in range(self.slots):
            libbpf.update(self.fd["admitted"], SLOT_KEY.pack(slot), bytes(4))
            libbpf.update(self.fd["folds"], SLOT_KEY.pack(slot), bytes(FOLDS.size))

    def process_ids(self) -> list[tuple[int, int]]:
        """The (slot, host pid) of every process kept so far (while counting goes on)."""
        if not self.by_process or self.obj is None:
            return []
        return [PROC_KEY.unpack(key) for key in libbpf.keys(self.fd["procs"], PROC_KEY.size)]

    def processes(self, whole: bool = True) -> list[Processes] | None:
        """Each target's processes over the window so far: `whole` after the last tick
        (counting off); else while counting goes on."""
        if not self.by_process or self.obj is None:
            return None
        procs = {}
        for key in libbpf.keys(self.fd["procs"], PROC_KEY.size):
            raw = libbpf.lookup(self.fd["procs"], key, PROC.size)
            if raw is not None:
                procs[PROC_KEY.unpack(key)] = PROC.unpack(raw)
        calls = {}
        for key in libbpf.keys(self.fd["proc_calls"], CALL_KEY.size):
            raw = libbpf.lookup(self.fd["proc_calls"], key, COUNTS.size)
            if raw is not None:
                calls[CALL_KEY.unpack(key)] = COUNTS.unpack(raw)
        out = []
        for slot in range(len(self.targets)):
            raw = libbpf.lookup(self.fd["folds"], SLOT_KEY.pack(slot), FOLDS.size)
            folds = FOLDS.unpack(raw) if raw is not None else (0, 0)
            out.append(processes_of(slot, procs, calls, folds, self.arch, whole))
        return out

    def _program_stats(self) -> list[tuple[int, int]]:
        if not self.stats or self.obj is None:
            return []
        return [libbpf.program_stats(self.obj.program_fd(p)) for p in self.programs]

    def _zero_times(self) -> None:
        """A longest call before the window is not the window's."""
        if not self.latency:
            return
        zeros = bytes(COUNTS.size * self.cpus)
        for index in self._touched():
            if index // NR_SLOTS != self.self_slot:
                libbpf.update(self.fd["times"], SLOT_KEY.pack(index), zeros)

    def _touched(self) -> list[int]:
        data = self.touched[:self.slots * NR_SLOTS * 8]
        found, at = [], data.find(1)
        while at >= 0:
            found.append(at // 8)
            at = data.find(1, (at // 8 + 1) * 8)
        return found

    def _per_cpu(self, fd: int, key: bytes, words: int) -> memoryview | None:
        """Every CPU's value of a per-CPU map's key, as 64-bit words (`words` a CPU)."""
        raw = libbpf.lookup(fd, key, 8 * words * self.cpus)
        return None if raw is None else memoryview(raw).cast("Q")

    def snapshot(self) -> Snapshot:
        counts: dict[int, dict[Call, list[int]]] = {}
        for index in self._touched():
            key = SLOT_KEY.pack(index)
            cpus = self._per_cpu(self.fd["counts"], key, 2)
            if cpus is None:
                continue
            entry = [sum(cpus[0::2]), sum(cpus[1::2]), 0, 0]
            spent = self._per_cpu(self.fd["times"], key, 2) if self.latency else None
            if spent is not None:
                entry[2], entry[3] = sum(spent[0::2]), max(spent[1::2])
            counts.setdefault(index // NR_SLOTS, {})[(0, index % NR_SLOTS)] = entry
        for key in libbpf.keys(self.fd["other"], OTHER_KEY.size):
            raw = libbpf.lookup(self.fd["other"], key, COUNTS.size)
            if raw is not None:
                slot, abi, nr = OTHER_KEY.unpack(key)
                entry = counts.setdefault(slot, {}).setdefault((abi, nr), [0, 0, 0, 0])
                n, failed = COUNTS.unpack(raw)
                entry[0] += n
                entry[1] += failed
        errnos: dict[int, dict[Call, dict[int, int]]] = {}
        for key in libbpf.keys(self.fd["errnos"], ERRNO_KEY.size):
            slot, err, nr = ERRNO_KEY.unpack(key)
            cpus = self._per_cpu(self.fd["errnos"], key, 1)
            if cpus is not None:
                errnos.setdefault(slot, {}).setdefault((err >> 15, nr), {})[err & 0x7FFF] = sum(cpus)
        lost = [self._per_cpu(self.fd["lost"], SLOT_KEY.pack(i), 1) for i in range(2)]
        return Snapshot(counts, errnos, *(sum(v) if v is not None else 0 for v in lost))
