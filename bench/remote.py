"""The remote section: a 2 s window's time to result on an engine in a VM, reached as its users
reach it, beside this machine's local socket.

The VM is docker spy's test guest (tests/vm/up: Debian trixie, Docker 26 under systemd, emulated
here). Its engine is reached two ways: the ssh context (`ssh://root@127.0.0.1:PORT`: each of the
plugin's connections is an ssh running `docker system dial-stdio`, as the docker CLI's are),
and a unix socket forwarded over one ssh (`ssh -L`), as Lima and colima give their users. The
same quiet target (a shell that sleeps 0.1 s in a loop) is spied through each, and on this
machine's own engine through its local socket. Figures: time to result and to counting start,
and how many ssh connections the plugin made (its --debug log).
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import time
from pathlib import Path

from common import BASE, REPO, BenchError, Run, Watched, log, sh, table

TARGET_CMD = "while :; do sleep 0.1; done"


def guest_context() -> tuple[str, str]:
    """Bring the x86_64 test guest up; its context and ssh port."""
    proc = subprocess.run([str(REPO / "tests" / "vm" / "up"), "x86_64"], capture_output=True, text=True,
                          timeout=1800)
    if proc.returncode:
        raise BenchError(f"tests/vm/up failed: {proc.stderr.strip()[-500:]}")
    context = proc.stdout.splitlines()[-1]
    host = sh("docker", "context", "inspect", "-f", "{{.Endpoints.docker.Host}}", context)
    return context, host.rsplit(":", 1)[1]


def one_window(flags: list[str], target: str) -> dict[str, float]:
    started = time.monotonic()
    spy = Watched(["docker", *flags, "spy", target, "-d", "2s", "--format", "json", "-D"], stdout=True)
    counting, _ = spy.wait_for(r"\] counting\s", timeout=300)
    out = spy.finish(timeout=300)
    if spy.proc.returncode:
        raise BenchError(f"docker {' '.join(flags)} spy failed: {spy.stderr()[-400:]}")
    json.loads(out)
    ended = time.monotonic()
    return {"time to result, s": ended - started, "time to counting start, s": counting - started,
            "ssh connections": len(re.findall(r"ssh connection", spy.stderr()))}


def forward_socket(port: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """One ssh forwarding a local unix socket to the guest engine's socket (as Lima does)."""
    sock = workdir / "guest-docker.sock"
    proc = subprocess.Popen(["ssh", "-nNT", "-o", "ExitOnForwardFailure=yes", "-p", port,
                             "-L", f"{sock}:/var/run/docker.sock", "root@127.0.0.1"])
    deadline = time.monotonic() + 60
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise BenchError("ssh -L to the guest's engine socket did not come up")
        time.sleep(0.2)
    return proc, f"unix://{sock}"


def measure(run: Run, reps: int) -> dict[str, dict[str, list[float]]]:
    context, port = guest_context()
    log(f"remote: guest context {context}; the helper image there (built by the plugin if missing)")
    sh("docker", "--context", context, "spy", "build-helper", timeout=1800)
    name = f"spy-bench-remote-{run.id}"
    values: dict[str, dict[str, list[float]]] = {}
    forwarder = None
    try:
        for flags in (["--context", context], []):
            sh("docker", *flags, "run", "-d", "--name", name, *run.label(), BASE, "sh", "-c", TARGET_CMD)
        forwarder, forwarded = forward_socket(port, run.workdir)
        ways = {"this machine, local socket": [],
                "the VM, ssh context": ["--context", context],
                "the VM, socket forwarded over ssh": ["-H", forwarded]}
        for rep in range(reps):
            for way, flags in ways.items():
                log(f"remote: rep {rep + 1}/{reps}, {way}")
                for key, value in one_window(flags, name).items():
                    values.setdefault(way, {}).setdefault(key, []).append(value)
    finally:
        if forwarder is not None:
            forwarder.terminate()
        for flags in (["--context", context], []):
            sh("docker", *flags, "rm", "-f", name, check=False)
    return values


def section(values: dict[str, dict[str, list[float]]], reps: int) -> list[str]:
    if not values:
        return []
    rows = [("engine, reached through", "result, s", "counting at, s", "ssh connections")]
    for way, figures in values.items():
        rows.append((way, *(f"{statistics.median(figures[k]):.2f}" if k.endswith(", s")
                            else f"{statistics.median(figures[k]):.0f}"
                            for k in ("time to result, s", "time to counting start, s", "ssh connections"))))
    return [f"remote: a 2 s window over a quiet target, medians of {reps}; the VM is tests/vm/up's "
            "x86_64 guest, emulated (TCG) on this machine", table(rows)]
