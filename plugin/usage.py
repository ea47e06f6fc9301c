"""Command lines as the docker CLI reads and explains them (cobra and pflag): flags, help,
and the errors of a wrong command line, in its layout and words. Pure: no I/O.

A Command is plain data; parse() turns argv into values or raises a FlagError or ArgsError
whose line() is what the docker CLI would print for a command of the same shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import ExitStatus, UsageError

Value = bool | str | int | float | list[str] | None


@dataclass(frozen=True)
class Flag:
    name: str  # the long name, without --
    help: str
    short: str = ""  # one letter, or none
    kind: str = "bool"  # pflag's type word in the help: bool (none shown), string, int, duration...
    default: str = ""  # shown as (default "x") when given; parse() returns it converted
    repeat: bool = False  # may be given several times: a list of every value
    convert: Callable[[str], object] | None = None  # raises ValueError(reason) for a bad value

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def label(self) -> str:
        """As pflag names a flag in an error: "-d, --duration" or "--top"."""
        return f"-{self.short}, --{self.name}" if self.short else f"--{self.name}"


@dataclass(frozen=True)
class Command:
    path: str  # "docker spy diff"
    uses: tuple[str, ...]  # what follows the path, one per form: "[OPTIONS] BEFORE AFTER"
    description: str  # wrapped by its author, as cobra prints Long as is
    flags: tuple[Flag, ...]
    min_args: int = 0
    max_args: int | None = None  # None: any number
    examples: str = ""  # indented by its author
    aliases: str = ""  # "docker container logs, docker logs"
    commands: tuple[tuple[str, str], ...] = ()  # subcommands: name, one line

    def usage_lines(self) -> str:
        first, *more = [f"{self.path} {use}" for use in self.uses]
        return "\n".join([f"Usage:  {first}"] + [f"\t{line}" for line in more])


class FlagError(UsageError):
    """A wrong flag or flag value: the message, the usage, and where help is (exit 125)."""

    def __init__(self, command: Command, message: str, verb: str = "Run") -> None:
        super().__init__(message)
        self.command = command
        self.verb = verb  # the docker CLI says See after "requires at least", else Run

    def line(self) -> str:
        return (f"{self.what}\n\n{self.command.usage_lines()}\n\n"
                f"{self.verb} '{self.command.path} --help' for more information")


class ArgsError(FlagError):
    """Too few or too many arguments: as cobra's arguments checks say it (exit 1)."""

    exit_status = ExitStatus.ERROR


class HelpWanted(Exception):
    """-h or --help was given: print the help of this command."""

    def __init__(self, command: Command) -> None:
        super().__init__(command.path)
        self.command = command


_TRUE, _FALSE = ("1", "t", "T", "true", "TRUE", "True"), ("0", "f", "F", "false", "FALSE", "False")


def _bool(text: str) -> bool:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("use true or false")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def check_args(command: Command, args: Sequence[str]) -> None:
    """cobra's NoArgs, ExactArgs, MinimumNArgs and MaximumNArgs, as the docker CLI words them."""
    low, high, n = command.min_args, command.max_args, len(args)
    if high == 0 and n:
        raise ArgsError(command, f"docker: '{command.path}' accepts no arguments")
    if low == high and n != low:
        raise ArgsError(command, f"docker: '{command.path}' requires {_plural(low, 'argument')}")
    if n < low and high is not None:
        raise ArgsError(command, f"docker: '{command.path}' requires at least {low} and at "
                                 f"most {_plural(high, 'argument')}")
    if n < low:
        raise ArgsError(command, f"docker: '{command.path}' requires at least "
                                 f"{_plural(low, 'argument')}", "See")
    if high is not None and n > high and low:
        raise ArgsError(command, f"docker: '{command.path}' requires at least {low} and at "
                                 f"most {_plural(high, 'argument')}")
    if high is not None and n > high:
        raise ArgsError(command, f"docker: '{command.path}' requires at most "
                                 f"{_plural(high, 'argument')}")


def _set(command: Command, values: dict[str, Value], flag: Flag, text: str) -> None:
    try:
        value = _bool(text) if flag.kind == "bool" else (flag.convert or str)(text)
    except ValueError as e:
        raise FlagError(command, f'invalid argument "{text}" for "{flag.label}" flag: {e}') from None
    if flag.repeat:
        listed = values[flag.dest]
        assert isinstance(listed, list)
        listed.append(str(value))
    else:
        values[flag.dest] = value  # type: ignore[assignment]


def defaults(command: Command) -> dict[str, Value]:
    values: dict[str, Value] = {}
    for flag in command.flags:
        if flag.repeat:
            values[flag.dest] = []
        elif flag.kind == "bool":
            values[flag.dest] = False
        elif flag.default:
            values[flag.dest] = (flag.convert or str)(flag.default)  # type: ignore[assignment]
        else:
            values[flag.dest] = None
    return values


