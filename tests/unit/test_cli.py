"""argv handling: durations, the docker CLI's global flags, metadata, bad input."""

from __future__ import annotations

import json

import pytest

from plugin import cli
from plugin.errors import UsageError


@pytest.mark.parametrize("text, seconds", [
    ("500ms", 0.5), ("30s", 30), ("2m", 120), ("1h", 3600), ("1m30s", 90), ("1.5s", 1.5),
    ("10", 10), (" 5s ", 5), ("24h", 86400), ("100ms", 0.1),
])
def test_durations(text: str, seconds: float) -> None:
    assert cli.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text, why", [
    ("30x", "use e.g."), ("-1s", "use e.g."), ("0s", "from 100ms"), ("", "use e.g."), ("s", "use e.g."),
    ("1d", "use e.g."), ("25h", "from 100ms"), ("99ms", "from 100ms"), ("1e3s", "use e.g."),
    ("10s;rm -rf /", "use e.g."), ("nan", "use e.g."), ("inf", "use e.g."),
])
def test_bad_durations(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=f"^{why}"):
        cli.parse_duration(text)


def test_positive_whole_numbers() -> None:
    from plugin.options import positive

    assert [positive(t) for t in ("1", "2", "64")] == [1, 2, 64]
    for bad in ("0", "-1", "1.5", "", "\u0661", "two"):  # \u0661: an Arabic-Indic 1, isdigit() but not ASCII
        with pytest.raises(ValueError, match="^not a positive whole number$"):
            positive(bad)


def test_one_of_names_the_choices() -> None:
    from plugin.options import one_of

    check = one_of("auto", "bpf", "perf")
    assert [check(c) for c in ("auto", "bpf", "perf")] == ["auto", "bpf", "perf"]
    with pytest.raises(ValueError, match="^use auto, bpf or perf$"):
        check("ebpf")
    with pytest.raises(ValueError, match="^use a or b$"):
        one_of("a", "b")("c")


def test_global_flags_before_the_plugin_name() -> None:
    flags, rest = cli.split_global(["--context", "prod", "-H=tcp://h:2375", "-D", "--tls",
                                    "-l", "info", "spy", "web", "-d", "2s"])
    assert flags == {"context": "prod", "hosts": ["tcp://h:2375"], "debug": True, "tls": True,
                     "log_level": "info"}
    assert rest == ["web", "-d", "2s"]


def test_standalone_invocation_has_no_plugin_name() -> None:
    flags, rest = cli.split_global(["web", "--duration", "1s"])
    assert flags == {"hosts": []} and rest == ["web", "--duration", "1s"]


def test_global_flag_without_value() -> None:
    with pytest.raises(UsageError, match="needs an argument"):
        cli.split_global(["--context"])


