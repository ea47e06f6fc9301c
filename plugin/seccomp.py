"""Seccomp profiles from what a container did, and audits of what it did against a profile.

`make_profile` turns the syscalls seen in a window into a Docker seccomp profile (the JSON
format of Docker's own default profile) that allows them, plus the calls every container
makes while it starts; `audit` says which of the seen syscalls a profile would deny, and how
often they were made. The data (tracepoint to syscall names, the start-up calls and how they
were measured, the engine's default profile and its provenance) is in seccomp_data.json and
seccomp_default.json beside this module, read on first use.

What a profile made from a window cannot know:

- **Paths not taken in the window.** Only the syscalls made while docker spy counted are
  allowed, plus the start-up calls. Error handling, reloads, log rotation, a cache miss, a
  signal handler, shutting down on `docker stop`, a new feature: whatever the container did
  not do then is denied (EPERM) later. Count through the container's whole life cycle, or
  audit later windows against the profile (`--audit-profile`) before enforcing it.
- **Arguments.** perf counts calls, not their arguments, so the profile allows a syscall
  whole. Docker's default allows some only with certain arguments (clone without namespace
  flags, personality with a few values); a profile allowing a clone it saw is weaker there.
  (A clone added as a start-up call gets the default's condition.)
- **Calls the current profile denies.** A call the container's own profile (usually
  Docker's default) rejects is still counted, as a failed call; clone3, counted where it
  enters, only as a failure. The generated profile allows every syscall that was called,
  so it can allow one the current profile denied: audit the same window against the
  profile the container runs under (`--audit-profile default`) to see them. clone3, which
  Docker's default answers with ENOSYS so that libc falls back to clone, gets the same
  ENOSYS rule unless it was called; every other call is denied with EPERM, as by default.
- **io_uring operations.** Work submitted through io_uring runs without a syscall per
  operation: the profile can allow io_uring_enter, not decide which operations it carries.
- **32-bit compat calls.** Calls through the 32-bit entry points (int 0x80, an i386 binary
  on x86_64) do not fire the syscall tracepoints. The profile covers the 32-bit
  architectures too, as Docker's default does, but only with the names seen in 64-bit
  calls: a 32-bit program's own calls (stat64, mmap2, socketcall, ...) are denied.
- **Other hosts.** Names are those of the host's architecture; an engine whose libseccomp
  is older than a syscall ignores that name (runc skips names it cannot resolve).
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from . import render
from .report import SYSCALL_NAME
from .seccomp_profile import (
    DEFAULT,
    Profile,
    ProfileError,
    Rule,
    applies,
    data,
    describe,
    host_arch,
    kind,
    load_profile,
)

__all__ = ["DEFAULT", "AuditResult", "Profile", "ProfileError", "ProfileSummary", "Verdict",
           "audit", "host_arch", "load_profile", "make_profile", "seccomp_name", "startup_calls",
           "write_audit", "write_profile"]

SCHEMA = 1
AUDIT_HEADERS = ("SYSCALL", "CALLS", "VERDICT", "ACTION", "WHEN")


def seccomp_name(tracepoint: str, arch: str) -> str:
    """A syscall tracepoint's name -> the syscall table name a profile uses (newuname -> uname)."""
    return data()["tracepoint_names"][host_arch(arch)].get(tracepoint, tracepoint)


def startup_calls(arch: str) -> frozenset[str]:
    """The calls every container makes while it starts, before any window can see them."""
    arch = host_arch(arch)
    return frozenset(name for group in data()["startup"]
                     if arch in group.get("arches", (arch,)) for name in group["names"])


