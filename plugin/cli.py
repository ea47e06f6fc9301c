"""argv -> options; the docker CLI plugin protocol (metadata, help, version); exit statuses.

Only the standard library is imported at module level: the docker CLI runs
`docker-spy docker-cli-plugin-metadata` on every `docker --help`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .errors import ExitStatus, SpyError, Terminated, UsageError, interrupt_status
from .interrupts import Interrupts, in_background
from .notices import to_stderr
from .options import (
    DIFF_SORTS,
    ENGINES,
    FORMATS,
    LOG_LEVELS,
    SORTS,
    SpyOptions,
    one_of,
    parse_duration,
    positive,
)
from .usage import ArgsError, Command, Flag, HelpWanted, Value, check_args, help_text, parse

PLUGIN_NAME = "spy"
URL = "https://github.com/docker-spy/docker-spy"
SHORT_DESCRIPTION = "Count the system calls a container makes"
COMPLETE = "__complete"  # cobra's hidden command: the docker CLI asks plugins for completions

# Examples and descriptions fit 80 columns: the docker CLI prints them as they are.
EXAMPLES = """\
  docker spy web                    Count until Ctrl-C, then print the table
  docker spy web -d 30s             Count for 30 seconds
  docker spy web db cache -d 10s    Several containers, one column each
  docker spy -f label=com.docker.compose.project=shop -d 10s
                                    A whole compose project
  docker spy web -i 2s              A live view, like docker stats
  docker spy --service api -d 30s   Every task of a Swarm service, on its node
  docker spy 3f2a1b --top 10        An id prefix; only the 10 busiest syscalls
  docker spy web -d 5s --by-class   Subtotals per class: file, network, ...
  docker spy web -d 10s --latency   Also the time spent in each syscall
  docker spy web -d 5s --format json | jq '.syscalls[0]'
  docker spy web -d 5m --seccomp-profile web.json
                                    A seccomp profile from what web did
  docker spy web -d 1m --audit-profile default
                                    What the default profile would deny
  docker --context prod spy api -d 1m
                                    The engine of another context"""


def _check_syscalls(text: str) -> str:
    from . import selection  # reads the syscall tables: only when --syscall is given

    return selection.check_value(text)


LOGGING_FLAGS = (
    Flag("debug", "Show debug logs (and tracebacks)", short="D"),
    Flag("log-level", 'Set the logging level ("debug", "info", "warn", "error", "fatal") '
                      '(default "warn")', short="l", kind="string", convert=one_of(*LOG_LEVELS)),
)

SPY = Command(
    "docker spy",
    ("[OPTIONS] CONTAINER [CONTAINER...]", "[OPTIONS] --filter FILTER",
     "[OPTIONS] --service SERVICE", "COMMAND"),
    """\
