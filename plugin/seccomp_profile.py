"""Docker's seccomp profile format: reading a profile, and which of its rules a container gets.

A profile is the JSON of Docker's own default profile: a default action, and rules naming
syscalls with an action, optional argument conditions, and includes/excludes by capability,
architecture and kernel version that the engine resolves when it starts a container
(moby's profiles/seccomp/seccomp_linux.go, setupSeccomp). The data this needs (the host
architectures, Docker's default capabilities, the packaged default profile) is in
seccomp_data.json, read on first use: the metadata path imports the plugin on every
`docker --help`.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from .errors import SpyError

RESOURCE = "seccomp_data.json"
SCHEMA = 1
DEFAULT = "default"
MAX_PROFILE_BYTES = 4 << 20
ALLOWING = ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG")
DENYING = ("SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
           "SCMP_ACT_TRAP", "SCMP_ACT_TRACE")
DECIDED_ELSEWHERE = ("SCMP_ACT_NOTIFY",)  # a seccomp agent answers, if there is one
OPS = {"SCMP_CMP_EQ": "==", "SCMP_CMP_NE": "!=", "SCMP_CMP_LT": "<", "SCMP_CMP_LE": "<=",
       "SCMP_CMP_GT": ">", "SCMP_CMP_GE": ">=", "SCMP_CMP_MASKED_EQ": "&"}


class ProfileError(SpyError):
    """A seccomp profile that cannot be read, parsed or written, or an unsupported arch."""


@functools.cache
def data() -> dict[str, Any]:
    """seccomp_data.json, read once."""
    # __package__ is `plugin` from a checkout and `docker_spy` once installed.
    doc = json.loads(resources.files(__package__).joinpath(RESOURCE).read_text(encoding="utf-8"))
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"{RESOURCE}: schema {doc.get('schema')!r}, expected {SCHEMA}")
    return doc


def host_arch(arch: str) -> str:
    """`uname -m` (or Docker's spelling) -> x86_64 or aarch64; ProfileError for the rest."""
    known = data()["architectures"]
    name = data()["arch_aliases"].get(arch, arch)
    if name not in known:
        raise ProfileError(f"seccomp profiles for {arch} are not supported",
                           f"docker spy knows {' and '.join(known)}")
    return name


@dataclass(frozen=True)
class Rule:
    names: frozenset[str]
    action: str
    errno: int | None
    args: tuple[dict[str, Any], ...]  # ANDed; empty: the rule applies to every call
    includes: dict[str, Any]
    excludes: dict[str, Any]


@dataclass(frozen=True)
class Profile:
    source: str  # DEFAULT or a path
    description: str  # for people: the path, or which engine's default profile
    default_action: str
    default_errno: int | None
    rules: tuple[Rule, ...]


def load_profile(source: str) -> Profile:
    """A Docker seccomp profile from a path, or DEFAULT: the engine's default profile."""
    if source == DEFAULT:
        meta = data()["default_profile"]
        text = resources.files(__package__).joinpath(meta["file"]).read_text(encoding="utf-8")
        return parse_profile(json.loads(text), DEFAULT, f"{meta['engine']}'s default profile")
    hint = "give the path of a Docker seccomp profile (JSON), or default"
    try:
        with open(source, "rb") as f:
            raw = f.read(MAX_PROFILE_BYTES + 1)
    except OSError as e:
        raise ProfileError(f"cannot read the seccomp profile {source}: {e.strerror}", hint) from None
    if len(raw) > MAX_PROFILE_BYTES:
        raise ProfileError(f"the seccomp profile {source} is larger than {MAX_PROFILE_BYTES} bytes",
                           hint)
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ProfileError(f"the seccomp profile {source} is not JSON", hint) from None
    return parse_profile(doc, source, source)


def parse_profile(doc: Any, source: str, description: str) -> Profile:
    """A profile document (already JSON-decoded) -> Profile; ProfileError if it is not one."""
    def bad(what: str) -> ProfileError:
        return ProfileError(f"the seccomp profile {source} is not valid: {what}",
                            "it must be in the format of Docker's default profile")

    known = ALLOWING + DENYING + DECIDED_ELSEWHERE
    if not isinstance(doc, dict) or doc.get("defaultAction") not in known:
        raise bad("defaultAction is missing or unknown")
    rows = doc.get("syscalls") or []
    if not isinstance(rows, list):
        raise bad("syscalls is not a list")
    rules = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise bad(f"syscalls[{i}] is not an object")
        names = row.get("names") or ([row["name"]] if row.get("name") else None)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise bad(f"syscalls[{i}] names no syscall")
        if row.get("action") not in known:
            raise bad(f"syscalls[{i}].action is missing or unknown")
        args = row.get("args") or []
        if not isinstance(args, list) or not all(_condition(a) for a in args):
            raise bad(f"syscalls[{i}].args is not a list of conditions")
        includes, excludes = row.get("includes") or {}, row.get("excludes") or {}
        if not isinstance(includes, dict) or not isinstance(excludes, dict):
            raise bad(f"syscalls[{i}] includes/excludes are not objects")
        rules.append(Rule(frozenset(names), row["action"], _errno(row.get("errnoRet")),
                          tuple(args), includes, excludes))
    return Profile(source, description, doc["defaultAction"],
                   _errno(doc.get("defaultErrnoRet")), tuple(rules))


def _condition(arg: Any) -> bool:
    return (isinstance(arg, dict) and arg.get("op") in OPS
            and all(isinstance(arg.get(k, 0), int) for k in ("index", "value", "valueTwo")))


def _errno(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _kernel_at_least(kernel: str | None, minimum: str) -> bool:
    if kernel is None:
        return True  # unknown: assume a kernel at least as new as any rule asks for
    have = tuple(int(x) for x in re.findall(r"\d+", kernel)[:2])
    return have >= tuple(int(x) for x in re.findall(r"\d+", str(minimum))[:2])


def applies(rule: Rule, docker_arch: str, caps: frozenset[str], kernel: str | None) -> bool:
    """Whether the engine keeps this rule for a container with these capabilities, on this
    arch (Docker's spelling: amd64, arm64) and kernel."""
    ex, inc = rule.excludes, rule.includes
    if docker_arch in (ex.get("arches") or ()) or caps & set(ex.get("caps") or ()):
        return False
    if ex.get("minKernel") and _kernel_at_least(kernel, ex["minKernel"]):
        return False
    if inc.get("arches") and docker_arch not in inc["arches"]:
        return False
    if not set(inc.get("caps") or ()) <= caps:
        return False
    return not inc.get("minKernel") or _kernel_at_least(kernel, inc["minKernel"])


def kind(action: str) -> str:
    """allowed, denied, or conditional (a seccomp agent decides)."""
    return "allowed" if action in ALLOWING else "denied" if action in DENYING else "conditional"


def describe(rule: Rule) -> str:
    """A rule's argument conditions for people: `(arg0 & 0x7e020000) == 0x0`."""
    parts = []
    for a in rule.args:
        value, two, index = a.get("value", 0), a.get("valueTwo", 0), a.get("index", 0)
        if a["op"] == "SCMP_CMP_MASKED_EQ":
            parts.append(f"(arg{index} & {value:#x}) == {two:#x}")
        else:
            parts.append(f"arg{index} {OPS[a['op']]} {value:#x}")
    return " and ".join(parts)
