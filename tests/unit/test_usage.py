"""usage.py against the docker CLI itself: the same command shapes, declared here, must print
what `docker` on this machine prints for them, byte for byte (help, a bad flag, a missing
argument); and pflag's way of reading a command line."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess

import pytest

from plugin import usage
from plugin.errors import ExitStatus
from plugin.options import positive
from plugin.usage import ArgsError, Command, Flag, FlagError, HelpWanted

SINCE = 'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)'
UNTIL = 'Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)'
LOGS = Command("docker logs", ("[OPTIONS] CONTAINER",), "Fetch the logs of a container", (
    Flag("details", "Show extra details provided to logs"),
    Flag("follow", "Follow log output", short="f"),
    Flag("since", SINCE, kind="string"),
    Flag("tail", "Number of lines to show from the end of the logs", short="n", kind="string",
         default="all"),
    Flag("timestamps", "Show timestamps", short="t"),
    Flag("until", UNTIL, kind="string"),
), min_args=1, max_args=1, aliases="docker container logs, docker logs")
STOP = Command("docker stop", ("[OPTIONS] CONTAINER [CONTAINER...]",),
               "Stop one or more running containers", (
    Flag("timeout", "Seconds to wait before killing the container", short="t", kind="int",
         convert=positive),
    Flag("signal", "Signal to send to the container", short="s", kind="string"),
), min_args=1, aliases="docker container stop, docker stop")
CP = Command("docker cp", ("[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-",
                           "[OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH"), """\
Copy files/folders between a container and the local filesystem

Use '-' as the source to read a tar archive from stdin
and extract it to a directory destination in a container.
Use '-' as the destination to stream a tar archive of a
container source to stdout.""", (
    Flag("archive", "Archive mode (copy all uid/gid information)", short="a"),
    Flag("follow-link", "Always follow symbol link in SRC_PATH", short="L"),
    Flag("quiet", "Suppress progress output during copy. Progress output is automatically "
                  "suppressed if no terminal is attached", short="q"),
), min_args=2, max_args=2, aliases="docker container cp, docker cp")
VERSION = Command("docker version", ("[OPTIONS]",), "Show the Docker version information",
                  (Flag("format", "Format output", short="f", kind="string"),), max_args=0)
LOGIN = Command("docker login", ("[OPTIONS] [SERVER]",),
                "Authenticate to a registry.\nDefaults to Docker Hub if no server is specified.", (
    Flag("password", "Password or Personal Access Token (PAT)", short="p", kind="string"),
    Flag("password-stdin", "Take the Password or Personal Access Token (PAT) from stdin"),
    Flag("username", "Username", short="u", kind="string"),
), max_args=1)
PORT = Command("docker port", ("CONTAINER [PRIVATE_PORT[/PROTO]]",),
               "List port mappings or a specific mapping for the container", (),
               min_args=1, max_args=2)

needs_docker = pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI")


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    # stdin is not a terminal: the CLI sizes its help to 80 columns, as help_text's default
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL, env={"PATH": "/usr/local/bin:/usr/bin:/bin",
                                                         "HOME": "/nonexistent"})


@needs_docker
@pytest.mark.parametrize("command, argv", [(LOGS, ["logs"]), (STOP, ["stop"]), (CP, ["cp"])])
def test_help_as_the_docker_cli_prints_it(command: Command, argv: list[str]) -> None:
    real = docker(*argv, "--help").stdout
    assert usage.help_text(command) == real


@needs_docker
@pytest.mark.parametrize("command, argv, bad", [
    (LOGS, ["logs", "--foo", "c"], ["--foo", "c"]),
    (LOGS, ["logs", "c", "-x"], ["c", "-x"]),
    (LOGS, ["logs", "c", "--tail"], ["c", "--tail"]),
    (LOGS, ["logs", "c", "-n"], ["c", "-n"]),
    (LOGS, ["logs", "--follow=maybe", "c"], ["--follow=maybe", "c"]),
    (VERSION, ["version", "--foo"], ["--foo"]),
])
def test_a_bad_flag_as_the_docker_cli_tells_it(command: Command, argv: list[str],
                                               bad: list[str]) -> None:
    real = docker(*argv)
    with pytest.raises(FlagError) as caught:
        usage.parse(command, bad)
    assert caught.value.exit_status == ExitStatus.USAGE == real.returncode == 125
    mine, theirs = caught.value.line() + "\n", real.stderr
    if "invalid argument" in theirs:  # the reason after "flag: " is Go's own words
        mine, theirs = mine.split(" flag: ", 1)[0], theirs.split(" flag: ", 1)[0]
    assert mine == theirs


@needs_docker
@pytest.mark.parametrize("command, argv", [
    (LOGS, ["logs"]), (LOGS, ["logs", "a", "b"]), (STOP, ["stop"]), (CP, ["cp", "a"]),
    (VERSION, ["version", "x"]), (PORT, ["port"]), (PORT, ["port", "a", "b", "c"]),
])
def test_missing_or_extra_arguments_as_the_docker_cli_tells_them(command: Command,
                                                                  argv: list[str]) -> None:
    real = docker(*argv)
    with pytest.raises(ArgsError) as caught:
        usage.check_args(command, argv[1:])
    assert caught.value.exit_status == ExitStatus.ERROR == real.returncode == 1
    assert caught.value.line() + "\n" == real.stderr


def test_flags_and_arguments_in_any_order_as_pflag_reads_them() -> None:
    values, args = usage.parse(STOP, ["a", "-t", "5", "b", "--signal=KILL", "--", "-c", "--x"])
    assert values == {"timeout": 5, "signal": "KILL"} and args == ["a", "b", "-c", "--x"]
    values, _ = usage.parse(STOP, ["-t5", "-s=HUP"])
    assert values == {"timeout": 5, "signal": "HUP"}
    values, args = usage.parse(CP, ["-aq", "-", "x"])
    assert (values["archive"], values["quiet"], values["follow_link"]) == (True, True, False)
    assert args == ["-", "x"]
    values, _ = usage.parse(CP, ["-a=false", "--quiet=true"])
    assert (values["archive"], values["quiet"]) == (False, True)
    values, _ = usage.parse(LOGS, [])
    assert values["tail"] == "all" and values["since"] is None and values["follow"] is False


def test_a_repeated_flag_keeps_every_value() -> None:
    command = Command("docker x", ("[OPTIONS]",), "x", (
        Flag("filter", "f", short="f", kind="filter", repeat=True),))
    values, _ = usage.parse(command, ["-f", "a=1", "--filter=b=2", "-fc=3"])
    assert values == {"filter": ["a=1", "b=2", "c=3"]}
    assert usage.parse(command, [])[0] == {"filter": []}


def test_help_anywhere_before_a_double_dash() -> None:
    for argv in (["--help"], ["c", "-h"], ["--tail", "x", "--help"]):
        with pytest.raises(HelpWanted):
            usage.parse(LOGS, argv)
    assert usage.parse(LOGS, ["--", "--help"])[1] == ["--help"]


def test_an_unknown_shorthand_among_bool_shorthands_is_named() -> None:
    with pytest.raises(FlagError, match=r"unknown shorthand flag: 'z' in -aqz"):
        usage.parse(CP, ["-aqz"])


def test_wrapping_puts_a_narrow_column_on_its_own_lines() -> None:
    # A flag so long that 24 columns are not left beside it: pflag's block below, at 16.
    command = Command("docker x", ("[OPTIONS]",), "x", (
        Flag("a-flag-name-so-long-that-nothing-fits-beside-it", "word " * 20, kind="string"),))
    out = usage.flag_usages(command.flags, 80).split("\n")
    assert out[0].endswith("string   ")
    assert all(line.startswith(" " * 16 + "word") for line in out[1:])
    assert max(len(line) for line in out) <= 79


def docker_at_width(width: int, *args: str) -> str:
    """The docker CLI's output with stdin a terminal `width` columns wide (it sizes help by it)."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    try:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, width, 0, 0))
        return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=30,
                              stdin=follower, env={"PATH": "/usr/local/bin:/usr/bin:/bin",
                                                   "HOME": "/nonexistent"}).stdout
    finally:
        os.close(leader)
        os.close(follower)


