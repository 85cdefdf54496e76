"""What the benchmarks share, so each script holds only what it measures.

* :mod:`.procs` — free ports, process trees, CPU seconds and memory from ``/proc``,
  servers started on 127.0.0.1, waited for, and stopped by PID (also on Ctrl-C);
* :mod:`.stats` — timing loops, medians, percentiles, geometric means, interleaved
  A/B rounds;
* :mod:`.report` — the ``--quick`` flag, JSON results with headline lines (read by
  ``benchmarks/run.py``), Markdown tables;
* :mod:`.services` — the machine's PostgreSQL and RabbitMQ: a throw-away database, CPU
  per job of their processes;
* :mod:`.platform` — a distributed pixelmill (gateway + workers) on them;
* :mod:`.clients` — test images, a job made through the repository, an SSE reader, wrk;
* :mod:`.s3` — SeaweedFS on loopback (the tests' ``s3_server`` fixture uses it too);
* :mod:`.docs` — the "quick run" section of docs/benchmarks.md (``benchmarks/run.py``).
* :mod:`.beside` — in-process calls timed in this tree and in another checkout's ``src``.

Scripts run as ``python benchmarks/NAME.py`` import it as ``_harness`` (their folder is
first on ``sys.path``); the tests import ``benchmarks._harness.s3``.
"""

from .clients import WrkSample, make_job, small_png, sse_events, wrk, wrk_sample
from .procs import (
    CLI,
    CORES,
    ROOT,
    VENV_BIN,
    WORK,
    PssSampler,
    Server,
    cpu_by_pid,
    cpu_seconds,
    free_port,
    machine_busy,
    pids_named,
    start_server,
    status_kb,
    stop_all,
    stopping_on_signals,
    tree,
    wait_http,
    wait_log,
)
from .report import parse, parser, results_path, save, table
from .stats import (
    batched,
    geomean,
    interleaved,
    latency_summary,
    median,
    paired_ratio,
    pct,
    rotations,
)

__all__ = [
    "CLI",
    "CORES",
    "ROOT",
    "VENV_BIN",
    "WORK",
    "PssSampler",
    "Server",
    "WrkSample",
    "batched",
    "cpu_by_pid",
    "cpu_seconds",
    "free_port",
    "geomean",
    "interleaved",
    "latency_summary",
    "machine_busy",
    "make_job",
    "median",
    "paired_ratio",
    "parse",
    "parser",
    "pct",
    "pids_named",
    "results_path",
    "rotations",
    "save",
    "small_png",
    "sse_events",
    "start_server",
    "status_kb",
    "stop_all",
    "stopping_on_signals",
    "table",
    "tree",
    "wait_http",
    "wait_log",
    "wrk",
    "wrk_sample",
]
