"""How every benchmark takes its options and leaves its results: one ``--quick`` flag
(small counts, the mode ``benchmarks/run.py`` uses), raw numbers as JSON in
``benchmarks/.work/NAME-results.json`` with a few headline lines, Markdown tables."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .procs import WORK


def parser(doc: str | None, quick: str) -> argparse.ArgumentParser:
    """An argument parser described by the module docstring's first paragraph, with
    ``--quick`` (``quick`` says what it shrinks to)."""
    first = (doc or "").strip().split("\n\n")[0]
    p = argparse.ArgumentParser(description=first)
    p.add_argument("--quick", action="store_true", help=f"quick mode: {quick}")
    return p


def parse(p: argparse.ArgumentParser, quick: dict[str, Any]) -> argparse.Namespace:
    """The arguments, with ``quick`` as the defaults under ``--quick``: options given on
    the command line still win (``--quick --seconds 1``)."""
    args = p.parse_args()
    if args.quick:
        p.set_defaults(**quick)
        args = p.parse_args()
    return args


def results_path(name: str) -> Path:
    return WORK / f"{name}-results.json"


def save(name: str, result: dict[str, Any], headline: Iterable[str]) -> Path:
    """Write ``result`` and its ``headline`` lines (the ratios and medians a reader wants
    first; ``run.py`` copies them into docs/benchmarks.md) as JSON; returns the path."""
    WORK.mkdir(parents=True, exist_ok=True)
    path = results_path(name)
    body = {
        "benchmark": name,
        "argv": sys.argv[1:],
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average": os.getloadavg(),
        "headline": list(headline),
        **result,
    }
    path.write_text(json.dumps(body, indent=1, default=str))
    return path


def table(header: Sequence[str], rows: Iterable[Sequence[object]], align: str = "") -> str:
    """A Markdown table; ``align`` one character a column (``l``/``r``), default left."""
    marks = ["--:" if a == "r" else "---" for a in align.ljust(len(header), "l")]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
