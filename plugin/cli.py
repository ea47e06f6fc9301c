"""argv -> options; the docker CLI plugin protocol (metadata, help, version); exit statuses.

Only the standard library is imported at module level: the docker CLI runs
`docker-spy docker-cli-plugin-metadata` on every `docker --help`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .errors import ExitStatus, SpyError, Terminated, UsageError, interrupt_status
from .interrupts import Interrupts, in_background

PLUGIN_NAME = "spy"
URL = "https://github.com/docker-spy/docker-spy"
SHORT_DESCRIPTION = "Count the system calls a container makes"
MAX_SECONDS = 24 * 3600.0  # also the window of "until Ctrl-C"
MIN_SECONDS = 0.1
LOG_LEVELS = ("debug", "info", "warn", "warning", "error", "fatal")
FORMATS = ("table", "json", "csv")
SORTS = ("calls", "errors", "name", "rate")
ENGINES = ("auto", "bpf", "perf")
COMMANDS = ("version", "diff", "install", "uninstall", "build-helper", "help")
COMPLETE = "__complete"  # cobra's hidden command: the docker CLI asks plugins for completions

EXAMPLES = """\
examples:
  docker spy web                      count until Ctrl-C, then print the table
  docker spy web --duration 30s       count for 30 seconds
  docker spy web db cache -d 10s      several containers, one column each
  docker spy -f label=com.docker.compose.project=shop -d 10s   a whole compose project
  docker spy web --interval 2s        a live view, like docker stats
  docker spy --service api -d 30s     every task of a Swarm service, on every node
  docker spy 3f2a1b --top 10          a unique id prefix works too; show the 10 busiest
  docker spy web -d 5s --by-class     subtotals per class: file, network, process, ...
  docker spy web -d 10s --latency     also the time spent in each syscall
  docker spy web -d 5s --format json | jq '.syscalls[0]'
  docker spy web -d 5m --seccomp-profile web.json   a seccomp profile from what web did
  docker spy web -d 1m --audit-profile default      what the default profile would deny
  docker spy diff before.json after.json            compare two --format json reports
  docker --context prod spy api -d 1m the engine of another context

other commands: version, diff, install, uninstall, build-helper"""


@dataclass(frozen=True)
class SpyOptions:
    containers: tuple[str, ...]
    filters: tuple[str, ...]  # `docker ps` filters, KEY=VALUE
    seconds: float | None  # None: until Ctrl-C
    interval: float | None  # a live view, one frame (or JSON line) per interval
    fmt: str
    top: int | None
    sort: str
    all: bool
    no_trunc: bool
    by_class: bool
    helper_image: str | None
    privileged: bool
    quiet: bool
    seccomp_profile: str | None = None  # write a seccomp profile here
    audit_profile: str | None = None  # a profile file, or "default"
    engine: str = "auto"  # auto, bpf or perf
    latency: bool = False  # also the time spent in each syscall (BPF)
    services: tuple[str, ...] = ()  # Swarm services: every running task, on its node


class OneLineParser(argparse.ArgumentParser):
    """argparse, but an error is one line and a UsageError."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message, f"see '{self.prog} --help'")


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """`500ms`, `30s`, `2m`, `1h`, `1m30s` or plain seconds -> seconds."""
    value = text.strip()
    if re.fullmatch(r"\d+(\.\d*)?", value):
        seconds = float(value)
    elif value and re.fullmatch(rf"(?:{_DURATION_PART.pattern})+", value):
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(value))
    else:
        raise UsageError(f"invalid duration {text!r}", "use e.g. 500ms, 30s, 2m or 1h")
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise UsageError(f"duration {text!r} is out of range", "from 100ms to 24h")
    return seconds


