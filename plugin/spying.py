"""`docker spy CONTAINER...` as a pipeline that reads top to bottom: plan (what to count, where,
with which helper), run (one helper on the targets' engine: a Report), present (table, JSON,
CSV, audit, profile, exit status). Typed values go between the three.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import daemon, helper_image, launcher, live, logs, render, report, target
from .errors import ExitStatus, InterruptedEarly, interrupt_status
from .interrupts import Interrupts, in_background
from .notices import progress_printer, warn
from .options import MAX_SECONDS, SpyOptions

if TYPE_CHECKING:
    import docker

    from . import fleet

log = logs.get_logger(__name__)
COST_WARNING = 0.01  # of the host's CPU time: above it, docker spy says what it cost
SLOW_START_S = 2.0  # a start that takes longer says what it waits for
WAITING = {  # what a start waits for, by the last thing that happened
    "connected": "the engine to start the helper container",
    "started": "the helper to start counting",
}


@dataclass(frozen=True)
class Plan:
    """What to count, where and how, decided before any helper runs."""

    client: docker.DockerClient
    names: str  # of the containers or tasks, for the messages
    infos: tuple[report.TargetInfo, ...]
    spec: launcher.HelperRun | fleet.Job  # one helper, or a Swarm job of helpers
    view: render.View
    mode: str  # live.Display's: frames, lines, progress or none
    profile: Any  # the seccomp profile to audit against, if any


def _display_mode(opts: SpyOptions) -> str:
    if opts.interval is not None:
        if opts.fmt == "table" and sys.stdout.isatty():
            return "frames"
        # Not a terminal: JSON lines, unless a table was asked for by name (as docker stats
        # prints plain tables to a pipe).
        return "tables" if opts.fmt_given and opts.fmt == "table" else "lines"
    if opts.seconds is not None and not opts.quiet and sys.stderr.isatty():
        return "progress"
    return "none"


def plan(globals_: daemon.GlobalOptions, opts: SpyOptions) -> Plan:
    for ref in opts.containers:
        target.check_reference(ref)  # bad input fails before any engine is asked
    target.parse_filters(opts.filters)
    profile = None
    if opts.audit_profile or opts.seccomp_profile:
        from . import seccomp

        profile = seccomp.load_profile(opts.audit_profile) if opts.audit_profile else None
        if opts.seccomp_profile:
            seccomp.check_destination(opts.seccomp_profile)
    log.debug("connecting to the engine")
    client = daemon.connect(globals_)
    view = render.View(opts.fmt, opts.top, opts.sort, opts.all, opts.no_trunc, opts.by_class)
    seconds = opts.seconds if opts.seconds is not None else MAX_SECONDS
    if opts.services:
        from . import fleet  # Swarm's, only for --service

        tasks = tuple(fleet.tasks(client, opts.services))
        image = helper_image.ensure(client, opts.helper_image, progress_printer(opts.quiet))
        job = fleet.Job(image, tasks, seconds, fleet.CHECKPOINT_S, opts.engine, opts.latency,
                        opts.syscalls, opts.by_process)
        infos = tuple(report.TargetInfo(t.container_id, t.name, 0, node=t.node) for t in tasks)
        return Plan(client, ", ".join(t.name for t in tasks), infos, job, view, "none", profile)
    targets = tuple(target.resolve_all(client, opts.containers, opts.filters))
    image = helper_image.ensure(client, opts.helper_image, progress_printer(opts.quiet))
    mode = _display_mode(opts)
    interval = opts.interval if mode in ("frames", "tables", "lines") else (
        live.progress_interval(seconds) if mode == "progress" else None)
    spec = launcher.HelperRun(image, targets, seconds, opts.privileged, interval, opts.engine,
                              opts.latency, launcher.tracefs_by_volume(daemon.kernel_release(client)),
                              opts.syscalls, opts.by_process)
    infos = tuple(report.TargetInfo(t.id, t.name, t.pid) for t in targets)
    return Plan(client, ", ".join(t.name for t in targets), infos, spec, view, mode, profile)


class SlowStart:
    """Once a start has waited SLOW_START_S without counting, say on stderr what it waits for
    (the engine starting the helper, another helper's perf closing, ...), each thing once."""

    def __init__(self, say: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> None:
        self.say, self.clock = say, clock
        self.since = clock()
        self.waiting_for = WAITING["connected"]
        self.said: set[str] = set()
        self.done = threading.Event()
        self._lock = threading.Lock()

    def now_waiting_for(self, what: str) -> None:
        with self._lock:
            self.waiting_for = what
        self.tell()

    def tell(self) -> None:
        with self._lock:
            what = self.waiting_for
            if self.done.is_set() or what in self.said or self.clock() - self.since < SLOW_START_S:
                return
            self.said.add(what)
        self.say(f"waiting for {what}...")

    def watch(self) -> None:
        while not self.done.wait(0.25):
            self.tell()


def run(p: Plan, opts: SpyOptions, interrupts: Interrupts,
        display: live.Display) -> Callable[[], report.Report]:
    """One helper on the targets, or a Swarm job of them: what makes the report of what they
    counted (the interrupt that ended the run early, if any, is interrupts.first)."""
    names = p.names
    progress = progress_printer(opts.quiet or not sys.stderr.isatty())
    slow = SlowStart(progress_printer(opts.quiet))
    in_background(slow.watch, "slow-start")

    def on_event(event: dict) -> None:
        kind = event["event"]
        if kind == "counting":
            slow.done.set()
            display.counting_with(str(event.get("engine")))
            log.info("counting", containers=names, engine=event.get("engine"), cgroups=event.get("cgroups"))
            window = f"for {opts.seconds:g} s" if opts.seconds else "until Ctrl-C"
            if p.mode in ("none", "progress"):
                progress(f"counting the syscalls of {names} {window}...")
            render.warm()  # while the kernel counts, not after
        elif kind in WAITING:
            slow.now_waiting_for(WAITING[kind])
        elif kind == "waiting":
            slow.now_waiting_for(str(event.get("what"))[:200])
        elif kind == "engine":
            why = str(event.get("reason"))[:200]
            lost = "; --latency is not measured" if opts.latency else ""
            warn(f"counting with perf: the BPF engine cannot run here ({why}){lost}")
        elif kind == "warning":
            warn(f"the helper says: {str(event.get('message'))[:300]}")

    try:
        if not isinstance(p.spec, launcher.HelperRun):
            from . import fleet

            job = p.spec
            docs, missing, interrupt = fleet.run(p.client, job, interrupts,
                                                 lambda node, event: on_event(event))
            return lambda: fleet.merged(job, p.infos, docs, missing, interrupt is not None)
        raw, _ = launcher.run(p.client, p.spec, on_event, display, interrupts)
        return lambda: the_report(p, opts, raw)
    finally:
        slow.done.set()
        display.close()


def the_report(p: Plan, opts: SpyOptions, raw: bytes) -> report.Report:
    """The helper's document, validated, as the user asked for it."""
    rep = report.from_helper(raw, targets=p.infos, requested_seconds=p.spec.seconds,
                             by_process=opts.by_process)
    if opts.seconds is None:
        # Counting until Ctrl-C: no window was asked for, and the interrupt is its end.
        rep = dataclasses.replace(rep, window=dataclasses.replace(rep.window, requested_seconds=None))
        if rep.stopped == "interrupted":
            rep = dataclasses.replace(rep, partial=False, stopped=None)
    return rep


def present(p: Plan, opts: SpyOptions, rep: report.Report, interrupt: KeyboardInterrupt | None,
            display: live.Display | None = None) -> int:
    """The report as asked (unless the live lines were the output), its warnings, the audit and
    the profile; the exit status."""
    if p.profile is not None or opts.seccomp_profile:
        from . import seccomp  # imported by plan() already

    observed = {s.name: s.calls for s in rep.syscalls if s.calls}
    audit = None
    if p.profile is not None:
        audit = seccomp.audit(observed, p.profile, rep.host.arch, kernel=rep.host.kernel)
    if p.mode == "lines":  # after the intervals, the report: one more line
        doc = render.document(rep, p.view)
        if audit is not None:
            doc["audit"] = seccomp.audit_document(audit)
        sys.stdout.write(json.dumps(doc, separators=(",", ":")) + "\n")
    elif audit is not None and opts.fmt == "json":
        doc = render.document(rep, p.view)
        doc["audit"] = seccomp.audit_document(audit)  # one document, so `| jq` still works
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    elif display is not None and display.drawn and p.mode == "frames":
        display.draw(render.table(rep, p.view))  # over the last frame
    else:
        render.write(rep, p.view, sys.stdout)
        if p.mode == "tables":
            sys.stdout.write("\n")
    absent = [n for n in opts.syscalls_named if n not in {s.name for s in rep.syscalls}]
    if absent and rep.only is not None:
        warn(f"{', '.join(absent)} {'is not a syscall' if len(absent) == 1 else 'are not syscalls'} "
             f"of {rep.host.arch}: not counted")
    for t in rep.targets:
        if t.exited:
            warn(f"container {t.target.name} stopped during the window: its counts end there")
    if rep.uncounted:
        warn(f"{rep.uncounted:,} calls through the 32-bit entry points or of unknown numbers "
             "found no room and were not counted")
    share = rep.cost.share(rep.window.measured_seconds, rep.host.cpus) if rep.cost else 0.0
    if rep.cost is not None and share > COST_WARNING and report.has_rates(rep.window.measured_seconds):
        warn(f"counting took {100 * share:.1f}% of the host's CPU time over the window "
             f"({rep.cost.runs:,} runs of its BPF programs, {rep.cost.run_time_ns / 1e9:.2f} s)")
    if opts.seccomp_profile:
        summary = seccomp.write_profile(observed, rep.host.arch, opts.seccomp_profile)
        progress_printer(opts.quiet)(str(summary))
    if audit is not None and not (opts.fmt == "json" and p.mode != "lines"):
        # Beside a table, below it; beside CSV or JSON lines, on stderr, out of their way.
        stream = sys.stdout if opts.fmt == "table" and p.mode != "lines" else sys.stderr
        stream.write("\n")
        seccomp.write_audit(audit, "table", stream)
    for node, why in rep.missing:
        warn(f"node {node} gave no report: {why}")
    status = ExitStatus.DENIED if audit is not None and audit.would_deny else ExitStatus.OK
    if interrupt is not None and opts.seconds is not None:
        return interrupt_status(interrupt)
    return ExitStatus.PARTIAL if rep.missing else status


def spy(globals_: daemon.GlobalOptions, opts: SpyOptions, interrupts: Interrupts) -> int:
    try:
        planned = plan(globals_, opts)
    except KeyboardInterrupt as interrupt:
        raise InterruptedEarly(interrupt) from None
    totals = live.Totals(list(planned.infos), by_process=opts.by_process)
    display = live.Display(totals, planned.mode, planned.view, sys.stdout, sys.stderr, opts.seconds,
                           opts.latency)
    made = run(planned, opts, interrupts, display)
    # The documents are in hand: a first Ctrl-C now (the window ended as it came) waits for
    # the report to be shown, and sets the exit status; a second one quits at once.
    try:
        with interrupts.deferred():
            status = present(planned, opts, made(), interrupts.first, display)
        log.debug("report printed")
        return status
    except KeyboardInterrupt as late:
        return interrupt_status(interrupts.first or late)
