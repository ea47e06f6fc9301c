"""An ssh:// engine, reached as the docker CLI reaches it: each connection is the host's own
`ssh` running `docker system dial-stdio` on the far side (docker/cli connhelper).

The SDK's ssh support needs paramiko, which docker spy does not install, and its shell-out
mode hands back a socket that cannot be waited on (select) nor be read without blocking: the
attach stream, which the launcher reads with deadlines and wakes for Ctrl-C, cannot use it.
Here ssh talks through one end of a socketpair, so every connection is a real socket.

The ssh process runs in a session of its own, as the CLI's does: the terminal's Ctrl-C goes
to the plugin alone, which then still needs the connection to stop the helper and read the
report. Closing the socket ends ssh (end of its input); what ssh said on stderr is kept for
the error of a connection that failed.
"""

from __future__ import annotations

import atexit
import os
import shlex
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from . import logs
from .errors import UsageError

if TYPE_CHECKING:
    import docker

# As the docker CLI's: fail a host that does not answer, never allocate a terminal.
SSH_FLAGS = ("-o", "ConnectTimeout=30", "-T")
REAP_SECONDS = 1.0  # at exit, an ssh whose input closed ends at once; one that does not is killed

log = logs.get_logger(__name__)


@dataclass(frozen=True)
class SSHSpec:
    user: str
    host: str
    port: str
    path: str  # the engine's socket on the far side; "" for the far side's default


def parse(url: str) -> SSHSpec:
    """ssh://[user@]host[:port][/socket/path], refused as the docker CLI refuses it."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is not a number
    except ValueError as e:
        raise UsageError(f"invalid ssh URL {url!r}: {e}") from None
    if parts.scheme != "ssh":
        raise UsageError(f"invalid ssh URL {url!r}: the scheme is not ssh")
    if parts.password is not None:  # said without the password
        shown = url.replace(f":{parts.password}@", ":***@")
        raise UsageError(f"invalid ssh URL {shown!r}: plain-text password is not supported",
                         "use a key or ssh-agent")
    if not parts.hostname:
        raise UsageError(f"invalid ssh URL {url!r}: hostname is empty")
    if parts.query:
        raise UsageError(f"invalid ssh URL {url!r}: query parameters are not allowed")
    if parts.fragment:
        raise UsageError(f"invalid ssh URL {url!r}: fragments are not allowed")
    path = unquote(parts.path)  # decoded, as Go's url.Parse gives it to the CLI
    path = path if path.strip("/") else ""
    return SSHSpec(parts.username or "", parts.hostname, "" if port is None else str(port), path)


REFUSED = "kex_exchange_identification"  # sshd closed the connection before it began
DEFAULT_HINT = "ssh must reach the host without asking, and run `docker` there"


def hint(said: str) -> str:
    """What to do, from what ssh said when it failed."""
    if REFUSED in said:
        # MaxStartups (too many connections authenticating at once), or OpenSSH 9.8+'s
        # PerSourcePenalties: connections from this address that closed while authenticating
        # (as the docker CLI's unused ones do) lock it out for a while.
        return ("the host's sshd refused the connection: too many at once (MaxStartups), or "
                "this address is penalized (PerSourcePenalties, OpenSSH 9.8+); try again in a "
                "minute, and ControlMaster in ~/.ssh/config makes one connection serve all")
    return DEFAULT_HINT


def ssh_argv(spec: SSHSpec) -> list[str]:
    """The ssh command line of one connection, as the docker CLI builds it."""
    remote = ["docker", "system", "dial-stdio"]
    if spec.path:
        remote = ["docker", f"--host=unix://{spec.path}", "system", "dial-stdio"]
    argv = ["ssh", *SSH_FLAGS]
    if spec.user:
        argv += ["-l", spec.user]
    if spec.port:
        argv += ["-p", spec.port]
    # ssh hands the far side one command line, which its shell splits again.
    return [*argv, "--", spec.host, " ".join(shlex.quote(word) for word in remote)]


@dataclass
class _Child:
    proc: subprocess.Popen[bytes]
    stderr: IO[bytes]  # a temporary file: ssh never blocks on it, however much it says


class _Dialer:
    """Starts ssh processes, remembers them to reap, and what the last failed one said."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.lock = threading.Lock()
        self.children: list[_Child] = []
        self.said: str = ""  # the last line a failed ssh wrote on stderr
        self.dialed = 0  # connections made

    def dial(self, timeout: float | None) -> socket.socket:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        stderr = tempfile.TemporaryFile()
        try:
            proc = subprocess.Popen(self.argv, stdin=theirs, stdout=theirs, stderr=stderr,
                                    start_new_session=True, close_fds=True)
        except OSError as e:
            ours.close()
            stderr.close()
            self.said = f"cannot run {self.argv[0]}: {e.strerror}"
            raise ConnectionError(self.said) from None
        finally:
            theirs.close()
        with self.lock:
            self.reap()
            self.children.append(_Child(proc, stderr))
            self.dialed += 1
        log.debug("ssh connection", n=self.dialed, pid=proc.pid)
        ours.settimeout(timeout)
        return ours

    def reap(self) -> None:
        """Collect the ssh processes that ended, keeping what a failed one said."""
        left = []
        for child in self.children:
            if child.proc.poll() is None:
                left.append(child)
                continue
            child.stderr.seek(0, os.SEEK_END)
            child.stderr.seek(max(0, child.stderr.tell() - 4096))
            lines = [line.strip() for line in child.stderr.read().decode(errors="replace").splitlines()]
            child.stderr.close()
            lines = [line for line in lines if line]
            if child.proc.returncode != 0 and lines:
                self.said = lines[-1][:300]
        self.children = left

    def failure(self) -> str:
        """What the last ssh that failed said, once those that end now are collected."""
        with self.lock:
            for child in self.children:
                try:
                    child.proc.wait(0.5)
                except subprocess.TimeoutExpired:
                    pass
            self.reap()
            return self.said

    def close_all(self) -> None:
        """At exit, once every connection is closed: an ssh whose input closed ends at once;
        those that do not within REAP_SECONDS in all are killed, as the docker CLI kills its
        own when it closes a connection."""
        deadline = time.monotonic() + REAP_SECONDS
        with self.lock:
            for child in self.children:
                try:
                    child.proc.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.proc.kill()
                    child.proc.wait()
            self.reap()