def parse(command: Command, argv: Sequence[str]) -> tuple[dict[str, Value], list[str]]:
    """argv -> (flag values by dest, the arguments), as pflag reads it: flags and arguments in
    any order, --name=value or --name value, -x value or -xvalue, bool shorthands together
    (-aq), and everything after `--` an argument."""
    if "-h" in argv[: _end(argv)] or "--help" in argv[: _end(argv)]:
        raise HelpWanted(command)
    longs = {f.name: f for f in command.flags}
    shorts = {f.short: f for f in command.flags if f.short}
    values, args = defaults(command), []
    rest = list(argv)
    while rest:
        word = rest.pop(0)
        if word == "--":
            args += rest
            break
        if word.startswith("--"):
            name, eq, text = word[2:].partition("=")
            flag = longs.get(name)
            if flag is None:
                raise FlagError(command, f"unknown flag: --{name}")
            if not eq and flag.kind != "bool":
                if not rest:
                    raise FlagError(command, f"flag needs an argument: --{name}")
                text = rest.pop(0)
            _set(command, values, flag, text if eq or flag.kind != "bool" else "true")
        elif word.startswith("-") and word != "-":
            letters = word[1:]
            while letters:
                letter, letters = letters[0], letters[1:]
                flag = shorts.get(letter)
                if flag is None:
                    raise FlagError(command, f"unknown shorthand flag: '{letter}' in {word}")
                if flag.kind == "bool":
                    if letters.startswith("="):
                        _set(command, values, flag, letters[1:])
                        letters = ""
                    else:
                        _set(command, values, flag, "true")
                    continue
                text = letters.removeprefix("=")
                if not letters:
                    if not rest:
                        raise FlagError(command, f"flag needs an argument: '{letter}' in {word}")
                    text = rest.pop(0)
                _set(command, values, flag, text)
                letters = ""
        else:
            args.append(word)
    return values, args


def _end(argv: Sequence[str]) -> int:
    return argv.index("--") if "--" in argv else len(argv)


# --- help, as the docker CLI's usage template and pflag's FlagUsagesWrapped lay it out ---------


def _wrap_n(i: int, slop: int, s: str) -> tuple[str, str]:
    """pflag's wrapN: s split on whitespace into a line of up to i characters and the rest;
    up to slop more when that takes the whole of s (no short orphan on the last line)."""
    if i + slop > len(s):
        return s, ""
    w = max(s.rfind(c, 0, i) for c in " \t\n")
    if w <= 0:
        return s, ""
    nl = s.rfind("\n", 0, i)
    if 0 < nl < w:
        return s[:nl], s[nl + 1:]
    return s[:w], s[w + 1:]


def _wrap(i: int, w: int, s: str) -> str:
    """pflag's wrap: s wrapped to width w, lines after the first indented by i."""
    wrap, out = w - i, ""
    if wrap < 24:  # no room beside the flags: the block goes on the next line
        i, out = 16, "\n" + " " * 16
        wrap = w - i
    if wrap < 24:
        return s.replace("\n", out)
    slop = 5
    wrap -= slop
    line, s = _wrap_n(wrap, slop, s)
    out += line.replace("\n", "\n" + " " * i)
    while s:
        line, s = _wrap_n(wrap, slop, s)
        out += "\n" + " " * i + line.replace("\n", "\n" + " " * i)
    return out


def flag_usages(flags: Sequence[Flag], width: int) -> str:
    """The Options: block, sorted by name, wrapped to width - 1 as the docker CLI asks."""
    lines = []
    for flag in sorted(flags, key=lambda f: f.name):
        line = f"  -{flag.short}, --{flag.name}" if flag.short else f"      --{flag.name}"
        if flag.kind != "bool":
            line += f" {flag.kind}"
        help_ = flag.help
        if flag.default:
            help_ += f' (default "{flag.default}")' if flag.kind == "string" else f" (default {flag.default})"
        lines.append((line, help_))
    column = max(len(line) for line, _ in lines) + 1
    return "\n".join(f"{line}{' ' * (column - len(line) + 2)}{_wrap(column + 2, width - 1, help_)}"
                     for line, help_ in lines)


def help_text(command: Command, width: int = 80) -> str:
    """`COMMAND --help` as the docker CLI prints it (cli/cobra.go's usage template)."""
    parts = [command.usage_lines(), command.description.strip()]
    if command.aliases:
        parts.append(f"Aliases:\n  {command.aliases}")
    if command.examples:
        parts.append("Examples:\n" + command.examples.rstrip())
    if command.flags:
        parts.append("Options:\n" + flag_usages(command.flags, width))
    if command.commands:
        pad = max([11] + [len(name) for name, _ in command.commands])  # cobra's minNamePadding
        parts.append("Commands:\n" + "\n".join(f"  {name.ljust(pad)} {what}"
                                               for name, what in command.commands))
        parts.append(f"Run '{command.path} COMMAND --help' for more information on a command.")
    return "\n\n".join(parts) + "\n"
