"""The jobs path against its floors, before and after a change, in one run (issue 17,
item 5): the cheapest real job (``flip`` with ``output.image=false``) over HTTP.

    .venv/bin/python benchmarks/jobs_path.py --before /tmp/base/src [--rounds 3] [--seconds 8]

Each round runs, in an order that rotates from round to round,

* the floors (``benchmarks/jobs_dramatiq_floor.py``): bare Dramatiq + RabbitMQ, and the
  same with the job row, its start and its finish committed to PostgreSQL;
* pixelmill from ``--before`` (another checkout's ``src``) and from ``--after`` (by default
  this checkout's)
  (``benchmarks/jobs.py --only throughput,latency --variants no-output --workers 2``),

all with 2 worker processes x 4 threads, wrk at 16 connections, and a low-load latency
row (1 worker process, a job every 20 ms). Prints one Markdown table: jobs/s, CPU ms per
job by part, the ratios to both floors, enqueue -> start p99, the load average — medians
over the rounds, with each round's values. Raw results: ``benchmarks/.work/``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from _harness import ROOT, results_path, save

HERE = Path(__file__).resolve().parent


def floor(args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE / "jobs_dramatiq_floor.py"), "--reps", "1"]
    cmd += ["--seconds", str(args.seconds), "--latency-jobs", str(args.latency_jobs)]
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    results = json.loads(results_path("jobs_dramatiq_floor").read_text())["results"]
    out: dict[str, Any] = {}
    for row in results:
        if row["row"] == "throughput":
            out[row["floor"]] = row
        else:
            out["latency"] = row
    return out


def pixelmill(src: Path, args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": f"{src}:{ROOT}"}
    cmd = [sys.executable, str(HERE / "jobs.py"), "--reps", "1", "--only", "throughput,latency"]
    cmd += ["--variants", "no-output", "--workers", "2", "--seconds", str(args.seconds)]
    cmd += ["--latency-jobs", str(args.latency_jobs)]
    subprocess.run(cmd, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    result = json.loads(results_path("jobs").read_text())
    return {"run": result["runs"][0], "latency": result["latency"][0]}


def options() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--before", type=Path, required=True, help="the src folder of the old code")
    p.add_argument("--after", type=Path, default=ROOT / "src", help="the new code's src folder")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=int, default=8)
    p.add_argument("--latency-jobs", type=int, default=200)
    return p.parse_args()


def main() -> None:
    args = options()
    load_start = os.getloadavg()[0]
    steps = {
        "floor": lambda: floor(args),
        "before": lambda: pixelmill(args.before.resolve(), args),
        "after": lambda: pixelmill(args.after.resolve(), args),
    }
    names = list(steps)
    rounds: list[dict[str, Any]] = []
    for n in range(args.rounds):
        got: dict[str, Any] = {}
        for name in names[n % 3 :] + names[: n % 3]:
            got[name] = steps[name]()
            print(f"round {n + 1}: {name} done, load {os.getloadavg()[0]:.1f}", flush=True)
        rounds.append(got)
    rows = table(rounds)
    print(f"\nload average (1 min) at start {load_start:.1f}, at the end {os.getloadavg()[0]:.1f}")
    print("\n".join(rows))
    save("jobs_path", {"rounds": rounds}, rows)


def table(rounds: list[dict[str, Any]]) -> list[str]:
    med = statistics.median

    def system(name: str, r: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        if name in ("bare", "db"):
            return r["floor"][name], r["floor"]["latency"] if name == "db" else None
        return r[name]["run"], r[name]["latency"]

    lines = [
        "| system | jobs/s (rounds) | x bare floor | x db floor | CPU ms/job: gateway, "
        "workers, RabbitMQ, PostgreSQL = total | enqueue→start p99 ms | load |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("bare", "db", "before", "after"):
        runs = [system(name, r) for r in rounds]
        rate = [t["jobs_per_s"] for t, _ in runs]
        bare = med(
            t["jobs_per_s"] / r["floor"]["bare"]["jobs_per_s"]
            for (t, _), r in zip(runs, rounds, strict=True)
        )
        db = med(
            t["jobs_per_s"] / r["floor"]["db"]["jobs_per_s"]
            for (t, _), r in zip(runs, rounds, strict=True)
        )
        cpu = {
            k: med(t["cpu_ms_per_job_by_part"].get(k, 0.0) for t, _ in runs)
            for k in ("gateway", "workers", "rabbitmq", "postgres", "total")
        }
        p99 = [lat["enqueue_to_start_p99_ms"] for _, lat in runs if lat is not None]
        lines.append(
            f"| {name} | {med(rate):.0f} ({', '.join(f'{x:.0f}' for x in rate)}) | {bare:.2f} | "
            f"{db:.2f} | {cpu['gateway']:.2f}, {cpu['workers']:.2f}, {cpu['rabbitmq']:.2f}, "
            f"{cpu['postgres']:.2f} = **{cpu['total']:.2f}** | "
            + (f"{med(p99):.1f} ({', '.join(f'{x:.1f}' for x in p99)})" if p99 else "—")
            + " | "
            + ", ".join(f"{t['load_average']:.1f}" for t, _ in runs)
            + " |"
        )
    return lines


if __name__ == "__main__":
    main()