def client(url: str, timeout: float) -> tuple[docker.DockerClient, _Dialer]:
    """A client whose every connection is an ssh to `url`; not yet checked to answer.
    Its API version is still to be negotiated (negotiate())."""
    import docker
    import urllib3.connection
    import urllib3.connectionpool
    from docker.transport.basehttpadapter import BaseHTTPAdapter

    dialer = _Dialer(ssh_argv(parse(url)))

    class Connection(urllib3.connection.HTTPConnection):
        def connect(self) -> None:
            self.sock = dialer.dial(self.timeout if isinstance(self.timeout, (int, float)) else None)

    class Pool(urllib3.connectionpool.HTTPConnectionPool):
        ConnectionCls = Connection

    class Adapter(BaseHTTPAdapter):
        def __init__(self) -> None:
            super().__init__()
            self.pool = Pool("localhost", timeout=timeout, maxsize=10)

        def get_connection(self, url: Any, proxies: Any = None) -> Pool:
            return self.pool

        def request_url(self, request: Any, proxies: Any) -> str:
            return request.path_url  # no host to proxy: the path alone

        def close(self) -> None:
            self.pool.close()
            super().close()

    # A version is given, so that making the client talks to nothing; the unix form makes
    # the SDK read attach streams from the connection's own socket (ours).
    api = docker.APIClient(base_url="unix:///var/run/docker.sock",
                           version=docker.constants.DEFAULT_DOCKER_API_VERSION, timeout=timeout)
    adapter = Adapter()
    api.mount("http+docker://", adapter)
    api._custom_adapter = adapter  # what the SDK closes with the client
    result = docker.DockerClient.__new__(docker.DockerClient)
    result.api = api

    def at_exit() -> None:
        api.close()  # the pool's connections close: their ssh see the end of their input
        dialer.close_all()

    atexit.register(at_exit)
    return result, dialer


def negotiate(client: docker.DockerClient) -> None:
    """Use the engine's API version, as version="auto" does for the SDK's own transports."""
    client.api._version = client.api._retrieve_server_version()