@needs_docker
@pytest.mark.parametrize("width", [20, 30, 39, 44, 52, 61, 72, 100, 160])
@pytest.mark.parametrize("command, argv", [(LOGS, ["logs"]), (STOP, ["stop"]), (CP, ["cp"]),
                                           (LOGIN, ["login"])])
def test_help_wraps_as_the_docker_cli_wraps_at_any_width(command: Command, argv: list[str],
                                                          width: int) -> None:
    real = docker_at_width(width, *argv, "--help")
    assert real.startswith("Usage:") and usage.help_text(command, width) == real


@needs_docker
def test_too_many_arguments_for_an_optional_one_as_the_docker_cli_tells_it() -> None:
    real = docker("login", "a", "b")
    with pytest.raises(ArgsError) as caught:
        usage.check_args(LOGIN, ["a", "b"])
    assert caught.value.exit_status == ExitStatus.ERROR == real.returncode == 1
    # The docker CLI 28.2 prints "SRun" here (a stray letter in its RequiresMaxArgs); not copied.
    assert caught.value.line() + "\n" == real.stderr.replace("\nSRun '", "\nRun '")
    usage.check_args(LOGIN, ["a"])
    usage.check_args(LOGIN, [])


CONTEXT = Command("docker context", ("COMMAND",), "Manage contexts", (), commands=(
    ("create", "Create a context"),
    ("export", "Export a context to a tar archive FILE or a tar stream on STDOUT."),
    ("import", "Import a context from a tar or zip file"),
    ("inspect", "Display detailed information on one or more contexts"),
    ("ls", "List contexts"), ("rm", "Remove one or more contexts"),
    ("show", "Print the name of the current context"), ("update", "Update a context"),
    ("use", "Set the current docker context")))


@needs_docker
def test_a_command_of_commands_as_the_docker_cli_lists_them() -> None:
    assert usage.help_text(CONTEXT) == docker("context", "--help").stdout
    # cobra pads the names to 11 columns at least, and to the longest name past that
    longer = dataclasses.replace(CONTEXT, commands=(("a-name-of-fifteen", "x"), ("ls", "y")))
    assert "  a-name-of-fifteen x\n  ls                y\n" in usage.help_text(longer)


@needs_docker
def test_a_typed_flags_default_as_the_docker_cli_shows_it() -> None:
    # docker ps: "-n, --last int ... (includes all\n states) (default -1)": unquoted, as an int
    assert "states) (default -1)" in docker("ps", "--help").stdout
    last = Flag("last", "Show n last created containers (includes all states)", short="n", kind="int",
                default="-1")
    assert usage.flag_usages((last,), 200) == (
        "  -n, --last int   Show n last created containers (includes all states) (default -1)")


def test_examples_follow_the_description_as_cobra_prints_them() -> None:
    command = dataclasses.replace(VERSION, examples="  docker version\n  docker version -f json\n\n")
    text = usage.help_text(command)
    assert "\n\nExamples:\n  docker version\n  docker version -f json\n\nOptions:\n" in text
