"""The targets: a getppid loop (bench/loop.c) in a container, and nginx loaded by wrk."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from common import BASE, REPO, BenchError, Run, log, pid_of, sh

NGINX_IMAGE = "docker-spy-bench-nginx"  # kept between runs: it is a fixture, not a figure
LOOP_S = 2.0
WRK_S = 3.0


def build_loop(workdir: Path) -> Path:
    out = workdir / "loop"
    sh("gcc", "-static", "-O2", "-o", str(out), str(REPO / "bench" / "loop.c"))
    return out


class Loop:
    """A container running bench/loop.c; trigger() returns its getppid calls/s."""

    def __init__(self, run: Run, name: str, binary: Path) -> None:
        self.name = f"bench-{run.id}-{name}"
        self.dir = run.workdir / name
        self.dir.mkdir()
        shutil.copy(binary, self.dir / "loop")
        sh("docker", "run", "-d", "--name", self.name, *run.label(), "-v", f"{self.dir}:/b", BASE, "/b/loop")

    def trigger(self, seconds: float = LOOP_S) -> float:
        rate = self.dir / "rate"
        rate.unlink(missing_ok=True)
        (self.dir / "go.tmp").write_text(str(seconds))
        (self.dir / "go.tmp").rename(self.dir / "go")  # whole, so the loop never reads half a number
        deadline = time.monotonic() + seconds + 30
        while not rate.exists():
            if time.monotonic() > deadline:
                raise BenchError(f"the loop in {self.name} did not report")
            time.sleep(0.02)
        return float(rate.read_text())


def build_nginx() -> None:
    if subprocess.run(["docker", "image", "inspect", NGINX_IMAGE], capture_output=True).returncode == 0:
        return
    log(f"building {NGINX_IMAGE} from {BASE} and Debian's nginx")
    dockerfile = (f"FROM {BASE}\nRUN apt-get update && apt-get install -y --no-install-recommends "
                  "nginx-light && rm -rf /var/lib/apt/lists/*\n"
                  "RUN sed -i 's|access_log .*|access_log off;|' /etc/nginx/nginx.conf\n"
                  "CMD [\"nginx\", \"-g\", \"daemon off;\"]\n")
    proc = subprocess.run(["docker", "build", "-q", "-t", NGINX_IMAGE, "-"], input=dockerfile, text=True,
                          capture_output=True)
    if proc.returncode:
        raise BenchError(f"building {NGINX_IMAGE} failed: {proc.stderr.strip()[-500:]}")


class Nginx:
    """nginx serving its default page, with no network but its loopback."""

    def __init__(self, run: Run) -> None:
        self.name = f"bench-{run.id}-nginx"
        sh("docker", "run", "-d", "--name", self.name, *run.label(), "--network", "none", NGINX_IMAGE)
        self.pid = pid_of(self.name)
        for _ in range(100):
            probe = subprocess.run(self._wrk("-d1s", "-c1"), capture_output=True, text=True)
            if "Requests/sec" in probe.stdout and "Socket errors" not in probe.stdout:
                return
            time.sleep(0.1)
        raise BenchError("nginx did not answer")

    def _wrk(self, *args: str) -> list[str]:
        # wrk from the host, run in nginx's network namespace against its loopback: no proxy and
        # no bridge in the path, and wrk itself stays outside the spied cgroup.
        return ["nsenter", "-t", str(self.pid), "-n", "wrk", "-t1", *args, "http://127.0.0.1:80/"]

    def requests_per_second(self) -> float:
        out = sh(*self._wrk("-c32", f"-d{WRK_S:g}s"))
        line = next(line for line in out.splitlines() if line.startswith("Requests/sec:"))
        return float(line.split()[1])
