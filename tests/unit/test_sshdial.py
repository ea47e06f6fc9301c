"""ssh:// engines: the URL as the docker CLI reads it, the ssh command line it runs, and the
connection itself against real child processes standing in for ssh (a relay that echoes,
one that fails as ssh fails)."""

from __future__ import annotations

import socket
import sys
import time

import pytest

from plugin import sshdial
from plugin.errors import UsageError


@pytest.mark.parametrize(("url", "spec"), [
    ("ssh://vm", sshdial.SSHSpec("", "vm", "", "")),
    ("ssh://root@127.0.0.1:60022", sshdial.SSHSpec("root", "127.0.0.1", "60022", "")),
    ("ssh://me@[::1]:22", sshdial.SSHSpec("me", "::1", "22", "")),
    ("ssh://me@host/", sshdial.SSHSpec("me", "host", "", "")),
    ("ssh://me@host//", sshdial.SSHSpec("me", "host", "", "")),
    ("ssh://me@host/X", sshdial.SSHSpec("me", "host", "", "/X")),
    ("ssh://me@host/run/user/1000/docker.sock",
     sshdial.SSHSpec("me", "host", "", "/run/user/1000/docker.sock")),
])
def test_urls_the_cli_takes(url: str, spec: sshdial.SSHSpec) -> None:
    assert sshdial.parse(url) == spec


@pytest.mark.parametrize(("url", "says"), [
    ("ssh://me:secret@host", "plain-text password is not supported"),
    ("ssh://host?socket=x", "query parameters are not allowed"),
    ("ssh://host#x", "fragments are not allowed"),
    ("ssh://", "hostname is empty"),
    ("ssh://me@:22", "hostname is empty"),
    ("ssh://host:port", "invalid ssh URL 'ssh://host:port'"),
    ("tcp://host:2375", "the scheme is not ssh"),
])
def test_urls_the_cli_refuses(url: str, says: str) -> None:
    with pytest.raises(UsageError) as e:
        sshdial.parse(url)
    assert says in e.value.line()
    assert "secret" not in e.value.line()  # a password is never repeated


def test_a_password_is_refused_with_what_to_use_instead() -> None:
    with pytest.raises(UsageError) as e:
        sshdial.parse("ssh://me:secret@host")
    assert e.value.line() == ("docker spy: invalid ssh URL 'ssh://me:***@host': plain-text password is "
                              "not supported (use a key or ssh-agent)")


def test_the_command_line_is_the_clis() -> None:
    assert sshdial.ssh_argv(sshdial.parse("ssh://root@127.0.0.1:60022")) == [
        "ssh", "-o", "ConnectTimeout=30", "-T", "-l", "root", "-p", "60022", "--", "127.0.0.1",
        "docker system dial-stdio"]
    assert sshdial.ssh_argv(sshdial.parse("ssh://vm")) == [
        "ssh", "-o", "ConnectTimeout=30", "-T", "--", "vm", "docker system dial-stdio"]


def test_a_socket_path_goes_to_the_far_sides_docker_quoted() -> None:
    argv = sshdial.ssh_argv(sshdial.parse("ssh://vm/run/my%20docker.sock"))
    assert argv[-1] == "docker '--host=unix:///run/my docker.sock' system dial-stdio"


def relay(script: str) -> sshdial._Dialer:
    """A dialer whose 'ssh' is a Python child running `script` on its stdin and stdout."""
    return sshdial._Dialer([sys.executable, "-c", script])


ECHO = "import os\nwhile (b := os.read(0, 65536)):\n    os.write(1, b)\n"


def test_a_connection_is_a_real_socket_to_the_child() -> None:
    dialer = relay(ECHO)
    sock = dialer.dial(timeout=10)
    try:
        assert isinstance(sock, socket.socket) and sock.fileno() >= 0
        sock.sendall(b"ping\n")
        assert sock.recv(100) == b"ping\n"
        assert len(dialer.children) == 1
    finally:
        sock.close()
    dialer.close_all()  # its input closed: the child ends, and is reaped
    assert dialer.children == [] and dialer.said == ""


