"""argv handling: durations, the docker CLI's global flags, metadata, bad input."""

from __future__ import annotations

import json

import pytest

from plugin import cli
from plugin.errors import UsageError


@pytest.mark.parametrize("text, seconds", [
    ("500ms", 0.5), ("30s", 30), ("2m", 120), ("1h", 3600), ("1m30s", 90), ("1.5s", 1.5),
    ("10", 10), (" 5s ", 5), ("24h", 86400),
])
def test_durations(text: str, seconds: float) -> None:
    assert cli.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["30x", "-1s", "0s", "", "s", "1d", "25h", "99ms", "1e3s",
                                  "10s;rm -rf /", "nan", "inf"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UsageError):
        cli.parse_duration(text)


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
    (["spy", "web", "--format", "xml"], "invalid choice"),
    (["spy", "web", "--top", "-3"], "not a positive"),
    (["spy", "web", "--bogus"], "unrecognized arguments"),
    (["spy", "-d", "1s"], "name a container, or pick some with --filter"),
    (["spy", "web", "-f", "nolabel"], "bad filter 'nolabel'"),
    (["spy", "web", "-f", "=x"], "bad filter"),
    (["spy", "web", "-i", "5s", "-d", "1s"], "--interval is longer than --duration"),
    (["spy", "web", "-i", "1s", "--format", "csv"], "not CSV"),
    (["spy", "web", "-i", "0s"], "out of range"),
    (["spy", "web", "ok", "bad;name"], "not a container name"),
    (["spy", "bad name!", "-d", "1s"], "not a container name"),
    (["spy", "web", "-d", "1y"], "invalid duration"),
])
def test_usage_errors_are_one_line(argv: list[str], words: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("docker spy: ") and words in err[0]


def test_no_arguments_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["spy"]) == 2
    assert "usage: docker spy" in capsys.readouterr().out