def make_profile(observed: Iterable[str], arch: str) -> dict[str, Any]:
    """A Docker seccomp profile allowing the observed syscalls (tracepoint names) and the
    start-up calls, denying everything else with EPERM as Docker's default does."""
    arch = host_arch(arch)
    seen = {seccomp_name(_checked(name), arch) for name in observed}
    conditions = data()["startup_conditions"]
    added = startup_calls(arch) - seen
    allow = sorted(seen | {name for name in added if name not in conditions})
    spec = data()["architectures"][arch]
    syscalls: list[dict[str, Any]] = [{
        "names": allow, "action": "SCMP_ACT_ALLOW",
        "comment": "seen by docker spy, plus the calls every container makes while it starts"}]
    for name in sorted(added & conditions.keys()):
        syscalls.append({"names": [name], "action": "SCMP_ACT_ALLOW", "args": conditions[name],
                         "comment": "a start-up call, with the condition of Docker's default"})
    if "clone3" not in seen:
        syscalls.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO",
                         "errnoRet": data()["clone3_enosys"],
                         "comment": "ENOSYS, as Docker's default: libc then falls back to clone"})
    return {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.EPERM,
            "archMap": [{"architecture": spec["seccomp"], "subArchitectures": spec["sub"]}],
            "syscalls": syscalls}


def _checked(name: str) -> str:
    if not isinstance(name, str) or not SYSCALL_NAME.match(name):
        raise ValueError(f"not a syscall name: {name!r}")
    return name


@dataclass(frozen=True)
class ProfileSummary:
    path: str
    observed: int  # distinct syscalls seen in the window
    added_for_startup: int  # start-up calls the window had not seen
    allowed: int  # names the profile allows (some, like clone, only with Docker's conditions)

    def __str__(self) -> str:
        return (f"wrote the seccomp profile {self.path}: {self.allowed} syscalls allowed "
                f"({self.observed} observed, {self.added_for_startup} more that containers need "
                f"to start); use it with docker run --security-opt seccomp={self.path}")


def check_destination(path: str) -> None:
    """Before the window, not after it: can a profile be written at path?"""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ProfileError(f"cannot write the seccomp profile {path}: it is a directory",
                           "give a file name")
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise ProfileError(f"cannot write the seccomp profile {path}: {folder} is not a writable folder",
                           "choose a path in a writable folder")


def write_profile(observed: Iterable[str], arch: str, path: str) -> ProfileSummary:
    """Write make_profile's JSON to path atomically (a reader never sees half a profile)."""
    seen = set(observed)
    profile = make_profile(seen, arch)
    allowed = {name for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW"
               for name in rule["names"]}
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".docker-spy-", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(json.dumps(profile, indent=2) + "\n")
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)  # the docker CLI reading it may be another user
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as e:
        raise ProfileError(f"cannot write the seccomp profile {path}: {e.strerror}",
                           "choose a path in a writable folder") from None
    seen_names = {seccomp_name(name, arch) for name in seen}
    return ProfileSummary(path, len(seen), len(allowed - seen_names), len(allowed))


@dataclass(frozen=True)
class Verdict:
    name: str  # as observed: the tracepoint name
    seccomp_name: str
    calls: int
    verdict: str  # allowed | denied | conditional
    action: str  # the profile's action, e.g. SCMP_ACT_ERRNO
    errno: int | None  # what a denied call returns (SCMP_ACT_ERRNO)
    when: str = ""  # conditional: the arguments the other action depends on


@dataclass(frozen=True)
class AuditResult:
    profile: str  # what was audited against, for people
    arch: str
    verdicts: tuple[Verdict, ...]  # denied first, then conditional, then allowed; calls, most first

    def _with(self, verdict: str) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if v.verdict == verdict)

    @property
    def denied(self) -> tuple[Verdict, ...]:
        return self._with("denied")

    @property
    def conditional(self) -> tuple[Verdict, ...]:
        return self._with("conditional")

    @property
    def would_deny(self) -> bool:
        return bool(self.denied)


