"""The commands: spy a container, version, build-helper, install, uninstall.

Work functions take typed values; cli.py owns argv. Imported only once a command runs,
so the plugin-metadata path stays light.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog

from . import __version__, daemon, helper_image, render
from .cli import (
    COMMANDS,
    COMPLETE,
    OneLineParser,
    SpyOptions,
    add_logging_options,
    parse_duration,
    plugin_link,
    positive,
    progress_printer,
    setup_logging,
    spy_parser,
    watch_cli_socket,
)
from .errors import ExitStatus, SpyError, UsageError
from .interrupts import Interrupts

log = structlog.get_logger(__name__)


def _log_level(global_flags: dict[str, Any], debug: bool, level: str | None) -> str:
    if debug or global_flags.get("debug"):
        return "debug"
    return level or str(global_flags.get("log_level") or "warning")


def _global_options(flags: dict[str, Any]) -> daemon.GlobalOptions:
    return daemon.GlobalOptions(
        context=flags.get("context"), hosts=tuple(flags.get("hosts") or ()),
        config=flags.get("config"), tls=bool(flags.get("tls")),
        tlsverify=bool(flags.get("tlsverify")), tlscacert=flags.get("tlscacert"),
        tlscert=flags.get("tlscert"), tlskey=flags.get("tlskey"),
    )


def dispatch(global_flags: dict[str, Any], args: Sequence[str], interrupts: Interrupts) -> int:
    prog = "docker spy"
    watch_cli_socket(dict(os.environ), interrupts)
    if not args or args[0] in ("help", "-h", "--help"):
        setup_logging("warning")
        spy_parser(prog).print_help()
        return ExitStatus.OK if args else ExitStatus.USAGE
    if args[0] in COMMANDS:
        return _command(global_flags, args[0], args[1:])
    if args[0] == COMPLETE:
        from . import completion

        setup_logging("critical")  # stdout is the shell's: nothing else may reach it
        return completion.complete(_global_options(global_flags), args[1:], sys.stdout)
    ns = spy_parser(prog).parse_args(args)
    setup_logging(_log_level(global_flags, ns.debug, ns.log_level))
    if not ns.containers and not ns.filter and not ns.service:
        raise UsageError("name a container, or pick some with --filter or --service",
                         f"see '{prog} --help'")
    if ns.service and (ns.containers or ns.filter):
        raise UsageError("--service counts a service's tasks: name no container and no --filter with it")
    opts = SpyOptions(
        containers=tuple(ns.containers), filters=tuple(ns.filter),
        seconds=parse_duration(ns.duration) if ns.duration is not None else None,
        interval=parse_duration(ns.interval) if ns.interval is not None else None,
        fmt=ns.format, top=ns.top, sort=ns.sort, all=ns.all, no_trunc=ns.no_trunc,
        by_class=ns.by_class, helper_image=ns.helper_image,
        privileged=ns.privileged, quiet=ns.quiet,
        seccomp_profile=ns.seccomp_profile, audit_profile=ns.audit_profile,
        engine=ns.engine, latency=ns.latency, services=tuple(ns.service),
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
    from . import spying

    return spying.spy(_global_options(global_flags), opts, interrupts)


def _command(global_flags: dict[str, Any], name: str, rest: Sequence[str]) -> int:
    parser = OneLineParser(prog=f"docker spy {name}")
    add_logging_options(parser)
    if name == "diff":
        from . import diff

        parser.description = ("Compare two reports printed by `docker spy ... --format json`: "
                              "two windows of one container, or two containers.")
        parser.add_argument("before", help="the first report (- for stdin)")
        parser.add_argument("after", help="the second report (- for stdin)")
        parser.add_argument("--format", choices=("table", "json"), default="table",
                            help="output format (default: table)")
        parser.add_argument("--sort", choices=diff.DIFF_SORTS, default="change",
                            help="order of the rows (default: change, the largest first)")
        parser.add_argument("--top", type=positive, metavar="N", help="show only the first N syscalls")
    if name == "version":
        parser.add_argument("--short", action="store_true", help="only the version number")
        parser.add_argument("-f", "--format", choices=("pretty", "json"), default="pretty",
                            help="output format (default: pretty)")
    ns = parser.parse_args(rest)
    setup_logging(_log_level(global_flags, ns.debug, ns.log_level))
    if name == "version":
        if ns.short:
            print(__version__)
        elif ns.format == "json":
            print(json.dumps({"version": __version__}))
        else:
            print(f"docker spy version {__version__}")
        return ExitStatus.OK
    if name == "diff":
        if ns.before == "-" and ns.after == "-":
            raise UsageError("only one of the two reports can come from stdin")
        if "-" in (ns.before, ns.after) and sys.stdin.isatty():
            raise UsageError("- reads a report from stdin, and stdin is a terminal",
                             "pipe a report in: docker spy web --format json | docker spy diff a.json -")
        before, after = diff.load(ns.before), diff.load(ns.after)  # stdin as bytes
        render.write_diff(diff.compare(before, after), ns.format, sys.stdout, top=ns.top, sort=ns.sort)
        return ExitStatus.OK
    if name == "build-helper":
        client = daemon.connect(_global_options(global_flags))
        image_id = helper_image.build(client, progress_printer(False))
        print(f"{helper_image.default_tag()} {image_id}")
        return ExitStatus.OK
    link = plugin_link(global_flags.get("config"))
    if name == "install":
        return install(link)
    return uninstall(link)


def _executable() -> Path:
    """The docker-spy executable the docker CLI should run."""
    me = Path(sys.argv[0])
    if me.name == "docker-spy" and me.is_file():
        return me.resolve()
    found = shutil.which("docker-spy")
    if not found:
        raise SpyError("cannot find the docker-spy executable", "run install from it")
    return Path(found).resolve()


def install(link: Path) -> int:
    exe = _executable()
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        if link.resolve() == exe:
            print(f"already installed: {link} -> {exe}")
            return ExitStatus.OK
        if not link.is_symlink():
            raise UsageError(f"{link} exists and is not a link", "remove it first")
        link.unlink()
    link.symlink_to(exe)
    print(f"installed: {link} -> {exe} (try: docker spy --help)")
    return ExitStatus.OK


def uninstall(link: Path) -> int:
    if not link.is_symlink():
        if link.exists():
            raise UsageError(f"{link} is not a link docker spy made", "remove it by hand")
        print(f"not installed: {link} does not exist")
        return ExitStatus.OK
    link.unlink()
    print(f"removed {link}")
    return ExitStatus.OK
