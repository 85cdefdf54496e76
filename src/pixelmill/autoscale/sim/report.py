"""From a simulated run to the numbers the issue asks for (docs/autoscaling.md):

- ``render_slo``: share of renders with wait + service ≤ the latency SLO (150 ms);
  ``job_slo``: share of jobs started within their queue budget (None: no such arrivals).
- ``worker_seconds``: every worker paid for, cold-starting and draining ones included.
- ``reversals_per_service_hour``: changes of direction of the replica target.
- ``burst_violations``: requests (renders + jobs) out of SLO from the start of the 10x
  step to five minutes after its end.
- ``recovery_s``: from the kill to the start of 30 s in which every service has no
  backlog and meets its SLO within 1 point of the service time's own ceiling.
- ``jobs_lost``: jobs killed mid-task by the autoscaler's own scale-down (past the grace
  period); the broker redelivers them, so their work is lost and re-run.
- ``peak_workers``: the most workers paid for at once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray

from pixelmill.autoscale.queueing import lognormal_cdf, slo_attainment
from pixelmill.autoscale.sim.engine import Run

__all__ = ["PolicyResult", "ceiling", "summarise", "tick_attainment"]

_POINTS = (np.arange(8) + 0.5) / 8
BURST_TAIL_S = 300.0
HEALTHY_FOR_S = 30


@dataclass(frozen=True, slots=True)
class PolicyResult:
    render_slo: float | None
    job_slo: float | None
    worker_seconds: float
    reversals_per_service_hour: float
    burst_violations: int
    recovery_s: float | None
    jobs_lost: int
    peak_workers: int

    def as_json(self) -> dict[str, float | int | None]:
        return asdict(self)


def ceiling(run: Run, name: str) -> float:
    """The best share any number of workers can reach (the service time's own tail)."""
    service = run.config.service(name)
    if service.kind == "queue_wait":
        return 1.0
    return float(lognormal_cdf(service.slo_s, run.trace.service[name]))


def tick_attainment(run: Run, name: str) -> NDArray[np.float64]:
    """Share of each tick's arrivals that met the SLO (1 for a tick with none)."""
    service, time = run.config.service(name), run.trace.service[name]
    dt = run.trace.dt
    arrivals = run.trace.arrivals[name].astype(np.float64)
    ready = run.ready[name]
    start, end = run.backlog_start[name], run.backlog_end[name]
    steady = slo_attainment(ready, arrivals / dt, time, service.slo_s, service.kind)
    queued = (start > 1e-9) | (end > 1e-9)
    rate = ready / time.mean_s
    with np.errstate(divide="ignore", invalid="ignore"):
        waits = (start[:, None] + (end - start)[:, None] * _POINTS) / rate[:, None]
    waits = np.where(np.isfinite(waits), waits, np.inf)
    if service.kind == "latency":
        behind = lognormal_cdf(np.maximum(service.slo_s - waits, 0.0), time).mean(axis=1)
    else:
        behind = (waits <= service.slo_s).mean(axis=1)
    result: NDArray[np.float64] = np.where(queued, behind, steady)
    return result


def _reversals(run: Run, name: str) -> int:
    targets = [run.ready[name][0]] + [target for _, target in run.targets[name]]
    directions = np.sign(np.diff(np.asarray(targets, dtype=np.float64)))
    directions = directions[directions != 0]
    return int(np.count_nonzero(directions[1:] != directions[:-1]))


def _recovery(run: Run, shares: dict[str, NDArray[np.float64]]) -> float | None:
    if not run.trace.kills:
        return None
    kill = int(run.trace.kills[0] / run.trace.dt)
    healthy = np.ones(run.trace.ticks - kill, dtype=bool)
    for name, share in shares.items():
        healthy &= run.backlog_end[name][kill:] < 1.0
        healthy &= share[kill:] >= ceiling(run, name) - 0.01
    streak = 0
    for offset, ok in enumerate(healthy):
        streak = streak + 1 if ok else 0
        if streak >= HEALTHY_FOR_S:
            return float((offset - streak + 1) * run.trace.dt)
    return float(len(healthy) * run.trace.dt)


def summarise(run: Run) -> PolicyResult:
    names = list(run.ready)
    shares = {name: tick_attainment(run, name) for name in names}
    met = {n: float(np.sum(run.trace.arrivals[n] * shares[n])) for n in names}
    total = {n: float(np.sum(run.trace.arrivals[n])) for n in names}
    violations = 0.0
    if run.trace.burst is not None:
        lo = int(run.trace.burst[0] / run.trace.dt)
        hi = int((run.trace.burst[1] + BURST_TAIL_S) / run.trace.dt)
        for n in names:
            violations += float(np.sum(run.trace.arrivals[n][lo:hi] * (1 - shares[n][lo:hi])))
    paid = np.sum([run.paid[n] for n in names], axis=0)
    service_hours = run.trace.hours * len(names)
    return PolicyResult(
        render_slo=met["render"] / total["render"] if total.get("render") else None,
        job_slo=met["jobs"] / total["jobs"] if total.get("jobs") else None,
        worker_seconds=float(np.sum(paid) * run.trace.dt),
        reversals_per_service_hour=sum(_reversals(run, n) for n in names) / service_hours,
        burst_violations=round(violations),
        recovery_s=_recovery(run, shares),
        jobs_lost=round(run.lost.get("jobs", 0.0)),
        peak_workers=int(np.max(paid)) if paid.size else 0,
    )
