"""docker spy's benchmark: one run, side by side, on this engine.

Methods: untraced; docker spy with its BPF engine, with BPF and --latency, with its perf engine;
the plain perf method (`perf stat -e 'syscalls:*' -a -G <cgroup>` in a container with perf); the
BPF prototype of /work/shared/measurements/bpf-prototype, built for the run; `strace -c -f -p`.
Figures, medians of --reps repetitions: time to the result of a 2 s window and to counting start,
a syscall-bound loop's speed in the target and in a neighbour container that is not spied,
nginx's requests/s under wrk, the cost the BPF engine reports about itself; back-to-back runs;
1 to 64 quiet containers (each wakes every 0.1 s) in one run (time to result, the helper's
peak memory and open files); the helper image's cold build as docker spy builds it and with a
build stage compiling the BPF program. Asked for by name (--sections remote): the same window on an
engine in a VM, through an ssh context and through a socket forwarded over ssh (bench/remote.py).

First, needing no engine (bench/cli.py): what docker spy adds to `docker --help`, its metadata
answer, and its own help and version, through the docker CLI. After the build, on a quiet
engine (bench/phases.py): a 2 s window's time to result, and where it goes, phase by phase.

Nothing here is a test: it prints figures. Run it through bench/run, which sets up what it needs.
Everything it starts is removed at its end, also on failure and Ctrl-C, except the nginx image,
a fixture kept for the next run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

import builds
from common import REPO, BenchError, Run, clean_up, log, sh, tried
from fleet import back_to_back, many_containers
from methods import METHODS, Tools, build_prototype, measure
from tables import Results, report
from workloads import Loop, Nginx, build_loop, build_nginx

SECTIONS = ("cli", "build", "phases", "methods", "back-to-back", "many")
# Asked for by name only: it brings up the test VM (tests/vm/up), minutes more.
OPTIONAL_SECTIONS = ("remote",)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each figure (default 3)")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"some of {','.join(SECTIONS + OPTIONAL_SECTIONS)} (default: all but remote)")
    parser.add_argument("--methods", default=",".join(METHODS), help="some of " + ",".join(METHODS))
    parser.add_argument("--sizes", default="1,5,20,64", help="container counts of the many section")
    args = parser.parse_args(argv)
    args.sections = [s for s in args.sections.split(",") if s]
    args.methods = [m for m in METHODS if m in args.methods.split(",")]
    unknown = set(args.sections) - set(SECTIONS) - set(OPTIONAL_SECTIONS)
    if unknown or args.reps < 1:
        parser.error(f"unknown sections {sorted(unknown)}" if unknown else "--reps must be >= 1")
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    return args


def private_docker_config(workdir: Path) -> None:
    """This checkout's docker spy, for this run only: a DOCKER_CONFIG of its own (the user's config
    and contexts, plus a plugin link), so that the docker spy installed for everyone else on this
    machine stays what it is."""
    user = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    config = workdir / "docker-config"
    (config / "cli-plugins").mkdir(parents=True)
    (config / "cli-plugins" / "docker-spy").symlink_to(REPO / "docker-spy")
    if (user / "config.json").is_file():
        shutil.copy(user / "config.json", config / "config.json")
    if (user / "contexts").is_dir():
        (config / "contexts").symlink_to(user / "contexts")
    os.environ["DOCKER_CONFIG"] = str(config)


def about() -> str:
    commit = sh("git", "-C", str(REPO), "describe", "--always", "--dirty", check=False)
    return (f"kernel {os.uname().release}, engine {sh('docker', 'version', '-f', '{{.Server.Version}}')}, "
            f"docker spy {sh('docker', 'spy', 'version', '--short')} of {REPO} ({commit})")


def perf_files(run: Run) -> int:
    """How many files the plain perf method holds once it counts: a syscalls:* tracepoint per CPU."""
    names = sh("docker", "run", "--rm", *run.label(), "--cap-drop", "ALL", "--cap-add", "SYS_ADMIN",
               "--entrypoint", "sh", run.helper_image, "-c",
               "mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null; "
               "ls /sys/kernel/tracing/events/syscalls").split()
    return sum(n.startswith("sys_") for n in names) * (os.cpu_count() or 1)


def measure_builds(run: Run, res: Results) -> None:
    current = builds.helper(run, cold=True)
    run.helper_image = current.image  # the cold build is also this run's helper
    alternative, same_object = builds.alternative(run)
    for design, b in (("image/Dockerfile (spy.bpf.o shipped)", current),
                      ("build stage compiling spy.bpf.c", alternative)):
        res.builds[design] = {"seconds": b.seconds, "downloads": list(b.downloads), "size": b.size}
    res.notes.append("the build stage's spy.bpf.o is " + ("the same bytes as" if same_object else
                     "NOT the same bytes as") + " the committed plugin/helper/bpf/spy.bpf.o")
    if builds.final_stage_drift():
        res.notes.append("bench/helper-bpf-stage.Dockerfile's final stage is no longer image/Dockerfile "
                         "plus its COPY --from: the build figures compare different images")


def measure_methods(tools: Tools, args: argparse.Namespace, res: Results, loop: Loop, binary: Path) -> None:
    neighbour, nginx = Loop(tools.run, "neighbour", binary), Nginx(tools.run)
    for rep in range(args.reps):
        for method in args.methods:
            log(f"rep {rep + 1}/{args.reps}: {method}")
            for key, value in measure(method, loop, neighbour, nginx, tools, res.notes).items():
                res.methods.setdefault(method, {}).setdefault(key, []).append(value)


def measure_back_to_back(tools: Tools, reps: int, res: Results, loop: Loop) -> None:
    for rep in range(reps):
        for method in ("spy bpf", "spy perf"):
            log(f"rep {rep + 1}/{reps}: back-to-back, {method}")
            figures = tried(res.notes, f"back-to-back, {method}", back_to_back, method, loop.name, tools)
            for key, value in figures.items():
                res.back_to_back.setdefault(method, {}).setdefault(key, []).append(value)


def run_sections(run: Run, args: argparse.Namespace, res: Results) -> None:
    if "cli" in args.sections:  # first, on a quiet machine: no engine work yet
        import cli

        res.cli = cli.measure(max(cli.RUNS, args.reps))
    private_docker_config(run.workdir)
    res.about = about()
    if "build" in args.sections:
        measure_builds(run, res)
    else:
        run.helper_image = builds.helper(run, cold=False).image
    if "phases" in args.sections:  # before the methods' load, on a quiet engine
        import phases

        res.phases = phases.measure(max(phases.RUNS, args.reps), os.environ["DOCKER_CONFIG"],
                                    run.helper_image, run.id)
    wants_methods = "methods" in args.sections
    if wants_methods:
        build_nginx()
    prototype = build_prototype(run.workdir) if wants_methods and "bpf prototype" in args.methods else None
    if prototype is None and "bpf prototype" in args.methods:
        args.methods.remove("bpf prototype")
    perf = perf_files(run) if wants_methods and "perf syscalls:*" in args.methods else 0
    tools = Tools(run, perf, prototype)
    if wants_methods or "back-to-back" in args.sections:
        binary = build_loop(run.workdir)
        loop = Loop(run, "target", binary)
        if wants_methods:
            measure_methods(tools, args, res, loop, binary)
        if "back-to-back" in args.sections:
            measure_back_to_back(tools, args.reps, res, loop)
    if "many" in args.sections:
        res.many = many_containers(tools, args.sizes, args.reps, res.notes)
    if "remote" in args.sections:
        import remote

        res.remote = remote.measure(run, args.reps)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up as Ctrl-C does


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.monotonic()
    res = Results(reps=args.reps)
    signal.signal(signal.SIGTERM, _interrupt)
    with tempfile.TemporaryDirectory(prefix="spy-bench-") as tmp:
        run = Run(f"{os.getpid()}-{int(time.time()) % 100000}", Path(tmp))
        status = 0
        try:
            run_sections(run, args, res)
        except KeyboardInterrupt:
            log("interrupted: removing what this run made")
            status = 130
            res.notes.append("interrupted: these figures are what was measured until then")
        except (BenchError, subprocess.TimeoutExpired) as e:
            log(f"{e}: removing what this run made")
            status = 1
            res.notes.append(f"the run stopped there ({e}): these figures are what was measured until then")
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            clean_up(run)
    res.seconds = time.monotonic() - started
    print(report(res))
    return status


if __name__ == "__main__":
    sys.exit(main())
