"""What a command line asks for, as plain data: the options of a spy run, the words each
option takes, durations. Every other module may import this one; it imports only errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

MAX_SECONDS = 24 * 3600.0  # also the window of "until Ctrl-C"
MIN_SECONDS = 0.1
LOG_LEVELS = ("debug", "info", "warn", "warning", "error", "fatal")
FORMATS = ("table", "json", "csv")
SORTS = ("calls", "errors", "name", "rate")
ENGINES = ("auto", "bpf", "perf")
DIFF_SORTS = ("change", "name", "calls")


@dataclass(frozen=True)
class SpyOptions:
    containers: tuple[str, ...]
    filters: tuple[str, ...]  # `docker ps` filters, KEY=VALUE
    seconds: float | None  # None: until Ctrl-C
    interval: float | None  # a live view, one frame (or JSON line) per interval
    fmt: str
    top: int | None
    sort: str
    all: bool
    no_trunc: bool
    by_class: bool
    helper_image: str | None
    privileged: bool
    quiet: bool
    seccomp_profile: str | None = None  # write a seccomp profile here
    audit_profile: str | None = None  # a profile file, or "default"
    engine: str = "auto"  # auto, bpf or perf
    latency: bool = False  # also the time spent in each syscall (BPF)
    services: tuple[str, ...] = ()  # Swarm services: every running task, on its node
    fmt_given: bool = False  # --format was on the command line (a live view piped: tables)
    syscalls: tuple[str, ...] = ()  # --syscall: count only these (names); (): every syscall
    syscalls_named: tuple[str, ...] = ()  # those of them named one by one (not by class)
    by_process: bool = False  # also each target's processes apart (BPF)


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """`500ms`, `30s`, `2m`, `1h`, `1m30s` or plain seconds -> seconds; ValueError says what
    is accepted (the flag's error message)."""
    value = text.strip()
    if re.fullmatch(r"\d+(\.\d*)?", value):
        seconds = float(value)
    elif value and re.fullmatch(rf"(?:{_DURATION_PART.pattern})+", value):
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(value))
    else:
        raise ValueError("use e.g. 500ms, 30s, 2m or 1h")
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise ValueError("from 100ms to 24h")
    return seconds


def positive(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise ValueError("not a positive whole number")
    return int(text)


def one_of(*choices: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text not in choices:
            raise ValueError(f"use {', '.join(choices[:-1])} or {choices[-1]}")
        return text
    return check


