"""Every fixture folder says where its files came from and how to record them again, with a
script beside them that does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FOLDERS = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
SCRIPT = re.compile(r"^(record[\w-]*\.(sh|py)|make\.py)$")


def test_the_folders() -> None:
    assert FOLDERS == ["cgroup", "diff", "helper", "perf", "seccomp", "syscalls"]


@pytest.mark.parametrize("folder", FOLDERS)
def test_a_readme_names_the_command_that_records_each_file(folder: str) -> None:
    here = FIXTURES / folder
    readme = (here / "README.md").read_text()
    scripts = [p.name for p in here.iterdir() if SCRIPT.match(p.name)]
    assert scripts, f"{folder} has no script that records it"
    commands = re.findall(rf"(?:bash|sh|python3) (tests/fixtures/{folder}/(\S+?))[` ]", readme)
    assert commands, f"{folder}/README.md gives no command to record it again"
    for path, name in commands:
        assert (here / name).is_file(), f"{folder}/README.md runs {path}, which is not there"
    for p in here.iterdir():
        if p.name == "README.md" or SCRIPT.match(p.name) or p.name.startswith("."):
            continue
        stem = p.name.removesuffix(".events")
        assert f"`{p.name}`" in readme or f"`{stem}`" in readme or (p.is_dir() and p.name in readme), \
            f"{folder}/README.md does not say what {p.name} is"
