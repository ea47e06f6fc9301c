"""The docker-spy front (POSIX sh): the metadata without Python, the rest to Python; and the
front `docker-spy install` writes for a pip install."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from plugin import __version__, cli, commands
from plugin.errors import UsageError

REPO = Path(__file__).resolve().parents[2]
FRONT = REPO / "docker-spy"


def _python_metadata() -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["docker-cli-plugin-metadata"]) == 0
    return out.getvalue()


def _run(argv: list[str], cwd: Path | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=cwd,
                          env={**os.environ, "DOCKER_SPY_PYTHON": sys.executable, **(env or {})})


def test_the_metadata_is_this_version_and_description() -> None:
    meta = json.loads(_python_metadata())
    assert meta == {"SchemaVersion": "0.1.0", "Vendor": "docker spy", "Version": __version__,
                    "ShortDescription": cli.SHORT_DESCRIPTION, "URL": cli.URL}


def test_the_front_prints_the_same_metadata_without_python() -> None:
    # Python is not on this PATH and DOCKER_SPY_PYTHON names nothing: the answer cannot be its.
    proc = _run(["/bin/sh", str(FRONT), "docker-cli-plugin-metadata"],
                env={"PATH": "/nonexistent", "DOCKER_SPY_PYTHON": "/nonexistent/python3"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == _python_metadata()


def test_through_links_as_the_docker_cli_finds_it(tmp_path: Path) -> None:
    # cli-plugins/docker-spy -> a relative link -> the checkout's front
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "docker-spy").symlink_to(FRONT)
    (tmp_path / "cli-plugins").mkdir()
    (tmp_path / "cli-plugins" / "docker-spy").symlink_to(Path("..") / "bin" / "docker-spy")
    plugin = tmp_path / "cli-plugins" / "docker-spy"
    assert _run([str(plugin), "docker-cli-plugin-metadata"]).stdout == _python_metadata()
    proc = _run([str(plugin), "version", "--short"])
    assert (proc.returncode, proc.stdout) == (0, f"{__version__}\n"), proc.stderr


def test_python_runs_the_checkout_whatever_the_working_folder_holds(tmp_path: Path) -> None:
    # A folder with its own plugin/ and cli.py: neither may pass for docker spy's.
    (tmp_path / "plugin").mkdir()
    (tmp_path / "plugin" / "__init__.py").write_text("raise SystemExit('wrong plugin')\n")
    (tmp_path / "cli.py").write_text("raise SystemExit('wrong cli')\n")
    proc = _run([str(FRONT), "version"], cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (0, f"docker spy version {__version__}\n"), proc.stderr


def test_arguments_reach_python_as_given() -> None:
    proc = _run([str(FRONT), "version", "--format", "json"])
    assert json.loads(proc.stdout) == {"version": __version__}
    proc = _run([str(FRONT), "diff", "a b.json", "-"])
    assert proc.returncode != 0 and "a b.json" in proc.stderr


def _console_script(tmp_path: Path) -> Path:
    """A stand-in for pip's console script: says what it was given."""
    script = tmp_path / "venv" / "bin" / "docker-spy"
    script.parent.mkdir(parents=True)
    script.write_text('#!/usr/bin/env python3\nimport sys\nprint("args", sys.argv[1:])\n')
    script.chmod(0o755)
    return script


def test_a_pip_install_gets_a_front_that_answers_metadata_and_runs_the_script(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = _console_script(tmp_path)
    link = tmp_path / "config" / "cli-plugins" / "docker-spy"
    assert commands.install(link, script) == 0
    assert "installed" in capsys.readouterr().out
    assert not link.is_symlink() and os.access(link, os.X_OK)
    assert _run([str(link), "docker-cli-plugin-metadata"]).stdout == _python_metadata()
    assert _run([str(link), "web", "-d", "it's 2s"]).stdout == "args ['web', '-d', \"it's 2s\"]\n"
    assert commands.install(link, script) == 0  # again: nothing to do
    assert "already installed" in capsys.readouterr().out
    assert commands.uninstall(link) == 0
    assert not link.exists()


def test_a_pip_install_replaces_a_checkout_link(tmp_path: Path) -> None:
    link = tmp_path / "cli-plugins" / "docker-spy"
    assert commands.install(link, FRONT) == 0
    assert link.is_symlink() and link.resolve() == FRONT.resolve()
    assert commands.install(link, _console_script(tmp_path)) == 0
    assert not link.is_symlink() and commands.FRONT_MARK in link.read_text()
    assert commands.install(link, FRONT) == 0  # and back
    assert link.is_symlink()


def test_a_plugin_docker_spy_did_not_make_is_left_alone(tmp_path: Path) -> None:
    link = tmp_path / "cli-plugins" / "docker-spy"
    link.parent.mkdir()
    link.write_text("#!/bin/sh\necho someone else's\n")
    with pytest.raises(UsageError, match="did not make it"):
        commands.install(link, _console_script(tmp_path))
    with pytest.raises(UsageError, match="not a plugin docker spy installed"):
        commands.uninstall(link)
    assert link.read_text() == "#!/bin/sh\necho someone else's\n"
