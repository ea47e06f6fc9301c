"""Shell completion through the docker CLI: `docker __complete spy ARGS... WORD` runs
`docker-spy __complete spy ARGS... WORD` (cobra's protocol, cli-plugins/manager/cobra.go):
print one candidate a line, `VALUE<TAB>description` where useful, then `:DIRECTIVE`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TextIO

from . import daemon, target
from .cli import PLUGIN_NAME, SPY, SUBCOMMANDS
from .options import FORMATS, LOG_LEVELS, SORTS
from .usage import Flag

# cobra's ShellCompDirective bits
DEFAULT = 0  # the shell may complete file names too
NO_SPACE = 2
NO_FILES = 4

DURATIONS = ("5s", "30s", "1m", "5m")
FILTER_KEYS = ("label=", "name=", "id=", "ancestor=", "network=", "volume=", "status=", "health=")
FIXED = {"--format": FORMATS, "--sort": SORTS, "-l": LOG_LEVELS, "--log-level": LOG_LEVELS,
         "-d": DURATIONS, "--duration": DURATIONS, "-i": ("1s", "2s", "5s"),
         "--interval": ("1s", "2s", "5s")}


def _spellings(flag: Flag) -> tuple[str, ...]:
    return (f"--{flag.name}", f"-{flag.short}") if flag.short else (f"--{flag.name}",)


def container_names(globals_: daemon.GlobalOptions) -> list[str]:
    """The running containers of the engine the CLI would use; none if it does not answer."""
    try:
        return sorted(c.name for c in target.running(daemon.connect(globals_)))
    except Exception:  # completion must never print an error into the user's command line
        return []


def candidates(words: Sequence[str], current: str,
               names: Callable[[], list[str]]) -> tuple[list[str], int]:
    """What may come at `current` after `words`, and cobra's directive; `names` lists the
    running containers (asked only when they can come next)."""
    value_flags = {o for f in SPY.flags if f.kind != "bool" for o in _spellings(f)}
    previous = words[-1] if words else ""
    if previous in FIXED:
        return [v for v in FIXED[previous] if v.startswith(current)], NO_FILES
    if previous in ("-f", "--filter"):
        return [k for k in FILTER_KEYS if k.startswith(current)], NO_FILES | NO_SPACE
    if previous == "--audit-profile":
        return (["default"] if "default".startswith(current) else []), DEFAULT
    if previous in value_flags:  # a file (--seccomp-profile) or an image: the shell knows best
        return [], DEFAULT
    if words and words[0] == "diff":
        return [], DEFAULT  # two report files
    if current.startswith("-"):
        flags = sorted(f"--{f.name}" for f in SPY.flags)
        return [f for f in flags if f.startswith(current)], NO_FILES
    positional = [w for i, w in enumerate(words)
                  if not w.startswith("-") and not (i and words[i - 1] in value_flags)]
    found = [n for n in names() if n.startswith(current) and n not in positional]
    if not positional:
        found += [c for c in SUBCOMMANDS if c.startswith(current)]
    return found, NO_FILES


def complete(globals_: daemon.GlobalOptions, args: Sequence[str], out: TextIO) -> int:
    words = list(args)
    if words[:1] == [PLUGIN_NAME]:
        words.pop(0)
    current = words.pop() if words else ""
    found, directive = candidates(words, current, lambda: container_names(globals_))
    for value in found:
        out.write(value + "\n")
    out.write(f":{directive}\n")
    out.flush()
    return 0
