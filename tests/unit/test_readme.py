"""The README stays true: its test command is CI's, its options are the parser's."""

from __future__ import annotations

import re
from pathlib import Path

from plugin import cli

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def test_ci_runs_the_readme_test_command() -> None:
    tests_section = README.split("## Tests", 1)[1]
    command = re.search(r"```sh\n(.+)\n```", tests_section).group(1)
    ci_commands = [line for line in (REPO / ".ci" / "run").read_text().splitlines()
                   if line and not line.startswith("#")]
    assert ci_commands[-1] == command


def test_quick_start_commands_exist() -> None:
    quick = README.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^(bash \S+)", quick, re.MULTILINE)
    assert commands == ["bash .ci/provision", "bash .ci/run"]
    for command in commands:
        assert (REPO / command.split()[1]).is_file()


def test_every_option_is_documented() -> None:
    parser = cli.spy_parser("docker spy")
    for action in parser._actions:
        for flag in action.option_strings:
            if flag in ("-h", "--help", "-v", "--version"):
                continue
            assert f"`{flag}" in README or f", {flag}" in README, flag
