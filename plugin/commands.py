"""The commands: spy a container, version, build-helper, install, uninstall.

Work functions take typed values; cli.py owns argv. Imported only once a command runs,
so the plugin-metadata path stays light.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog

from . import __version__, daemon, helper_image, launcher, render, report, target
from .cli import (
    COMMANDS,
    MAX_SECONDS,
    OneLineParser,
    SpyOptions,
    add_logging_options,
    parse_duration,
    plugin_link,
    progress_printer,
    setup_logging,
    spy_parser,
    watch_cli_socket,
)
from .errors import ExitStatus, SpyError, UsageError, interrupt_status

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


def dispatch(global_flags: dict[str, Any], args: Sequence[str]) -> int:
    prog = "docker spy"
    watch_cli_socket(dict(os.environ))
    if not args or args[0] in ("help", "-h", "--help"):
        setup_logging("warning")
        spy_parser(prog).print_help()
        return ExitStatus.OK if args else ExitStatus.USAGE
    if args[0] in COMMANDS:
        return _command(global_flags, args[0], args[1:])
    ns = spy_parser(prog).parse_args(args)
    setup_logging(_log_level(global_flags, ns.debug, ns.log_level))
    opts = SpyOptions(
        container=ns.container,
        seconds=parse_duration(ns.duration) if ns.duration is not None else None,
        fmt=ns.format, top=ns.top, sort=ns.sort, all=ns.all, no_trunc=ns.no_trunc,
        helper_image=ns.helper_image,
        privileged=ns.privileged, quiet=ns.quiet,
    )
    return spy(_global_options(global_flags), opts)


def _command(global_flags: dict[str, Any], name: str, rest: Sequence[str]) -> int:
    parser = OneLineParser(prog=f"docker spy {name}")
    add_logging_options(parser)
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
    if name == "build-helper":
        client = daemon.connect(_global_options(global_flags))
        image_id = helper_image.build(client, progress_printer(False))
        print(f"{helper_image.default_tag()} {image_id}")
        return ExitStatus.OK
    link = plugin_link(global_flags.get("config"))
    if name == "install":
        return install(link)
    return uninstall(link)


def spy(globals_: daemon.GlobalOptions, opts: SpyOptions) -> int:
    target.check_reference(opts.container)  # bad input fails before any engine is asked
    client = daemon.connect(globals_)
    tgt = target.resolve(client, opts.container)
    progress = progress_printer(opts.quiet or not sys.stderr.isatty())
    image = helper_image.ensure(client, opts.helper_image, progress_printer(opts.quiet))
    seconds = opts.seconds if opts.seconds is not None else MAX_SECONDS

    def on_event(event: dict) -> None:
        if event["event"] == "counting":
            log.info("counting", container=tgt.name, cgroup=event.get("cgroup"),
                     counters=event.get("counters"))
            window = f"for {opts.seconds:g} s" if opts.seconds else "until Ctrl-C"
            progress(f"counting the syscalls of {tgt.name} {window}...")
        elif event["event"] == "warning":
            log.warning("helper", message=str(event.get("message"))[:300])

    raw, interrupt = launcher.run(
        client, launcher.HelperRun(image, tgt, seconds, opts.privileged), on_event)
    rep = report.from_helper(raw, target_id=tgt.id, target_name=tgt.name, pid=tgt.pid,
                             requested_seconds=seconds)
    if opts.seconds is None:
        # Counting until Ctrl-C: no window was asked for, and the interrupt is its end.
        rep = dataclasses.replace(rep, window=dataclasses.replace(rep.window, requested_seconds=None))
        if rep.stopped == "interrupted":
            rep = dataclasses.replace(rep, partial=False, stopped=None)
    render.write(rep, render.View(opts.fmt, opts.top, opts.sort, opts.all, opts.no_trunc),
                 sys.stdout)
    if rep.stopped == "target-exited":
        log.warning(f"container {tgt.name} stopped during the window: the report covers "
                    f"{rep.window.measured_seconds:.2f} s")
    if interrupt is not None and opts.seconds is not None:
        return interrupt_status(interrupt)
    return ExitStatus.OK


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
