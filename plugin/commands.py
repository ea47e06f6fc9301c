"""The commands: spy a container, version, build-helper, install, uninstall.

Work functions take typed values; cli.py owns argv. Imported only once a command runs,
so the plugin-metadata path stays light.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from . import STARTED, daemon, helper_image, logs, render
from .cli import METADATA, plugin_link, watch_cli_socket
from .errors import ExitStatus, SpyError, UsageError
from .interrupts import Interrupts
from .notices import progress_printer
from .options import SpyOptions

log = logs.get_logger(__name__)


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


def complete(global_flags: dict[str, Any], args: Sequence[str]) -> int:
    from . import completion

    logs.setup("critical")  # stdout is the shell's: nothing else may reach it
    return completion.complete(_global_options(global_flags), args, sys.stdout)


def run(global_flags: dict[str, Any], name: str, values: dict[str, Any], args: Sequence[str],
        opts: SpyOptions | None, interrupts: Interrupts) -> int:
    """One command, its command line already read: `docker spy` itself (name "", with opts),
    diff, build-helper, install or uninstall."""
    watch_cli_socket(dict(os.environ), interrupts)
    logs.setup(_log_level(global_flags, values["debug"], values["log_level"]))
    log.debug("plugin started", at=datetime.fromtimestamp(STARTED).strftime(logs.TIME))
    if opts is not None:
        from . import spying

        return spying.spy(_global_options(global_flags), opts, interrupts)
    if name == "diff":
        return _diff(args[0], args[1], values)
    if name == "build-helper":
        client = daemon.connect(_global_options(global_flags))
        image_id = helper_image.build(client, progress_printer(False))
        print(f"{helper_image.default_tag()} {image_id}")
        return ExitStatus.OK
    link = plugin_link(global_flags.get("config"))
    if name == "install":
        return install(link)
    return uninstall(link)


def _diff(before_path: str, after_path: str, values: dict[str, Any]) -> int:
    from . import diff

    if before_path == "-" and after_path == "-":
        raise UsageError("only one of the two reports can come from stdin")
    if "-" in (before_path, after_path) and sys.stdin.isatty():
        raise UsageError("- reads a report from stdin, and stdin is a terminal",
                         "pipe a report in: docker spy web --format json | docker spy diff a.json -")
    before, after = diff.load(before_path), diff.load(after_path)  # stdin as bytes
    render.write_diff(diff.compare(before, after), values["format"], sys.stdout,
                      top=values["top"], sort=values["sort"])
    return ExitStatus.OK


def _executable() -> Path:
    """The docker-spy executable the docker CLI should run: the checkout's front, or the
    console script pip made."""
    me = Path(sys.argv[0])
    if me.name == "docker-spy" and me.is_file():
        return me.resolve()
    found = shutil.which("docker-spy")
    if not found:
        raise SpyError("cannot find the docker-spy executable", "run install from it")
    return Path(found).resolve()


FRONT_MARK = "# written by `docker-spy install`"


def pip_front(console_script: Path, metadata: Path) -> str:
    """The plugin file for a pip install: pip's console script starts Python, and the docker
    CLI runs every plugin's metadata command on each `docker --help`."""
    return (
        "#!/bin/sh\n"
        f"{FRONT_MARK} for docker spy as pip installed it: the metadata the docker CLI\n"
        "# asks for without starting Python, and the rest to pip's console script.\n"
        'if [ "${1-}" = docker-cli-plugin-metadata ]; then\n'
        f"    while IFS= read -r line; do printf '%s\\n' \"$line\"; done <{shlex.quote(str(metadata))}\n"
        "    exit 0\n"
        "fi\n"
        f'exec {shlex.quote(str(console_script))} "$@"\n'
    )


def _written_by_install(link: Path) -> bool:
    try:
        return link.is_file() and FRONT_MARK in link.read_text(errors="replace")
    except OSError:
        return False


def install(link: Path, exe: Path | None = None) -> int:
    exe = exe or _executable()
    link.parent.mkdir(parents=True, exist_ok=True)
    front = None if exe.read_bytes()[:9] == b"#!/bin/sh" else pip_front(exe, METADATA)
    if link.is_symlink() or link.exists():
        if front is None and link.resolve() == exe:
            print(f"already installed: {link} -> {exe}")
            return ExitStatus.OK
        if not link.is_symlink() and not _written_by_install(link):
            raise UsageError(f"{link} exists and docker spy did not make it", "remove it first")
        if front is not None and not link.is_symlink() and link.read_text() == front:
            print(f"already installed: {link} runs {exe}")
            return ExitStatus.OK
        link.unlink()
    if front is None:
        link.symlink_to(exe)
        print(f"installed: {link} -> {exe} (try: docker spy --help)")
        return ExitStatus.OK
    part = link.with_name(f".{link.name}.{os.getpid()}")
    part.write_text(front)
    part.chmod(0o755)
    part.replace(link)
    print(f"installed: {link} runs {exe} (try: docker spy --help)")
    return ExitStatus.OK


def uninstall(link: Path) -> int:
    if not link.is_symlink() and not _written_by_install(link):
        if link.exists():
            raise UsageError(f"{link} is not a plugin docker spy installed", "remove it by hand")
        print(f"not installed: {link} does not exist")
        return ExitStatus.OK
    link.unlink()
    print(f"removed {link}")
    return ExitStatus.OK
