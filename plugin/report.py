"""The data: frozen dataclasses and the versioned JSON contract between helper and plugin.

The helper's document is untrusted input: it is size-checked, parsed and validated field by
field before anything is built from it. A document that fails is a ContractError.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from .errors import ContractError, HelperError

SCHEMA = 1
MAX_DOCUMENT_BYTES = 1 << 20  # ~700 counters of a few dozen bytes each fit many times over
MAX_SYSCALLS = 2048
MAX_COUNT = (1 << 64) - 1
_SYSCALL_NAME = re.compile(r"^[a-z0-9_]{1,64}$")
_TEXT = re.compile(r"^[\x20-\x7e]{0,200}$")
STOP_REASONS = ("interrupted", "target-exited", "helper-stopped")


@dataclass(frozen=True)
class SyscallCount:
    name: str
    calls: int
    errors: int


@dataclass(frozen=True)
class Window:
    requested_seconds: float | None  # None: counted until Ctrl-C
    measured_seconds: float
    started_at: str


@dataclass(frozen=True)
class Host:
    kernel: str
    arch: str
    cpus: int
    cgroup_version: int
    cgroup_layout: str
    perf: str


@dataclass(frozen=True)
class TargetInfo:
    id: str
    name: str
    pid: int
    cgroup: str


@dataclass(frozen=True)
class Report:
    target: TargetInfo
    window: Window
    host: Host
    syscalls: tuple[SyscallCount, ...]  # sorted by calls, most first; zero rows included
    partial: bool
    stopped: str | None = None  # why the window ended early: one of STOP_REASONS

    @property
    def total_calls(self) -> int:
        return sum(s.calls for s in self.syscalls)

    @property
    def total_errors(self) -> int:
        return sum(s.errors for s in self.syscalls)


def _bad(what: str) -> ContractError:
    return ContractError(f"the helper's report is invalid: {what}",
                         "is --helper-image a docker spy helper of this version?")


def _get(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise _bad(f"{where}.{key} is missing")
    value = obj[key]
    # bool is an int in Python; a count or a pid must not be true/false.
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise _bad(f"{where}.{key} has the wrong type")
    if not isinstance(value, kind):
        raise _bad(f"{where}.{key} has the wrong type")
    return value


def _text(obj: Any, key: str, where: str) -> str:
    value = _get(obj, key, str, where)
    if not _TEXT.match(value):
        raise _bad(f"{where}.{key} is not short printable text")
    return value


def _count(obj: Any, key: str, where: str) -> int:
    value = _get(obj, key, int, where)
    if not 0 <= value <= MAX_COUNT:
        raise _bad(f"{where}.{key} is out of range")
    return value


def _seconds(obj: Any, key: str, where: str) -> float:
    value = float(_get(obj, key, (int, float), where))
    if not math.isfinite(value) or value < 0 or value > 400 * 86400:
        raise _bad(f"{where}.{key} is out of range")
    return value


def decode(raw: bytes) -> dict[str, Any]:
    """The helper's document as a dict; an error document becomes a HelperError."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise _bad(f"it is larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _bad("it is not JSON") from None
    if not isinstance(doc, dict):
        raise _bad("it is not a JSON object")
    if doc.get("schema") != SCHEMA:
        raise _bad(f"schema {doc.get('schema')!r}, this plugin reads schema {SCHEMA}")
    if "error" in doc:
        error = _get(doc, "error", dict, "report")
        code, message = _text(error, "code", "error"), _text(error, "message", "error")
        raise HelperError(f"the helper failed ({code}): {message}")
    return doc


def from_helper(raw: bytes, *, target_id: str, target_name: str, pid: int,
                requested_seconds: float) -> Report:
    """Validate the helper's document against what was asked of it and build the Report."""
    doc = decode(raw)
    target = _get(doc, "target", dict, "report")
    if _count(target, "pid", "target") != pid:
        raise _bad("it is about another process")
    window = _get(doc, "window", dict, "report")
    requested = _seconds(window, "requested_seconds", "window")
    measured = _seconds(window, "measured_seconds", "window")
    if not math.isclose(requested, requested_seconds, rel_tol=1e-6, abs_tol=1e-3):
        raise _bad("it is about another window")
    if measured > requested * 1.05 + 1.0:
        raise _bad("its window is longer than the one asked for")
    host = _get(doc, "host", dict, "report")
    rows = _get(doc, "syscalls", list, "report")
    if len(rows) > MAX_SYSCALLS:
        raise _bad("it lists too many syscalls")
    syscalls = []
    for i, row in enumerate(rows):
        name = _get(row, "name", str, f"syscalls[{i}]")
        if not _SYSCALL_NAME.match(name):
            raise _bad(f"syscalls[{i}].name is not a syscall name")
        syscalls.append(SyscallCount(name, _count(row, "calls", name), _count(row, "errors", name)))
    if len({s.name for s in syscalls}) != len(syscalls):
        raise _bad("it lists a syscall twice")
    syscalls.sort(key=lambda s: (-s.calls, -s.errors, s.name))
    return Report(
        target=TargetInfo(target_id, target_name, pid, _text(target, "cgroup", "target")),
        window=Window(requested, measured, _text(window, "started_at", "window")),
        host=Host(
            kernel=_text(host, "kernel", "host"),
            arch=_text(host, "arch", "host"),
            cpus=_count(host, "cpus", "host"),
            cgroup_version=_count(host, "cgroup_version", "host"),
            cgroup_layout=_text(host, "cgroup_layout", "host"),
            perf=_text(host, "perf", "host"),
        ),
        syscalls=tuple(syscalls),
        partial=_get(doc, "partial", bool, "report"),
        stopped=_stop_reason(doc),
    )


def _stop_reason(doc: dict[str, Any]) -> str | None:
    reason = doc.get("stopped")
    if reason is not None and reason not in STOP_REASONS:
        raise _bad("stopped is not a known reason")
    return reason


def to_document(report: Report, *, include_zero: bool = False) -> dict[str, Any]:
    """The report as `--format json` prints it."""
    seconds = report.window.measured_seconds
    rows = [s for s in report.syscalls if include_zero or s.calls or s.errors]
    return {
        "schema": SCHEMA,
        "partial": report.partial,
        "stopped": report.stopped,
        "target": {"id": report.target.id, "name": report.target.name,
                   "pid": report.target.pid, "cgroup": report.target.cgroup},
        "window": {"requested_seconds": report.window.requested_seconds,
                   "measured_seconds": seconds, "started_at": report.window.started_at},
        "host": {"kernel": report.host.kernel, "arch": report.host.arch, "cpus": report.host.cpus,
                 "cgroup_version": report.host.cgroup_version,
                 "cgroup_layout": report.host.cgroup_layout, "perf": report.host.perf},
        "total": {"calls": report.total_calls, "errors": report.total_errors},
        "syscalls": [
            {"name": s.name, "calls": s.calls, "errors": s.errors,
             "calls_per_second": round(s.calls / seconds, 3) if seconds else None}
            for s in rows
        ],
    }
