"""The bench's figures as text tables, medians of the repetitions, then the raw values as JSON."""

from __future__ import annotations

import json
import os
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from common import table
from fleet import GAP_S

Values = dict[str, dict[str, list[float]]]  # row (method, or "method|size") -> figure -> values


@dataclass
class Results:
    reps: int
    about: str = ""  # the machine, the engine, the checkout
    seconds: float = 0.0  # how long the whole run took
    methods: Values = field(default_factory=dict)
    back_to_back: Values = field(default_factory=dict)
    many: Values = field(default_factory=dict)
    remote: Values = field(default_factory=dict)
    cli: Values = field(default_factory=dict)
    phases: Values = field(default_factory=dict)
    builds: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def median(values: Values, row: str, key: str) -> float | None:
    found = values.get(row, {}).get(key)
    return statistics.median(found) if found else None


def cell(value: float | None, style: str) -> str:
    if value is None:
        return "-"
    return {"s": f"{value:.2f}", "rate": f"{value:,.0f}", "ratio": f"{value:.2f}",
            "share": f"{100 * value:.2f}%", "ns": f"{value:,.0f}", "mib": f"{value:.1f}",
            "count": f"{value:,.0f}", "mb": f"{value / 1e6:.1f}"}[style]


def grid(values: Values, rows: list[str], columns: list[tuple[str, str, str]]) -> str:
    """One row per method, one column per (header, figure, style)."""
    lines = [("method", *(header for header, _, _ in columns))]
    lines += [(row, *(cell(median(values, row, key), style) for _, key, style in columns)) for row in rows]
    return table(lines)


def methods_section(res: Results) -> list[str]:
    rows = list(res.methods)
    out = ["methods: the target runs the getppid loop, then nginx under wrk; the neighbour's loop is "
           "not spied", "time to result: the whole command for a 2 s window (docker spy ... -d 2s)",
           grid(res.methods, rows, [
               ("result, s", "time to result, s", "s"), ("counting at, s", "time to counting start, s", "s"),
               ("target loop, calls/s", "target loop, calls/s", "rate"),
               ("neighbour loop, calls/s", "neighbour loop, calls/s", "rate"),
               ("nginx, requests/s", "nginx, requests/s", "rate")])]
    if "untraced" in res.methods:
        ratios: Values = {}
        for row in rows:
            for key in ("target loop, calls/s", "neighbour loop, calls/s", "nginx, requests/s"):
                base, value = median(res.methods, "untraced", key), median(res.methods, row, key)
                if base and value is not None:
                    ratios.setdefault(row, {})[key] = [value / base]
        out += ["", "ratio to untraced (1.00 = no cost)", grid(ratios, rows, [
            ("target loop", "target loop, calls/s", "ratio"),
            ("neighbour loop", "neighbour loop, calls/s", "ratio"),
            ("nginx", "nginx, requests/s", "ratio")])]
    costed = [row for row in rows if row.startswith("spy bpf")]
    if costed:
        out += ["", "what the BPF engine reports it cost (the report's cost: its programs' run time over "
                "window x CPUs; the loop run's window holds the target's loop, then the neighbour's)",
                grid(res.methods, costed, [
                    ("cpu_share, loop run", "cost.cpu_share, loop run", "share"),
                    ("cpu_share, nginx run", "cost.cpu_share, nginx run", "share"),
                    ("ns per run, loop", "ns per program run, loop run", "ns"),
                    ("ns per run, nginx", "ns per program run, nginx run", "ns")])]
    return out


def back_to_back_section(res: Results) -> list[str]:
    return [f"back-to-back: time to result of 2 s windows, s: a run after quiet, one started 0 s after "
            f"its result, one started {GAP_S:g} s after that one's",
            grid(res.back_to_back, list(res.back_to_back), [
                ("after quiet", "after quiet, s", "s"), ("0 s after", "0 s after, s", "s"),
                (f"{GAP_S:g} s after", f"{GAP_S:g} s after, s", "s")])]


def many_section(res: Results) -> list[str]:
    rows = sorted(res.many, key=lambda r: (r.split("|")[0], int(r.split("|")[1])))
    lines = [("method", "containers", "result, s", "helper peak memory, MiB", "helper open files")]
    for row in rows:
        method, size = row.split("|")
        lines.append((method, size, *(cell(median(res.many, row, key), style) for key, style in (
            ("time to result, s", "s"), ("helper peak memory, MiB", "mib"), ("helper open files", "count")))))
    return ["many quiet containers (each wakes every 0.1 s) in one run (--filter label=...), 2 s window; "
            "the helper's memory is its cgroup's peak, its files those of all its processes",
            table(lines), "the issue's targets for 64 containers: open files <= 64, helper memory <= 40 MiB"]


def builds_section(res: Results) -> list[str]:
    lines = [("design", "build, s", "apt downloads, MB", "image, MB")]
    for design, b in res.builds.items():
        lines.append((design, cell(b["seconds"], "s"), " + ".join(cell(d, "mb") for d in b["downloads"])
                      or "-", cell(b["size"], "mb")))
    return ["the helper image's build on first use, without cache (the apt-get layers run; apt's "
            "\"Need to get\" per apt-get run)", table(lines)]


def remote_section(res: Results) -> list[str]:
    from remote import section

    return section(res.remote, res.reps)


def cli_section(res: Results) -> list[str]:
    from cli import section

    return section(res.cli)


def phases_section(res: Results) -> list[str]:
    from phases import section

    return section(res.phases)


def report(res: Results) -> str:
    out = [f"docker spy benchmark: medians of {res.reps} runs; {os.cpu_count()} CPUs, {res.about}; "
           f"this run took {res.seconds / 60:.1f} min"]
    for present, section in ((res.cli, cli_section), (res.builds, builds_section),
                             (res.phases, phases_section), (res.methods, methods_section),
                             (res.back_to_back, back_to_back_section), (res.many, many_section),
                             (res.remote, remote_section)):
        if present:
            out += ["", *section(res)]
    if res.notes:
        counted = Counter(res.notes)  # in the order they came, each once
        out += ["", *(f"note: {n}" + (f" (x{counted[n]})" if counted[n] > 1 else "") for n in counted)]
    out += ["", "raw: " + json.dumps(asdict(res))]
    return "\n".join(out)