def test_the_child_is_in_a_session_of_its_own() -> None:
    """A terminal's Ctrl-C reaches the plugin's process group, never ssh: the plugin still
    needs the connection to stop the helper and read the report."""
    import os

    dialer = relay("import os\nos.write(1, str(os.getsid(0)).encode() + b'\\n')\nos.read(0, 1)\n")
    sock = dialer.dial(timeout=10)
    try:
        sid = int(sock.recv(100))
        assert sid != os.getsid(0) and sid == dialer.children[0].proc.pid
    finally:
        sock.close()
        dialer.close_all()


def test_what_a_failed_ssh_said_is_kept() -> None:
    dialer = relay("import sys\nsys.stderr.write('Warning: x\\nroot@vm: Permission denied (publickey).\\n')\n"
                   "sys.exit(255)\n")
    sock = dialer.dial(timeout=10)
    assert sock.recv(100) == b""  # the far side is gone at once
    sock.close()
    assert dialer.failure() == "root@vm: Permission denied (publickey)."


def test_a_child_that_ends_well_leaves_no_failure() -> None:
    dialer = relay("import sys\nsys.stderr.write('goodbye\\n')\n")
    sock = dialer.dial(timeout=10)
    assert sock.recv(100) == b""
    sock.close()
    assert dialer.failure() == ""


def test_children_that_ended_are_reaped_at_the_next_dial() -> None:
    dialer = relay("pass")
    first = dialer.dial(timeout=10)
    first.recv(1)
    first.close()
    deadline = time.monotonic() + 10
    while dialer.children[0].proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    second = dialer.dial(timeout=10)
    assert len(dialer.children) == 1  # the first is gone from the list
    second.close()
    dialer.close_all()


def test_a_child_that_ignores_its_closed_input_is_killed_at_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sshdial, "REAP_SECONDS", 0.2)
    dialer = relay("import time\ntime.sleep(60)\n")
    sock = dialer.dial(timeout=10)
    proc = dialer.children[0].proc
    sock.close()
    started = time.monotonic()
    dialer.close_all()
    assert proc.returncode is not None and time.monotonic() - started < 5


def test_no_ssh_binary_is_a_connection_error_that_says_so() -> None:
    dialer = sshdial._Dialer(["/nonexistent/ssh"])
    with pytest.raises(ConnectionError, match="cannot run /nonexistent/ssh: No such file or directory"):
        dialer.dial(timeout=1)
    assert dialer.failure() == "cannot run /nonexistent/ssh: No such file or directory"


def test_an_ssh_that_says_much_on_stderr_never_stalls_the_connection() -> None:
    """ssh -vvv, or a chatty ProxyCommand: 200 KB on stderr, more than a pipe holds, while the
    connection is in use; the last line is kept if it then fails."""
    dialer = relay("import os, sys\nsys.stderr.write('debug3: x\\n' * 20000)\nsys.stderr.flush()\n"
                   "while (b := os.read(0, 65536)):\n    os.write(1, b)\n"
                   "sys.stderr.write('the end\\n')\nsys.exit(255)\n")
    sock = dialer.dial(timeout=10)
    sock.sendall(b"ping")
    assert sock.recv(100) == b"ping"
    sock.close()
    assert dialer.failure() == "the end"


def test_a_refusing_sshd_gets_its_own_hint() -> None:
    # What OpenSSH's client says when sshd drops it before the key exchange (MaxStartups, or
    # PerSourcePenalties: seen in a CI run against trixie's OpenSSH 10.0).
    said = "kex_exchange_identification: Connection closed by remote host"
    assert "PerSourcePenalties" in sshdial.hint(said) and "MaxStartups" in sshdial.hint(said)
    assert sshdial.hint("ssh: connect to host vm port 22: Connection refused") == sshdial.DEFAULT_HINT
    assert sshdial.hint("") == sshdial.DEFAULT_HINT