Count the system calls running containers make, per syscall: calls, failed
calls, rate and share. A short-lived helper container on the same engine counts
them in the kernel: with BPF where it can, else with perf.""",
    (
        Flag("all", "Show syscalls that were not called too", short="a"),
        Flag("audit-profile", 'Also tell which observed syscalls this seccomp profile (a file, '
                              'or "default") would deny; exit 3 if any', kind="string"),
        Flag("by-class", "Group the syscalls by class (file, network, process, memory, signal, "
                         "time, ipc, other) with subtotals"),
        Flag("by-process", "Also count each process of a container apart: its pid, command, "
                           "calls and top syscall (BPF engine)"),
        Flag("duration", "How long to count: 500ms, 30s, 2m, 1h; a bare number is seconds "
                         "(default: until Ctrl-C)", short="d", kind="duration", convert=parse_duration),
        Flag("engine", "How to count: bpf, perf, or auto (BPF where it can run, else perf)",
             kind="string", default="auto", convert=one_of(*ENGINES)),
        Flag("filter", "Spy the running containers that match, as docker ps --filter "
                       "(e.g. label=com.docker.compose.project=shop)",
             short="f", kind="filter", repeat=True),
        Flag("format", 'Output format: table, json or csv (default "table")', kind="string",
             convert=one_of(*FORMATS)),
        Flag("helper-image", "Run this helper image instead of docker-spy-helper:VERSION",
             kind="string"),
        Flag("interval", "A live view: redraw the table (on a terminal) or print one JSON "
                         "line every interval", short="i", kind="duration", convert=parse_duration),
        Flag("latency", "Also the time spent in each syscall: total, average, longest (BPF "
                        "engine)"),
        Flag("no-trunc", "Do not truncate container ids and names"),
        Flag("privileged", "Run the helper privileged, for hosts where CAP_SYS_ADMIN is not "
                           "enough"),
        Flag("quiet", "No progress messages", short="q"),
        Flag("seccomp-profile", "Also write to this file a seccomp profile allowing what was "
                                "observed (plus what any container needs to start)",
             kind="string"),
        Flag("service", "Spy every running task of this Swarm service, on whichever node it "
                        "runs (on a manager; repeat it for several services)",
             kind="string", repeat=True),
        Flag("sort", "Order of the rows: calls, errors, name or rate", kind="string",
             default="calls", convert=one_of(*SORTS)),
        Flag("syscall", "Count only these syscalls (e.g. openat,read) or classes (e.g. "
                        "network; see --by-class)", kind="strings", repeat=True,
             convert=_check_syscalls),
        Flag("top", "Show only the first N syscalls", kind="int", convert=positive),
        Flag("version", "Print version information and quit", short="v"),
        *LOGGING_FLAGS,
    ),
    examples=EXAMPLES,
    commands=(
        ("build-helper", "Build the helper image on the engine"),
        ("diff", "Compare two reports printed by --format json"),
        ("install", "Install this docker-spy as a docker CLI plugin"),
        ("uninstall", "Remove the plugin that install made"),
        ("version", "Show the docker spy version information"),
    ),
)

SUBCOMMANDS = {
    "version": Command(
        "docker spy version", ("[OPTIONS]",), "Show the docker spy version information",
        (Flag("format", "Format the output: pretty or json", short="f", kind="string",
              default="pretty", convert=one_of("pretty", "json")),
         Flag("short", "Print only the version number"), *LOGGING_FLAGS),
        max_args=0),
    "diff": Command(
        "docker spy diff", ("[OPTIONS] BEFORE AFTER",), """\
Compare two reports printed by `docker spy ... --format json`: two windows of
one container, or two containers. Either report may be - (stdin).""",
        (Flag("format", "Output format: table or json", kind="string", default="table",
              convert=one_of("table", "json")),
         Flag("sort", "Order of the rows: change (the largest first), name or calls",
              kind="string", default="change", convert=one_of(*DIFF_SORTS)),
         Flag("top", "Show only the first N syscalls", kind="int", convert=positive),
         *LOGGING_FLAGS),
        min_args=2, max_args=2),
    "build-helper": Command(
        "docker spy build-helper", ("[OPTIONS]",), """\
Build the helper image (docker-spy-helper:VERSION) on the engine of the current
context, from the Dockerfile this docker spy carries.""", LOGGING_FLAGS, max_args=0),
    "install": Command(
        "docker spy install", ("[OPTIONS]",), """\
Install this docker-spy as a docker CLI plugin, in the cli-plugins folder of
the docker CLI's configuration.""", LOGGING_FLAGS, max_args=0),
    "uninstall": Command(
        "docker spy uninstall", ("[OPTIONS]",), "Remove the plugin that install made",
        LOGGING_FLAGS, max_args=0),
}


def terminal_width() -> int:
    """As the docker CLI sizes its help: stdin's terminal, else 80 columns."""
    try:
        return os.get_terminal_size(0).columns or 80
    except OSError:
        return 80


