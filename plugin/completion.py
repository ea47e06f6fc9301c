"""Shell completion through the docker CLI: `docker __complete spy ARGS... WORD` runs
`docker-spy __complete spy ARGS... WORD` (cobra's protocol, cli-plugins/manager/cobra.go):
print one candidate a line, `VALUE<TAB>description` where useful, then `:DIRECTIVE`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TextIO

from . import daemon, target
from .cli import COMMANDS, FORMATS, LOG_LEVELS, PLUGIN_NAME, SORTS, spy_parser

# cobra's ShellCompDirective bits
DEFAULT = 0  # the shell may complete file names too
NO_SPACE = 2
NO_FILES = 4

DURATIONS = ("5s", "30s", "1m", "5m")
FILTER_KEYS = ("label=", "name=", "id=", "ancestor=", "network=", "volume=", "status=", "health=")
FIXED = {"--format": FORMATS, "--sort": SORTS, "-l": LOG_LEVELS, "--log-level": LOG_LEVELS,
         "-d": DURATIONS, "--duration": DURATIONS, "-i": ("1s", "2s", "5s"),
         "--interval": ("1s", "2s", "5s")}


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
    actions = spy_parser("docker spy")._actions
    value_flags = {o for a in actions if a.nargs != 0 for o in a.option_strings}
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
        flags = sorted(o for a in actions for o in a.option_strings if o.startswith("--"))
        return [f for f in flags if f.startswith(current)], NO_FILES
    positional = [w for i, w in enumerate(words)
                  if not w.startswith("-") and not (i and words[i - 1] in value_flags)]
    found = [n for n in names() if n.startswith(current) and n not in positional]
    if not positional:
        found += [c for c in COMMANDS if c.startswith(current) and c != "help"]
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
