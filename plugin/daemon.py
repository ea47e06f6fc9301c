"""Which Docker daemon: the one the docker CLI itself would use.

Precedence, as the CLI's: --context, -H/--host, DOCKER_HOST, DOCKER_CONTEXT, the config's
currentContext (`--config` / DOCKER_CONFIG, default ~/.docker), the default socket.
SDK errors about reaching the engine become DaemonErrors here.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import DaemonError, UsageError

if TYPE_CHECKING:
    import docker

DEFAULT_CONTEXT = "default"


@dataclass(frozen=True)
class Endpoint:
    context: str
    host: str | None  # None: the SDK's default (DOCKER_HOST or the local socket)
    tls_dir: Path | None = None
    skip_tls_verify: bool = False


@dataclass(frozen=True)
class GlobalOptions:
    """The docker CLI's global flags, which the CLI hands to its plugins."""

    context: str | None = None
    hosts: tuple[str, ...] = ()
    config: str | None = None
    tls: bool = False
    tlsverify: bool = False
    tlscacert: str | None = None
    tlscert: str | None = None
    tlskey: str | None = None


def config_dir(opts: GlobalOptions, environ: dict[str, str]) -> Path:
    if opts.config:
        return Path(opts.config).expanduser()
    if environ.get("DOCKER_CONFIG"):
        return Path(environ["DOCKER_CONFIG"]).expanduser()
    return Path.home() / ".docker"


def context_name(opts: GlobalOptions, environ: dict[str, str]) -> str:
    if opts.context and opts.hosts:
        raise UsageError(
            'conflicting options: either specify --host or --context, not both'
        )
    if opts.context:
        return opts.context
    if opts.hosts or environ.get("DOCKER_HOST"):
        return DEFAULT_CONTEXT
    if environ.get("DOCKER_CONTEXT"):
        return environ["DOCKER_CONTEXT"]
    try:
        cfg = json.loads((config_dir(opts, environ) / "config.json").read_text())
    except FileNotFoundError:
        return DEFAULT_CONTEXT
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read the docker config file: {e}") from None
    name = cfg.get("currentContext") if isinstance(cfg, dict) else None
    return name if isinstance(name, str) and name else DEFAULT_CONTEXT


def resolve(opts: GlobalOptions, environ: dict[str, str] | None = None) -> Endpoint:
    """The endpoint to talk to, without talking to it."""
    environ = dict(os.environ) if environ is None else environ
    name = context_name(opts, environ)
    if name == DEFAULT_CONTEXT:
        if len(opts.hosts) > 1:
            raise UsageError("docker spy talks to one engine: give -H once")
        host = opts.hosts[0] if opts.hosts else environ.get("DOCKER_HOST") or None
        return Endpoint(DEFAULT_CONTEXT, host)
    digest = hashlib.sha256(name.encode()).hexdigest()
    root = config_dir(opts, environ) / "contexts"
    try:
        meta = json.loads((root / "meta" / digest / "meta.json").read_text())
        docker_ep = meta["Endpoints"]["docker"]
    except FileNotFoundError:
        raise UsageError(
            f'context "{name}" does not exist', "docker context ls lists them"
        ) from None
    except (OSError, ValueError, KeyError, TypeError):
        raise UsageError(f'context "{name}" is unreadable or has no docker endpoint') from None
    tls_dir = root / "tls" / digest / "docker"
    return Endpoint(
        name,
        docker_ep.get("Host") or None,
        tls_dir if tls_dir.is_dir() else None,
        bool(docker_ep.get("SkipTLSVerify")),
    )


def _tls_config(opts: GlobalOptions, endpoint: Endpoint, environ: dict[str, str]):
    from docker.tls import TLSConfig

    if endpoint.tls_dir is not None:
        files = {n: endpoint.tls_dir / f"{n}.pem" for n in ("ca", "cert", "key")}
        cert = (str(files["cert"]), str(files["key"])) if files["cert"].exists() else None
        ca = str(files["ca"]) if files["ca"].exists() else None
        return TLSConfig(client_cert=cert, ca_cert=ca, verify=not endpoint.skip_tls_verify and ca)
    verify = opts.tlsverify or bool(environ.get("DOCKER_TLS_VERIFY"))
    if not (opts.tls or verify or opts.tlscacert or opts.tlscert):
        return None
    cert_dir = Path(environ.get("DOCKER_CERT_PATH") or config_dir(opts, environ))
    ca = opts.tlscacert or str(cert_dir / "ca.pem")
    cert = (opts.tlscert or str(cert_dir / "cert.pem"), opts.tlskey or str(cert_dir / "key.pem"))
    have_cert = all(Path(p).exists() for p in cert)
    return TLSConfig(client_cert=cert if have_cert else None, ca_cert=ca if verify else None,
                     verify=ca if verify else False)


def connect(opts: GlobalOptions, environ: dict[str, str] | None = None) -> docker.DockerClient:
    """A client for the engine the docker CLI would use, checked to answer."""
    import docker
    import docker.errors

    environ = dict(os.environ) if environ is None else environ
    endpoint = resolve(opts, environ)
    where = endpoint.host or "the local engine"
    dialer = None
    try:
        if endpoint.host and endpoint.host.startswith("ssh://"):
            from . import sshdial

            client, dialer = sshdial.client(endpoint.host, timeout=60)
            sshdial.negotiate(client)
        else:
            tls = _tls_config(opts, endpoint, environ)
            client = docker.DockerClient(
                base_url=endpoint.host or docker.constants.DEFAULT_UNIX_SOCKET,
                tls=tls if tls is not None else False,
                version="auto",
                timeout=60,
            )
        client.ping()
    except docker.errors.TLSParameterError as e:
        raise UsageError(f"bad TLS settings: {e}") from None
    except (docker.errors.DockerException, OSError) as e:
        said = dialer.failure() if dialer is not None else ""
        if said:
            raise DaemonError(
                f"cannot reach the Docker engine at {where} ({endpoint.context} context): ssh said: {said}",
                sshdial.hint(said),
            ) from e
        raise DaemonError(
            f"cannot reach the Docker engine at {where} ({endpoint.context} context)",
            "is it running? `docker info` tells",
        ) from e
    return client


def kernel_release(client: docker.DockerClient) -> str:
    """The engine host's kernel release, as `docker version` gives it ("" if it does not)."""
    import docker.errors

    try:
        release = client.version().get("KernelVersion")
    except (docker.errors.DockerException, OSError) as e:
        raise DaemonError(f"the engine stopped answering: {e}") from None
    return release if isinstance(release, str) else ""
