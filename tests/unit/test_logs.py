"""Logs are structlog's, imported only when a message passes the level; help, version and a
run that logs nothing never import structlog, and help and version not the docker SDK either."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from plugin import logs

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("docker", "structlog", "tabulate")


def imported_by(*args: str) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """Which of HEAVY the plugin imported, run as the docker-spy front runs it."""
    probe = ("import runpy, sys\n"
             f"sys.argv = ['docker-spy', *{list(args)!r}]\n"
             "try:\n"
             f"    runpy.run_path({str(REPO / 'plugin' / '__main__.py')!r}, run_name='__main__')\n"
             "except SystemExit as e:\n"
             "    status = e.code\n"
             f"print('IMPORTED', *[m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                          cwd=REPO, env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    line = [x for x in proc.stderr.splitlines() if x.startswith("IMPORTED")][-1]
    return set(line.split()[1:]), proc


@pytest.mark.parametrize("args", [["--help"], ["version", "--short"], ["diff", "--help"], ["--foo"]])
def test_help_version_and_bad_flags_import_nothing_heavy(args: list[str]) -> None:
    imported, proc = imported_by(*args)
    assert imported == set(), (imported, proc.stdout[-300:], proc.stderr[-300:])


def test_a_run_that_logs_nothing_imports_neither_structlog_nor_tabulate() -> None:
    # The engine cannot be reached: the run fails after the SDK was imported and asked.
    imported, proc = imported_by("-H", "unix:///nonexistent/docker.sock", "web", "-d", "1s")
    assert "docker spy:" in proc.stderr and imported == {"docker"}, proc.stderr[-400:]


def test_debug_logs_import_structlog_and_say_when() -> None:
    imported, proc = imported_by("-D", "-H", "unix:///nonexistent/docker.sock", "web", "-d", "1s")
    assert "structlog" in imported
    started = re.search(r"^(\d\d:\d\d:\d\d\.\d{6}) \[debug\s*\] plugin started\s+at=(\d\d:\d\d:\d\d\.\d{6})$",
                        proc.stderr, re.MULTILINE)
    assert started and started.group(2) <= started.group(1), proc.stderr[-400:]


def test_messages_below_the_level_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    log = logs.get_logger("t")
    logs.setup("warn")
    try:
        log.debug("quiet")
        log.info("quiet too")
        assert err.getvalue() == "" and not logs.enabled("info") and logs.enabled("warning")
        log.warning("loud", n=1)
        log.error("louder")
        logs.setup("critical")
        log.error("dropped at critical")
    finally:
        logs.setup("warning")
    lines = err.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert re.match(r"^\d\d:\d\d:\d\d\.\d{6} \[warning\s*\] loud\s+n=1$", lines[0]), lines
    assert re.match(r"^\d\d:\d\d:\d\d\.\d{6} \[error\s*\] louder$", lines[1].rstrip()), lines
