"""Item 4 of the study: internet scale on paper. From the CPU per render measured in
experiment d (and a), the USL fit, the in-process cost of the segmentation preset, and
the per-job platform overhead the jobs benchmark measured (issue 17: gateway 0.85,
workers 1.38, RabbitMQ 0.52, PostgreSQL 1.24 ms CPU per job), how many nodes do
10,000 render req/s behind a CDN and 1,000 segmentation jobs/min need?"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

from benchmarks.study import report
from benchmarks.study.models import UslFit

NODE_CORES = 2  # a node like this machine
TARGET_UTIL = 0.7  # headroom for bursts and a lost node
RENDER_RPS = 10_000
CDN_HITS = (0.90, 0.95, 0.99)
JOBS_PER_MIN = 1_000
#: CPU ms per job outside the op itself, measured by benchmarks/jobs.py (issue 17, item 5)
JOB_OVERHEAD_MS = {"gateway": 0.85, "workers": 1.38, "rabbitmq": 0.52, "postgresql": 1.24}


def preset_ms() -> float:
    """Median in-process ms of the segmentation preset on the jobs' 256x256 image."""
    from benchmarks._harness.clients import small_png

    from pixelmill.imaging import ops, pipeline

    png = small_png(256, 256, seed=5)
    steps = ops.parse_pipeline([{"op": "preset", "name": "nuclei-fluorescence"}])
    samples = []
    for _ in range(15):
        t0 = time.process_time()
        pipeline.run(png, steps)
        samples.append(time.process_time() - t0)
    return statistics.median(samples) * 1000


def update(fit: UslFit, rows: list[dict[str, Any]]) -> None:
    renders = [r["cpu_ms_per_render"] for r in rows if r.get("cpu_ms_per_render")]
    cpu_render = statistics.median(renders)
    per_node_usl = fit.throughput(NODE_CORES) if rows[0]["axis"] == "embedded processes" else None
    lines = [
        f"Measured CPU per render (miss, 1280x960 JPEG → ≤ 999 px): median **{cpu_render:.1f} ms** "
        f"over experiment d's rows; a {NODE_CORES}-core node run at {TARGET_UTIL:.0%}.",
        "",
        "| CDN hit ratio | origin renders/s | cores (CPU model) | gateway nodes (CPU model) | gateway nodes (USL, measured per-node rate) |",
        "|---|---|---|---|---|",
    ]
    for hit in CDN_HITS:
        origin = RENDER_RPS * (1 - hit)
        cores = origin * cpu_render / 1000
        nodes_cpu = math.ceil(cores / (NODE_CORES * TARGET_UTIL))
        usl = "—" if per_node_usl is None else str(math.ceil(origin / (per_node_usl * TARGET_UTIL)))
        lines.append(f"| {hit:.0%} | {origin:,.0f} | {cores:.1f} | {nodes_cpu} | {usl} |")
    op = preset_ms()
    per_s = JOBS_PER_MIN / 60
    total = op + sum(JOB_OVERHEAD_MS.values())
    lines += [
        "",
        f"**{JOBS_PER_MIN:,} segmentation jobs/min = {per_s:.1f} jobs/s.** The preset itself: "
        f"{op:.1f} ms CPU in-process (measured now); platform overhead per job "
        f"{sum(JOB_OVERHEAD_MS.values()):.2f} ms ({', '.join(f'{k} {v}' for k, v in JOB_OVERHEAD_MS.items())}; "
        "measured by `benchmarks/jobs.py`, quoted in issue 17, not in this run). "
        f"Total {total:.1f} ms → {per_s * total / 1000:.2f} cores: "
        f"**{math.ceil(per_s * (op + JOB_OVERHEAD_MS['workers']) / 1000 / (NODE_CORES * TARGET_UTIL))} worker node(s)**, "
        f"RabbitMQ {per_s * JOB_OVERHEAD_MS['rabbitmq'] / 10:.1f} % of a core (1 node; 3 for quorum-queue HA), "
        f"PostgreSQL {per_s * JOB_OVERHEAD_MS['postgresql'] / 10:.1f} % of a core.",
        "",
        "**First bottleneck.** Renders: gateway CPU (the render itself) — everything else per "
        "render is a cache or storage read. Jobs at this rate: the workers' op CPU. At 100x the job rate "
        "the single PostgreSQL primary (1.24 ms CPU and several commits per job, every job row on one "
        "node) is the first shared part to saturate, before RabbitMQ (0.52 ms, spreads over quorum queues). "
        f"The USL fit here (sigma = {fit.sigma:.3f}, κ = {fit.kappa:.4f}) was measured on one 2-core box: "
        "it bounds processes per node, not nodes; scaling across nodes is limited by the shared "
        "database and broker, which no run here measured.",
        "",
        "**Autoscaler.** `pixelmill autoscale simulate --trace … --policy …` (src/pixelmill/autoscale) "
        "replays a load trace against a policy; the per-replica capacities above (renders/s per "
        "node at 70 %) are the numbers to give its policy — not wired in this study yet.",
    ]
    report.update_page(
        "cost",
        "Internet scale on paper: the cost model",
        "\n".join(lines),
        "python -m benchmarks.study.experiments d",
    )
