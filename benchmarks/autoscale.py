"""Autoscaling policies on the standard seeded 24-h trace (issue 15): SLOs, cost against
the oracle and HPA, stability, the 10x burst, the 10 % kill, lost work; and the
simulator's own speed (CPU seconds per policy for a day at 1,000+ peak workers).

    .venv/bin/python benchmarks/autoscale.py                    # the standard trace, all policies
    .venv/bin/python benchmarks/autoscale.py --plots docs       # + the PNGs of docs/autoscaling.md
    .venv/bin/python benchmarks/autoscale.py --quick            # 5 h at 1/5 of the load
    .venv/bin/python benchmarks/autoscale.py --seed 7           # another seed (held out)

Prints a Markdown table (the one in docs/autoscaling.md) and saves
``benchmarks/.work/autoscale-results.json`` with the headline lines.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from _harness import parse, parser, save, table

POLICIES = ("pixelmill", "hpa", "keda_ready", "keda_unacked", "ray", "static", "oracle")


def _row(name: str, r: dict[str, Any], oracle: float, cpu: float) -> list[object]:
    recovery = "-" if r["recovery_s"] is None else f"{r['recovery_s']:.0f}"
    return [
        name,
        f"{100 * r['render_slo']:.2f} %",
        f"{100 * r['job_slo']:.2f} %",
        f"{r['worker_seconds'] / 3600:,.0f}",
        f"{r['worker_seconds'] / oracle:.3f}",
        f"{r['reversals_per_service_hour']:.2f}",
        f"{r['burst_violations']:,}",
        recovery,
        r["jobs_lost"],
        r["peak_workers"],
        f"{cpu:.1f}",
    ]


def headline(report: dict[str, Any]) -> list[str]:
    p = report["policies"]
    ours, hpa, oracle = p["pixelmill"], p["hpa"], p["oracle"]
    return [
        f"pixelmill: render SLO {100 * ours['render_slo']:.2f} % (HPA {100 * hpa['render_slo']:.2f}), "
        f"job SLO {100 * ours['job_slo']:.2f} % (HPA {100 * hpa['job_slo']:.2f})",
        f"worker-seconds / oracle {ours['worker_seconds'] / oracle['worker_seconds']:.3f}; "
        f"vs HPA {100 * (1 - ours['worker_seconds'] / hpa['worker_seconds']):.1f} % fewer",
        f"burst violations: pixelmill {ours['burst_violations']:,}, HPA {hpa['burst_violations']:,}; "
        f"reversals {ours['reversals_per_service_hour']:.2f} per service-hour; "
        f"jobs lost {ours['jobs_lost']} (KEDA ready-only {p['keda_ready']['jobs_lost']})",
    ]


def main() -> None:
    p = parser(__doc__, "5 h of the standard trace (its 10x step included) at 1/5 of its load")
    p.add_argument("--hours", type=float, default=24.0)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--plots", type=Path, help="folder for the two PNGs")
    p.add_argument("--seed", type=int, default=15, help="the trace's seed (15: the standard one)")
    args = parse(p, {"hours": 5.0, "scale": 0.2})
    from pixelmill.autoscale.baselines import POLICIES as SPECS
    from pixelmill.autoscale.sim import TraceSpec, provision_static, simulate, summarise, synthetic
    from pixelmill.runtime.autoscale import policy_config, save_plots
    from pixelmill.settings_autoscale import AutoscaleSettings

    spec = TraceSpec()
    spec = replace(
        spec,
        seed=args.seed,
        hours=args.hours,
        render_peak_rate=spec.render_peak_rate * args.scale,
        job_peak_rate=spec.job_peak_rate * args.scale,
    )
    trace = synthetic(spec)
    config = provision_static(trace, policy_config(AutoscaleSettings(), simulated=True))
    runs, results, cpu = {}, {}, {}
    for name in POLICIES:
        started = time.process_time()
        runs[name] = simulate(trace, config, SPECS[name])
        results[name] = summarise(runs[name]).as_json()
        cpu[name] = time.process_time() - started
        print(f"{name}: {cpu[name]:.1f} CPU s", flush=True)
    report = {
        "trace": {"name": trace.name, "hours": trace.hours, **trace.info},
        "policies": results,
    }
    oracle = results["oracle"]["worker_seconds"]
    print(
        table(
            ["policy", "render SLO", "job SLO", "worker-h", "/ oracle", "reversals / svc-h",
             "burst violations", "recovery s", "jobs lost", "peak workers", "sim CPU s"],
            [_row(n, results[n], oracle, cpu[n]) for n in POLICIES],
            "lrrrrrrrrrr",
        )
    )  # fmt: skip
    redelivered = {n: round(runs[n].redelivered.get("jobs", 0.0)) for n in POLICIES}
    print("jobs redelivered by the kill:", json.dumps(redelivered))
    if args.plots:
        for path in save_plots(report, runs, args.plots):
            print("saved", path)
    save(
        "autoscale", {"report": report, "cpu_s": cpu, "redelivered": redelivered}, headline(report)
    )


if __name__ == "__main__":
    main()