def positive(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def add_logging_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-D", "--debug", action="store_true", help="show debug logs (and tracebacks)")
    parser.add_argument("-l", "--log-level", choices=LOG_LEVELS, help="log level (default: warning)")


def spy_parser(prog: str) -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog, usage=f"{prog} [OPTIONS] CONTAINER [CONTAINER...] | --service SERVICE",
        description="Count the system calls running containers make, per syscall: calls, "
                    "failed calls, rate and share. A short-lived helper container on the same "
                    "engine counts them in the kernel: with BPF where it can, else with perf.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("containers", nargs="*", metavar="CONTAINER",
                        help="container name, id, or unique id prefix")
    parser.add_argument("-f", "--filter", action="append", default=[], metavar="FILTER",
                        help="spy the running containers that match, as docker ps --filter "
                             "(e.g. label=com.docker.compose.project=shop, name=api)")
    parser.add_argument("--service", action="append", default=[], metavar="SERVICE",
                        help="spy every running task of this Swarm service, on whichever node it "
                             "runs (on a Swarm manager; repeat it for several services)")
    parser.add_argument("-d", "--duration", type=str, default=None, metavar="DURATION",
                        help="how long to count: 500ms, 30s, 2m, 1h (default: until Ctrl-C)")
    parser.add_argument("-i", "--interval", type=str, default=None, metavar="DURATION",
                        help="a live view: redraw (on a terminal) or print one JSON line "
                             "every DURATION")
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="output format (default: table)")
    parser.add_argument("--top", type=positive, metavar="N", help="show only the first N syscalls")
    parser.add_argument("--sort", choices=SORTS, default="calls",
                        help="order of the rows (default: calls)")
    parser.add_argument("-a", "--all", action="store_true",
                        help="show syscalls that were not called too")
    parser.add_argument("--no-trunc", action="store_true",
                        help="do not shorten container ids and names")
    parser.add_argument("--latency", action="store_true",
                        help="also the time spent in each syscall: total, average, longest (BPF)")
    parser.add_argument("--engine", choices=ENGINES, default="auto",
                        help="how to count: bpf, perf, or auto (bpf where it can run, else perf; "
                             "default)")
    parser.add_argument("--by-class", action="store_true",
                        help="group the syscalls by class (file, network, process, memory, "
                             "signal, time, ipc, other) with subtotals")
    parser.add_argument("--seccomp-profile", metavar="FILE",
                        help="also write a Docker seccomp profile allowing what was observed "
                             "(plus what any container needs to start)")
    parser.add_argument("--audit-profile", metavar="PROFILE",
                        help="also tell which observed syscalls PROFILE (a seccomp profile file, "
                             "or default) would deny; exit 3 if any")
    parser.add_argument("--helper-image", metavar="IMAGE",
                        help="run this helper image instead of docker-spy-helper:VERSION")
    parser.add_argument("--privileged", action="store_true",
                        help="run the helper privileged, for hosts where CAP_SYS_ADMIN is not enough")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    add_logging_options(parser)
    parser.add_argument("-v", "--version", action="version", version=f"docker spy {__version__}")
    return parser


# --- the docker CLI's global flags, which it passes before the plugin's name ------------------

_GLOBAL_VALUE_FLAGS = {"--config": "config", "-c": "context", "--context": "context",
                       "-H": "hosts", "--host": "hosts", "-l": "log_level", "--log-level": "log_level",
                       "--tlscacert": "tlscacert", "--tlscert": "tlscert", "--tlskey": "tlskey"}
_GLOBAL_BOOL_FLAGS = {"-D": "debug", "--debug": "debug", "--tls": "tls", "--tlsverify": "tlsverify"}


def split_global(argv: Sequence[str]) -> tuple[dict[str, object], list[str]]:
    """Leading docker CLI global flags -> dict, and the rest with the plugin's name dropped."""
    found: dict[str, object] = {"hosts": []}
    args = list(argv)
    while args and args[0].startswith("-") and args[0] not in ("-", "--"):
        flag, eq, value = args[0].partition("=")
        if flag in _GLOBAL_BOOL_FLAGS and not eq:
            found[_GLOBAL_BOOL_FLAGS[flag]] = True
            args.pop(0)
        elif flag in _GLOBAL_VALUE_FLAGS:
            args.pop(0)
            if not eq:
                if not args:
                    raise UsageError(f"flag needs an argument: {flag}")
                value = args.pop(0)
            key = _GLOBAL_VALUE_FLAGS[flag]
            if key == "hosts":
                found["hosts"].append(value)  # type: ignore[union-attr]
            else:
                found[key] = value
        else:
            break
    if args and args[0] == PLUGIN_NAME:
        args.pop(0)
    return found, args


