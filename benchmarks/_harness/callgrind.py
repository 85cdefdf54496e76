"""Work counted in instructions by valgrind's callgrind: a measure that does not move with
the machine's load, for overheads of a few percent that CPU time on a shared 2-core
machine cannot resolve (its A/A noise is ±4 % under load).

A server started with :func:`prefix` runs (very slowly) under callgrind, every process
of its tree counted apart. :func:`zero` resets their counters after the warm-up and
:func:`total` dumps them and sums the instructions executed since: user-space work only
(the kernel's share of a request, its system time, is not counted), the same code
executed the same way on both sides of a comparison.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from pathlib import Path

from .procs import Server

_TOTALS = re.compile(rb"^(?:summary|totals): (\d+)", re.MULTILINE)


def prefix(run: Path, name: str) -> list[str]:
    """The command prefix that runs a server (and its children) under callgrind."""
    out = run / f"callgrind.{name}.%p"
    return ["valgrind", "--tool=callgrind", "--trace-children=yes", f"--callgrind-out-file={out}"]


def counted(server: Server) -> list[int]:
    """The processes of ``server``'s tree that callgrind runs (not the shell in between)."""
    found = []
    for pid in server.refresh():
        with contextlib.suppress(OSError):
            if "callgrind" in os.readlink(f"/proc/{pid}/exe"):
                found.append(pid)
    return found


def zero(server: Server) -> None:
    for pid in counted(server):
        subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)


def total(server: Server, run: Path) -> int:
    """Instructions executed by ``server``'s processes since :func:`zero`."""
    instructions = 0
    for pid in counted(server):
        subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
        dumps = sorted(run.glob(f"callgrind.{server.name}.{pid}.*"), key=_part)
        if not dumps:
            raise SystemExit(f"callgrind wrote no dump for {server.name} (pid {pid})")
        found = _TOTALS.search(dumps[-1].read_bytes())
        if found is None:
            raise SystemExit(f"no instruction total in {dumps[-1]}")
        instructions += int(found.group(1))
    return instructions


def _part(path: Path) -> int:
    return int(path.name.rsplit(".", 1)[1])


__all__ = ["counted", "prefix", "total", "zero"]
