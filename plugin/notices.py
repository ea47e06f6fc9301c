"""What docker spy tells its user on stderr, as the docker CLI does: plain sentences, warnings
as `WARNING: ...`. Logs (timestamps, levels) are structlog's, for --debug and --log-level."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def to_stderr(text: str) -> None:
    """Text on stderr, as best effort: a reader of stderr that left (`2>&1 | head -1`) must
    not stop a run halfway, with a helper still to remove; later text then goes nowhere."""
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stderr.fileno())


def warn(text: str) -> None:
    """Something the user should know about the report or the engine, whatever --quiet says."""
    to_stderr(f"WARNING: {text}\n")


def say(text: str) -> None:
    """A plain notice, such as what a Ctrl-C does now."""
    to_stderr(f"{text}\n")


def progress_printer(quiet: bool) -> Callable[[str], None]:
    def show(text: str) -> None:
        if not quiet:
            to_stderr(text + "\n")
    return show
