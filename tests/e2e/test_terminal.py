"""The live view in a real terminal (tmux): frames drawn over each other as docker stats draws
them, nothing piled up in the scrollback, and the final table in the last frame's place."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import Target, wait_no_helpers

TITLE = "syscalls in"  # every frame's and the report's first line: "web (id): N syscalls in ..."


class Tmux:
    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def __call__(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", str(self.socket), *args], capture_output=True,
                              text=True, check=True, timeout=30).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "spy")

    def history(self) -> str:
        """The scrollback alone: the lines that went up and off the screen."""
        size = int(self("display-message", "-p", "-t", "spy", "#{history_size}").strip())
        return self("capture-pane", "-p", "-t", "spy", "-S", f"-{size}", "-E", "-1") if size else ""


@pytest.fixture
def tmux(tmp_path: Path) -> Tmux:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is missing (.ci/provision installs it)")
    t = Tmux(tmp_path / "tmux.sock")
    yield t
    subprocess.run(["tmux", "-S", str(t.socket), "kill-server"], capture_output=True, timeout=30)


def wait_for(tmux: Tmux, what: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        screen = tmux.screen()
        if what in screen:
            return screen
        time.sleep(0.2)
    raise AssertionError(f"{what!r} not on the screen in {timeout} s:\n{tmux.screen()}")


def test_the_live_view_redraws_in_place(docker_env: dict[str, str], helper_image: str,
                                        target: Target, tmux: Tmux, tmp_path: Path) -> None:
    script = tmp_path / "spy.sh"
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in docker_env.items()
                      if k.startswith("DOCKER") or k in ("PATH", "HOME"))
    script.write_text(f"{exports}export TERM=xterm-256color\n"
                      f"docker spy {target.name} -d 6s -i 1s --engine bpf\n"
                      "echo SPY-EXIT $?\nsleep 600\n")
    tmux("new-session", "-d", "-s", "spy", "-x", "120", "-y", "40", f"bash {script}")
    wait_for(tmux, TITLE, 90)  # the first frame: counting
    target.trigger(4321)
    screen = wait_for(tmux, "SPY-EXIT", 90)
    assert "SPY-EXIT 0" in screen, screen
    history = tmux.history()
    # Six frames and a report were drawn; at most one frame may have gone up into the
    # scrollback, and the screen holds the report alone.
    assert history.count(TITLE) <= 1, history
    assert screen.count(TITLE) == 1, screen
    lines = screen.splitlines()
    head = next(i for i, line in enumerate(lines) if TITLE in line)
    assert "6.0" in lines[head] and "PARTIAL" not in lines[head], lines[head]  # the whole window
    assert lines[head + 2].split() == ["SYSCALL", "CALLS", "ERRORS", "ERRNO", "CALLS/S", "SHARE"]
    rows = {line.split()[0]: line.split() for line in lines[head + 4:] if line.strip()}
    assert rows["getppid"][1] == "4,321" and rows["fchdir"][1:3] == ["4,321", "4,321"]
    assert rows["fchdir"][3] == "EBADF"
    assert "total" in rows
    assert wait_no_helpers() == []
