"""The autoscaling simulator: traces (:mod:`.trace`), the event loop (:mod:`.engine`),
the report (:mod:`.report`) and :func:`compare`, every policy over one trace."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np

from pixelmill.autoscale.queueing import size_for_slo
from pixelmill.autoscale.sim.engine import Run, simulate
from pixelmill.autoscale.sim.report import PolicyResult, summarise
from pixelmill.autoscale.sim.trace import Trace, TraceSpec, read_csv, standard, synthetic
from pixelmill.autoscale.types import PolicyConfig

__all__ = [
    "PolicyResult",
    "Run",
    "Trace",
    "TraceSpec",
    "compare",
    "provision_static",
    "read_csv",
    "simulate",
    "standard",
    "summarise",
    "synthetic",
]


def provision_static(trace: Trace, config: PolicyConfig) -> PolicyConfig:
    """Give the static baseline what capacity planning would: the SLO's workers for the
    99th percentile of the trace's one-minute rates (unless already set)."""
    services = []
    for service in config.services:
        if service.static_replicas is None and service.name in trace.arrivals:
            counts = trace.arrivals[service.name]
            minutes = counts[: len(counts) // 60 * 60].reshape(-1, 60).mean(axis=1)
            rate = float(np.percentile(minutes, 99)) / trace.dt if minutes.size else 0.0
            count = size_for_slo(
                rate, trace.service[service.name], service.slo_s, service.kind, service.target
            )
            service = replace(service, static_replicas=max(count, service.min_replicas))
        services.append(service)
    return replace(config, services=tuple(services))


def compare(
    trace: Trace, config: PolicyConfig, names: Iterable[str]
) -> tuple[dict[str, Any], dict[str, Run]]:
    """Every named policy over ``trace``: the issue's JSON and the runs (for plots)."""
    from pixelmill.autoscale.baselines import POLICIES

    config = provision_static(trace, config)
    runs = {name: simulate(trace, config, POLICIES[name]) for name in names}
    report = {
        "trace": {
            "name": trace.name,
            "hours": round(trace.hours, 3),
            "renders": int(trace.arrivals["render"].sum()) if "render" in trace.arrivals else 0,
            "jobs": int(trace.arrivals["jobs"].sum()) if "jobs" in trace.arrivals else 0,
            **{str(k): v for k, v in trace.info.items()},
        },
        "policies": {name: summarise(run).as_json() for name, run in runs.items()},
    }
    return report, runs
