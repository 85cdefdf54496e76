"""The "quick run" section of docs/benchmarks.md: written by ``benchmarks/run.py`` between
two marker comments, one table row per benchmark; everything outside the markers is
hand-written and left as it is."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence

from .procs import CORES

QUICK_START = "<!-- bench:quick:start -->"
QUICK_END = "<!-- bench:quick:end -->"
HEADER = "| benchmark | run at (UTC) | time | headline (quick mode) |"


def _row(name: str, row: Mapping[str, object], now: str) -> str:
    at = row.get("at", now)
    if row["status"] == "ran":
        lines = [str(x).replace("|", "\\|") for x in row["headline"]]  # type: ignore[attr-defined]
        cell = "<br>".join(lines) or "(no headline saved)"
        return f"| {name} | {at} | {row['seconds']:.0f} s | {cell} |"
    return f"| {name} | {at} | {row['status']} | {str(row['reason']).replace('|', '/')} |"


def _old_rows(section: str) -> dict[str, str]:
    """The rows of an existing section by benchmark name."""
    rows = {}
    for line in section.splitlines():
        if line.startswith("| ") and line != HEADER:
            rows[line[2:].split(" |", 1)[0]] = line
    return rows


def update_section(
    text: str,
    rows: Mapping[str, Mapping[str, object]],
    command: str,
    total_s: float,
    order: Sequence[str],
) -> str:
    """``text`` with the quick-run section rewritten: this run's ``rows`` replace their
    benchmarks' rows, the others' rows stay; appended at the end if there is none yet."""
    at = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    start, end = text.find(QUICK_START), text.find(QUICK_END)
    old = text[start:end] if 0 <= start < end else ""
    lines = _old_rows(old)
    lines.update({name: _row(name, row, at) for name, row in rows.items()})
    body = [
        QUICK_START,
        "## Quick run (`make bench`)",
        "",
        "Written by `benchmarks/run.py` — do not edit by hand. Every benchmark in its `--quick`",
        "mode (small counts, 127.0.0.1 only): a smoke test of the benchmarks and a rough trend on",
        "a shared machine, not the published figures above. Ratios are pixelmill / peer or",
        "floor unless the line says otherwise.",
        "",
        f"Last written {at} UTC by `{command}` ({total_s / 60:.1f} min; {CORES} cores, load "
        f"average {os.getloadavg()[0]:.1f} at the end); each row says when its benchmark ran.",
        "",
        HEADER,
        "|---|---|--:|---|",
        *[lines[n] for n in order if n in lines],
        QUICK_END,
    ]
    section = "\n".join(body)
    if old:
        return text[:start] + section + text[end + len(QUICK_END) :]
    return text.rstrip("\n") + "\n\n" + section + "\n"