def test_metadata_prints_the_protocol(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["docker-cli-plugin-metadata"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["SchemaVersion"] == "0.1.0" and meta["Version"] == cli.__version__


@pytest.mark.parametrize("argv, words", [
    (["spy", "web", "-f", "nolabel"], "bad filter 'nolabel'"),
    (["spy", "web", "-f", "=x"], "bad filter"),
    (["spy", "web", "-i", "5s", "-d", "1s"], "--interval is longer than --duration"),
    (["spy", "web", "-i", "1s", "--format", "csv"], "not CSV"),
    (["spy", "web", "ok", "bad;name"], "not a container name"),
    (["spy", "bad name!", "-d", "1s"], "not a container name"),
    (["spy", "web", "--latency", "--engine", "perf"], "--latency needs the BPF engine"),
    (["spy", "web", "--service", "api"], "name no container"),
])
def test_usage_errors_are_one_line(argv: list[str], words: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 125
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("docker spy: ") and words in err[0]


def _cli_layout(err: str, path: str = "docker spy") -> str:
    """The docker CLI's layout of a wrong command line: its first line, which is returned."""
    first, blank, *usage, blank2, run = err.rstrip("\n").split("\n")
    assert (blank, blank2) == ("", "")
    assert usage[0].startswith(f"Usage:  {path} ") and all(u.startswith(f"\t{path} ") for u in usage[1:])
    # the docker CLI says See after "requires at least", Run after everything else
    verb = "See" if "requires at least 1 argument" in first else "Run"
    assert run == f"{verb} '{path} --help' for more information"
    return first


@pytest.mark.parametrize("argv, first", [
    (["spy", "web", "--format", "xml"], 'invalid argument "xml" for "--format" flag: use table, json or csv'),
    (["spy", "web", "--top", "-3"], 'invalid argument "-3" for "--top" flag: not a positive whole number'),
    (["spy", "web", "--top=0"], 'invalid argument "0" for "--top" flag: not a positive whole number'),
    (["spy", "web", "--bogus"], "unknown flag: --bogus"),
    (["spy", "web", "--dur", "5s"], "unknown flag: --dur"),  # no abbreviations, as pflag
    (["spy", "web", "-x"], "unknown shorthand flag: 'x' in -x"),
    (["spy", "web", "-d"], "flag needs an argument: 'd' in -d"),
    (["spy", "web", "--format"], "flag needs an argument: --format"),
    (["spy", "web", "-i", "0s"], 'invalid argument "0s" for "-i, --interval" flag: from 100ms to 24h'),
    (["spy", "web", "-d", "1y"],
     'invalid argument "1y" for "-d, --duration" flag: use e.g. 500ms, 30s, 2m or 1h'),
    (["spy", "web", "--all=maybe"], 'invalid argument "maybe" for "-a, --all" flag: use true or false'),
    (["spy", "version", "--format", "yaml"],
     'invalid argument "yaml" for "-f, --format" flag: use pretty or json'),
])
def test_a_wrong_flag_is_told_as_the_docker_cli_tells_it(argv: list[str], first: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 125
    captured = capsys.readouterr()
    path = "docker spy version" if "version" in argv else "docker spy"
    assert _cli_layout(captured.err, path) == first and captured.out == ""


@pytest.mark.parametrize("argv, first", [
    (["spy"], "docker: 'docker spy' requires at least 1 argument"),
    (["spy", "-d", "1s"], "docker: 'docker spy' requires at least 1 argument"),
    (["spy", "diff", "a.json"], "docker: 'docker spy diff' requires 2 arguments"),
    (["spy", "diff", "a", "b", "c"], "docker: 'docker spy diff' requires 2 arguments"),
    (["spy", "version", "now"], "docker: 'docker spy version' accepts no arguments"),
])
def test_missing_or_extra_arguments_exit_1_in_the_cli_layout(argv: list[str], first: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 1
    captured = capsys.readouterr()
    path = " ".join(["docker"] + [a for a in argv if a in ("spy", "diff", "version")])
    assert _cli_layout(captured.err, path) == first and captured.out == ""


@pytest.mark.parametrize("argv", [["spy", "--help"], ["spy", "-h"], ["spy", "web", "--help"],
                                  ["spy", "help"], ["spy", "web", "-d", "bad", "--help"]])
def test_help_anywhere_prints_the_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage:  docker spy [OPTIONS] CONTAINER [CONTAINER...]\n")
    assert "\nOptions:\n" in out and "\nCommands:\n" in out


@pytest.mark.parametrize("name", ["diff", "version", "build-helper", "install", "uninstall"])
def test_each_command_has_its_own_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["spy", name, "--help"], ["spy", "help", name]):
        assert cli.main(argv) == 0
        assert capsys.readouterr().out.startswith(f"Usage:  docker spy {name} [OPTIONS]")


def test_the_help_fits_80_columns(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["spy", "--help"], *(["spy", name, "--help"] for name in cli.SUBCOMMANDS)):
        cli.main(argv)
        lines = capsys.readouterr().out.splitlines()
        assert max(len(line.expandtabs()) for line in lines) < 80, argv


def test_version_needs_no_engine_and_no_heavy_import(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["spy", "version", "--short"]) == 0
    assert capsys.readouterr().out == f"{cli.__version__}\n"
    assert cli.main(["spy", "-v"]) == 0
    assert capsys.readouterr().out == f"docker spy version {cli.__version__}\n"