def spy_options(values: dict[str, Value], args: Sequence[str]) -> SpyOptions:
    """`docker spy`'s flag values and arguments -> SpyOptions, or the UsageError a
    combination of them makes."""
    containers, filters, services = tuple(args), tuple(values["filter"]), tuple(values["service"])  # type: ignore[arg-type]
    if not containers and not filters and not services:
        raise ArgsError(SPY, "docker: 'docker spy' requires at least 1 argument", "See")
    if services and (containers or filters):
        raise UsageError("--service counts a service's tasks: name no container and no --filter with it")
    opts = SpyOptions(
        containers=containers, filters=filters, seconds=values["duration"],  # type: ignore[arg-type]
        interval=values["interval"], fmt=values["format"] or "table",  # type: ignore[arg-type]
        fmt_given=values["format"] is not None, top=values["top"],  # type: ignore[arg-type]
        sort=values["sort"], all=values["all"], no_trunc=values["no_trunc"],  # type: ignore[arg-type]
        by_class=values["by_class"], helper_image=values["helper_image"],  # type: ignore[arg-type]
        privileged=values["privileged"], quiet=values["quiet"],  # type: ignore[arg-type]
        seccomp_profile=values["seccomp_profile"], audit_profile=values["audit_profile"],  # type: ignore[arg-type]
        engine=values["engine"], latency=values["latency"], services=services,  # type: ignore[arg-type]
        syscalls=_resolve_syscalls(values["syscall"]),  # type: ignore[arg-type]
        syscalls_named=_named_syscalls(values["syscall"]),  # type: ignore[arg-type]
        by_process=values["by_process"],  # type: ignore[arg-type]
    )
    if opts.services and opts.interval is not None:
        raise UsageError("--interval is not yet there with --service",
                         "the report comes at the end of the window, or at Ctrl-C")
    if opts.latency and opts.engine == "perf":
        raise UsageError("--latency needs the BPF engine", "leave --engine perf out")
    if opts.interval is not None and opts.seconds is not None and opts.interval > opts.seconds:
        raise UsageError("--interval is longer than --duration")
    if opts.interval is not None and opts.fmt == "csv":
        raise UsageError("--interval prints a live table or JSON lines, not CSV")
    if opts.by_process and opts.engine == "perf":
        raise UsageError("--by-process needs the BPF engine (perf counts per cgroup only)",
                         "leave --engine perf out")
    if opts.syscalls and opts.seccomp_profile:
        raise UsageError("--seccomp-profile needs every syscall counted", "leave --syscall out")
    return opts


def _resolve_syscalls(values: list[str]) -> tuple[str, ...]:
    if not values:
        return ()
    from . import selection

    return selection.resolve(values)


def _named_syscalls(values: list[str]) -> tuple[str, ...]:
    if not values:
        return ()
    from . import selection

    return selection.named(values)


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


# The docker CLI plugin metadata, printed as is: the docker-spy front (sh) prints this file
# without starting Python, and so does the front `docker-spy install` writes for pip installs.
METADATA = Path(__file__).with_name("plugin-metadata.json")


def metadata() -> dict[str, str]:
    return dict(json.loads(METADATA.read_text()))


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
        sys.stdout.write(METADATA.read_text())
        return ExitStatus.OK
    debug = False
    interrupts = Interrupts()
    restore = interrupts.install() if threading_is_main() else None
    try:
        global_flags, args = split_global(argv)
        debug = bool(global_flags.get("debug"))
        return _dispatch(global_flags, args, interrupts)
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


def _dispatch(global_flags: dict[str, object], args: list[str], interrupts: Interrupts) -> int:
    """Help and version answer here, before any heavy import; the rest goes to commands."""
    if args[:1] == ["help"]:
        wanted = SUBCOMMANDS.get(args[1], SPY) if len(args) > 1 else SPY
        sys.stdout.write(help_text(wanted, terminal_width()))
        return ExitStatus.OK
    if args[:1] == [COMPLETE]:
        return _commands().complete(global_flags, args[1:])
    name = args[0] if args and args[0] in SUBCOMMANDS else ""
    command = SUBCOMMANDS[name] if name else SPY
    try:
        values, positional = parse(command, args[1:] if name else args)
    except HelpWanted as wanted:
        sys.stdout.write(help_text(wanted.command, terminal_width()))
        return ExitStatus.OK
    if name:
        check_args(command, positional)
    elif values["version"]:
        name = "version"
    if name == "version":
        return version(str(values.get("format") or "pretty"), bool(values.get("short")))
    opts = None if name else spy_options(values, positional)
    return _commands().run(global_flags, name, values, positional, opts, interrupts)


def _commands():  # type: ignore[no-untyped-def]
    # structlog's console renderer imports rich and pygments where they happen to be
    # installed, for tracebacks docker spy never shows: ~0.15 s of every start.
    sys.modules.setdefault("rich", None)  # type: ignore[arg-type]
    from . import commands  # the heavy imports start here

    return commands


def version(fmt: str, short: bool) -> int:
    if short:
        print(__version__)
    elif fmt == "json":
        print(json.dumps({"version": __version__}))
    else:
        print(f"docker spy version {__version__}")
    return ExitStatus.OK


def plugin_link(config: str | None) -> Path:
    base = Path(config or os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker").expanduser()
    return base / "cli-plugins" / "docker-spy"


def run() -> None:
    """The console-script entry point of `pip install`."""
    sys.exit(main())