def audit(observed: Mapping[str, int], profile: Profile, arch: str, *, kernel: str | None = None,
          caps: Iterable[str] | None = None) -> AuditResult:
    """Which observed syscalls (tracepoint name -> calls) the profile would deny, for a container
    with Docker's default capabilities (or caps) on this arch and kernel (None: a recent one)."""
    arch = host_arch(arch)
    docker_arch = data()["architectures"][arch]["docker"]
    have = frozenset(caps if caps is not None else data()["default_capabilities"])
    rules = [r for r in profile.rules if applies(r, docker_arch, have, kernel)]
    verdicts = [_judge(name, calls, seccomp_name(name, arch), rules, profile)
                for name, calls in observed.items() if calls > 0]
    order = {"denied": 0, "conditional": 1, "allowed": 2}
    verdicts.sort(key=lambda v: (order[v.verdict], -v.calls, v.name))
    return AuditResult(profile.description, arch, tuple(verdicts))


def _judge(name: str, calls: int, sname: str, rules: list[Rule], profile: Profile) -> Verdict:
    mine = [r for r in rules if sname in r.names]
    plain = next((r for r in mine if not r.args), None)
    action = plain.action if plain else profile.default_action
    number = (plain.errno if plain else None) or profile.default_errno or errno.EPERM
    other = [r for r in mine if r.args and kind(r.action) != kind(action)]
    if other:
        return Verdict(name, sname, calls, "conditional", other[0].action,
                       number if kind(action) == "denied" else None,
                       " or ".join(describe(r) for r in other))
    outcome = kind(action)
    when = "a seccomp agent decides" if outcome == "conditional" else ""
    return Verdict(name, sname, calls, outcome, action,
                   number if action == "SCMP_ACT_ERRNO" else None, when)


def _action_text(v: Verdict) -> str:
    text = v.action.removeprefix("SCMP_ACT_")
    if v.action == "SCMP_ACT_ERRNO" and v.errno is not None:
        text += f" ({errno.errorcode.get(v.errno, v.errno)})"
    return text


def audit_title(result: AuditResult) -> str:
    seen = len(result.verdicts)
    title = (f"seccomp audit against {result.profile} ({result.arch}): "
             f"{len(result.denied)} of {seen} observed syscalls would be denied")
    if result.conditional:
        title += f", {len(result.conditional)} allowed only with some arguments"
    return title


def audit_document(result: AuditResult) -> dict[str, Any]:
    """The audit as data: every observed syscall with its verdict."""
    return {"schema": SCHEMA, "profile": result.profile, "arch": result.arch,
            "would_deny": result.would_deny, "denied": len(result.denied),
            "syscalls": [{"name": v.name, "seccomp_name": v.seccomp_name, "calls": v.calls,
                          "verdict": v.verdict, "action": v.action, "errno": v.errno,
                          "errno_name": errno.errorcode.get(v.errno) if v.errno else None,
                          "when": v.when or None} for v in result.verdicts]}


def write_audit(result: AuditResult, fmt: str, stream: TextIO) -> None:
    """The audit as a table (denied and conditional rows) or one JSON document (every row)."""
    if fmt == "json":
        stream.write(json.dumps(audit_document(result), indent=2) + "\n")
    elif fmt == "table":
        stream.write(audit_title(result) + "\n")
        shown = [v for v in result.verdicts if v.verdict != "allowed"]
        if shown:
            # WHEN says on what a conditional verdict depends: a column only where one is shown.
            when = any(v.when for v in shown)
            rows = [(v.name if v.name == v.seccomp_name else f"{v.name} ({v.seccomp_name})",
                     f"{v.calls:,}", v.verdict, _action_text(v), *([v.when] if when else []))
                    for v in shown]
            headers = AUDIT_HEADERS if when else AUDIT_HEADERS[:-1]
            stream.write("\n" + render.tabulate(rows, headers=headers, tablefmt="simple",
                                         disable_numparse=True,
                                         colalign=("left", "right", "left", "left", "left")[:len(headers)])
                         + "\n")
    else:
        raise ValueError(f"unknown audit format: {fmt!r}")
    stream.flush()
