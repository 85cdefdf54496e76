"""In-process calls timed in this tree and, beside it, in another checkout's ``src``
(a child process started with that ``PYTHONPATH``), round after round alternating;
medians of each call's per-round medians. Used by ``metadata_rows.py`` and
``serving_side.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .report import parse, parser, save, table
from .stats import median


def median_ms(
    fn: Callable[[int], object], calls: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    """The median of ``calls`` timings of ``fn(i)`` by ``clock``, in milliseconds."""
    spent = []
    for i in range(calls):
        started = clock()
        fn(i)
        spent.append(clock() - started)
    return round(median(spent) * 1000, 4)


def run_beside(
    script: str,
    doc: str | None,
    measure: Callable[[int], dict[str, float]],
    calls: tuple[str, ...],
    *,
    title: str,
    name: str,
    defaults: tuple[int, int],
    quick: tuple[int, int],
) -> None:
    """The command line of such a benchmark: ``--base SRC``, ``--rounds``, ``--calls``
    (``defaults`` and ``quick``: rounds, calls); ``measure(calls)`` is one round of
    every call in this process. Prints a table and saves the medians as ``name``."""
    if "--child" in sys.argv:
        print(json.dumps(measure(int(sys.argv[-1]))))
        return
    p = parser(doc, f"{quick[0]} rounds of {quick[1]} calls")
    p.add_argument("--base", type=Path, help="another checkout's src/, measured beside")
    p.add_argument("--rounds", type=int, default=defaults[0])
    p.add_argument("--calls", type=int, default=defaults[1])
    args = parse(p, {"rounds": quick[0], "calls": quick[1]})
    sides: dict[str, list[dict[str, float]]] = {"this tree": []}
    if args.base:
        sides["base"] = []
    for _ in range(args.rounds):
        sides["this tree"].append(measure(args.calls))
        if args.base:
            env = {**os.environ, "PYTHONPATH": str(args.base)}
            child = [sys.executable, script, "--child", str(args.calls)]
            done = subprocess.run(child, env=env, capture_output=True, text=True, check=True)
            sides["base"].append(json.loads(done.stdout.strip().splitlines()[-1]))
    result: dict[str, Any] = {
        side: {c: median(r[c] for r in rounds) for c in calls} for side, rounds in sides.items()
    }
    rows = []
    for c in calls:
        row: list[object] = [c, f"{result['this tree'][c]:.3f}"]
        if args.base:
            row += [f"{result['base'][c]:.3f}", f"{result['this tree'][c] / result['base'][c]:.2f}"]
        rows.append(row)
    header = [title, "this tree, ms"]
    if args.base:
        header += ["base, ms", "this / base"]
    print(table(header, rows, "l" + "r" * (len(header) - 1)))
    headline = [f"{c}: {result['this tree'][c]:.3f} ms" for c in calls]
    save(name, {"medians_ms": result, "rounds": args.rounds}, headline)