def to_stderr(text: str) -> None:
    """Text on stderr, as best effort: a reader of stderr that left (`2>&1 | head -1`) must
    not stop a run halfway, with a helper still to remove; later text then goes nowhere."""
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stderr.fileno())


class _Stderr:
    """Whatever sys.stderr is when a line is logged (tests swap it), not at set-up."""

    def write(self, text: str) -> int:
        to_stderr(text)
        return len(text)

    def flush(self) -> None:
        pass  # to_stderr flushes


def setup_logging(level: str) -> None:
    """structlog to stderr, once; modules only ask for a logger."""
    import logging

    import structlog

    name = {"warn": "warning", "fatal": "critical"}.get(level, level)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False),
            structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, name.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),
        cache_logger_on_first_use=True,
    )


def metadata() -> dict[str, str]:
    return {"SchemaVersion": "0.1.0", "Vendor": "docker spy", "Version": __version__,
            "ShortDescription": SHORT_DESCRIPTION, "URL": URL}


def progress_printer(quiet: bool) -> Callable[[str], None]:
    def show(text: str) -> None:
        if not quiet:
            to_stderr(text + "\n")
    return show


def threading_is_main() -> bool:
    return threading.current_thread() is threading.main_thread()


def watch_cli_socket(environ: dict[str, str], interrupts: Interrupts) -> None:
    """The docker CLI cancels a plugin whose output is not a terminal by closing the socket
    it names in DOCKER_CLI_PLUGIN_SOCKET (cli-plugins/socket, ConnectAndWait): its EOF is an
    interrupt here (interrupts.py says which)."""
    address = environ.get("DOCKER_CLI_PLUGIN_SOCKET")
    if not address:
        return
    import socket

    path = "\0" + address[1:] if address.startswith("@") else address  # @: abstract socket
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        return

    def wait_for_eof() -> None:
        try:
            while conn.recv(1):
                pass
        except OSError:
            pass  # reset, or closed here: the docker CLI went away all the same
        interrupts.socket_closed()

    in_background(wait_for_eof, "docker-cli-socket")


def main(argv: Sequence[str] | None = None) -> int:
    """The plugin; argv None: this process's own, and it exits when main returns."""
    exiting = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["docker-cli-plugin-metadata"]:
        print(json.dumps(metadata(), indent=2))
        return ExitStatus.OK
    debug = False
    interrupts = Interrupts()
    restore = interrupts.install() if threading_is_main() else None
    try:
        global_flags, args = split_global(argv)
        debug = bool(global_flags.get("debug"))
        # structlog's console renderer imports rich and pygments where they happen to be
        # installed, for tracebacks docker spy never shows: ~0.15 s of every start.
        sys.modules.setdefault("rich", None)  # type: ignore[arg-type]
        from . import commands  # the heavy imports start here

        return commands.dispatch(global_flags, args, interrupts)
    except SpyError as e:
        to_stderr(e.line() + "\n")
        if debug or "--debug" in argv or "-D" in argv:
            import traceback

            traceback.print_exc()
        return e.exit_status
    except KeyboardInterrupt as interrupt:
        what = "terminated" if isinstance(interrupt, Terminated) else "interrupted"
        to_stderr(f"docker spy: {what}\n")
        return interrupt_status(interrupt)
    except BrokenPipeError:
        # `docker spy web | head`: the reader left; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitStatus.ERROR
    finally:
        if exiting:
            # Done: a Ctrl-C that lands now (timeout(1) as the window ends) must not turn a
            # report already printed into a traceback on the way out.
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)
        elif restore is not None:
            restore()


def plugin_link(config: str | None) -> Path:
    base = Path(config or os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker").expanduser()
    return base / "cli-plugins" / "docker-spy"


def run() -> None:
    """The console-script entry point of `pip install`."""
    sys.exit(main())
