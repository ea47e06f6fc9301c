"""Which engine: the docker CLI's precedence, against temporary config directories."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from plugin import daemon
from plugin.errors import UsageError


def make_context(config: Path, name: str, host: str, tls: bool = False) -> None:
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps(
        {"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}}}))
    if tls:
        tls_dir = config / "contexts" / "tls" / digest / "docker"
        tls_dir.mkdir(parents=True)
        for f in ("ca.pem", "cert.pem", "key.pem"):
            (tls_dir / f).write_text("x")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    make_context(tmp_path, "remote", "tcp://10.0.0.9:2376", tls=True)
    make_context(tmp_path, "other", "unix:///run/other.sock")
    return tmp_path


def resolve(config_dir: Path, env: dict[str, str] | None = None, **opts) -> daemon.Endpoint:
    environ = {"DOCKER_CONFIG": str(config_dir), **(env or {})}
    return daemon.resolve(daemon.GlobalOptions(**opts), environ)


def test_default_is_the_local_engine(config: Path) -> None:
    assert resolve(config) == daemon.Endpoint("default", None)


def test_config_current_context(config: Path) -> None:
    (config / "config.json").write_text(json.dumps({"currentContext": "other"}))
    assert resolve(config).host == "unix:///run/other.sock"


def test_docker_context_env_beats_config(config: Path) -> None:
    (config / "config.json").write_text(json.dumps({"currentContext": "other"}))
    ep = resolve(config, {"DOCKER_CONTEXT": "remote"})
    assert ep.context == "remote" and ep.host == "tcp://10.0.0.9:2376"
    assert ep.tls_dir is not None and (ep.tls_dir / "ca.pem").exists()


def test_docker_host_beats_docker_context(config: Path) -> None:
    ep = resolve(config, {"DOCKER_CONTEXT": "remote", "DOCKER_HOST": "tcp://h:1"})
    assert ep == daemon.Endpoint("default", "tcp://h:1")


def test_host_flag_beats_environment(config: Path) -> None:
    ep = resolve(config, {"DOCKER_HOST": "tcp://h:1"}, hosts=("unix:///x.sock",))
    assert ep.host == "unix:///x.sock"


def test_context_flag_beats_everything(config: Path) -> None:
    ep = resolve(config, {"DOCKER_HOST": "tcp://h:1", "DOCKER_CONTEXT": "remote"}, context="other")
    assert ep.host == "unix:///run/other.sock"


def test_context_and_host_conflict(config: Path) -> None:
    with pytest.raises(UsageError, match="conflicting options"):
        resolve(config, context="other", hosts=("tcp://h:1",))


def test_unknown_context_is_an_error_naming_it(config: Path) -> None:
    with pytest.raises(UsageError, match='context "nope" does not exist'):
        resolve(config, context="nope")


def test_config_flag_beats_docker_config(config: Path, tmp_path_factory) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    make_context(elsewhere, "only-here", "tcp://e:1")
    assert resolve(config, config=str(elsewhere), context="only-here").host == "tcp://e:1"


def test_explicit_default_context(config: Path) -> None:
    (config / "config.json").write_text(json.dumps({"currentContext": "other"}))
    assert resolve(config, context="default").host is None


def test_an_ssh_engine_that_cannot_be_reached_says_what_ssh_said(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugin's own ssh transport (plugin/sshdial.py), with the host's real ssh (and no
    ssh config of the user's): port 1 of the loopback refuses at once."""
    import shutil

    from plugin import sshdial
    from plugin.errors import DaemonError

    if shutil.which("ssh") is None:
        pytest.skip("no ssh client here")
    monkeypatch.setattr(sshdial, "SSH_FLAGS", ("-F", "/dev/null", *sshdial.SSH_FLAGS))
    make_context(tmp_path, "far", "ssh://nobody@127.0.0.1:1")
    with pytest.raises(DaemonError) as e:
        daemon.connect(daemon.GlobalOptions(context="far"), {"DOCKER_CONFIG": str(tmp_path)})
    line = e.value.line()
    assert line == ("docker spy: cannot reach the Docker engine at ssh://nobody@127.0.0.1:1 "
                    "(far context): ssh said: ssh: connect to host 127.0.0.1 port 1: "
                    "Connection refused (ssh must reach the host without asking, and run "
                    "`docker` there)"), line


def test_an_ssh_url_the_cli_refuses_is_a_usage_error(tmp_path: Path) -> None:
    make_context(tmp_path, "far", "ssh://me:pw@vm")
    with pytest.raises(UsageError, match="plain-text password is not supported"):
        daemon.connect(daemon.GlobalOptions(context="far"), {"DOCKER_CONFIG": str(tmp_path)})
