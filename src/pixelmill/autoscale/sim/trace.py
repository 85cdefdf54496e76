"""Traces for the simulator: the seeded synthetic standard trace and CSV replay.

A trace is arrivals per one-second tick for each service (``render``, ``jobs``), each
service's lognormal service time, and scripted events (the 10x step, the ramp, the kill
of 10 % of the workers).

The synthetic rate is diurnal (trough at 04:00, peak at 16:00) x a tenant mix x the
scripted events. The mix sums heavy-tailed tenants (Pareto weights, alpha 1.2), each a
two-state MMPP: normal, or a burst of ``burst_factor`` x its rate, with exponentially
distributed sojourns. Counts per tick are Poisson of the rate.

Service times are fitted from pixelmill's own benchmarks (docs/benchmarks.md):

- renders: the five cache-miss renders of the render table, each measured on its own
  (``benchmarks/render_service_time.py``: in-process, one thread, medians of 40 renders
  each: 11.0, 32.5, 67.1, 43.4, 13.4 ms CPU) plus the 1.4 ms a miss costs in the server
  around the render → an equal mix of the five, lognormal median 28.6 ms, sigma 0.652
  (mean 35.4 ms). No measured render took more than 70 ms; the lognormal's tail puts
  0.55 % of renders above 150 ms, a stand-in for the heavier renders a real mix has.
  (Before: the server's CPU per request of the same rows at concurrency 8 and 32 on a
  machine at load 5-7, 14.1 ... 83.4 ms → median 30.5 ms, sigma 0.656, 0.76 % above
  150 ms; docs/autoscaling.md compares the two.)
- jobs: the twenty "Preprocessing ops" rows (pixelmill ms CPU, 2048² and 12 MP: 1.3 ms
  channel select ... 11.8 s non-local means) plus the 5.4 ms per-job overhead of the jobs
  quick run → median 132 ms, sigma 2.01 (mean 1.0 s, squared CV 56: heavy-tailed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from pixelmill.autoscale.types import ServiceTime

__all__ = [
    "JOB_OP_CPU_MS",
    "MAX_SERVICE_TIME_S",
    "MAX_TRACE_SIGMA",
    "MAX_TRACE_SPAN_S",
    "RENDER_FRAMEWORK_MS",
    "RENDER_MISS_CPU_MS",
    "Trace",
    "TraceSpec",
    "fit_lognormal",
    "read_csv",
    "standard",
    "synthetic",
]

#: CPU ms of each cache-miss render of the render table, measured one at a time
#: (benchmarks/render_service_time.py, 2026-12-06, load average 3.9): 2.5 MP JPEG → 300x200,
#: 12 MP JPEG → 300 px, 12 MP JPEG → 800 px WebP, 2 MP PNG → 300x200, 2.5 MP + blur
RENDER_MISS_CPU_MS = (11.0, 32.5, 67.1, 43.4, 13.4)
#: what a miss costs in the server around the render (docs/benchmarks.md: a 64x64 JPEG
#: miss, 2.3 ms of CPU through the server against 0.9 ms in-process)
RENDER_FRAMEWORK_MS = 1.4
JOB_OP_CPU_MS = (
    77.0, 10.8, 702.7, 3736.6, 27.1, 137.6, 152.9, 22.2, 20.9, 1.3,
    209.8, 27.0, 2611.3, 11762.9, 66.5, 454.8, 492.8, 71.9, 77.8, 4.2,
)  # fmt: skip
JOB_OVERHEAD_MS = 5.4


def fit_lognormal(seconds: Iterable[float], *, ddof: int = 1) -> ServiceTime:
    """Median and sigma of ``log`` of positive durations (sample standard deviation;
    ``ddof=0``: the maximum-likelihood fit to requests that are these values in equal
    shares, as an equal mix of a few renders whose own spread is negligible)."""
    logs = np.log(np.asarray([s for s in seconds if s > 0], dtype=np.float64))
    if logs.size < 2:
        raise ValueError("fitting a service time needs at least two positive durations")
    return ServiceTime(median_s=float(np.exp(logs.mean())), sigma=float(logs.std(ddof=ddof)))


# each render's own spread is small (p90 within 6 % of the median over 40 runs), so the
# mix's requests take five values in equal shares
RENDER_SERVICE = fit_lognormal(
    ((ms + RENDER_FRAMEWORK_MS) / 1000 for ms in RENDER_MISS_CPU_MS), ddof=0
)
JOB_SERVICE = fit_lognormal((ms + JOB_OVERHEAD_MS) / 1000 for ms in JOB_OP_CPU_MS)


@dataclass(frozen=True, slots=True)
class Trace:
    name: str
    arrivals: dict[str, NDArray[np.int64]]
    service: dict[str, ServiceTime]
    dt: float = 1.0
    kills: tuple[float, ...] = ()
    kill_fraction: float = 0.1
    burst: tuple[float, float] | None = None
    info: dict[str, object] = field(default_factory=dict)

    @property
    def ticks(self) -> int:
        return len(next(iter(self.arrivals.values())))

    @property
    def hours(self) -> float:
        return self.ticks * self.dt / 3600


@dataclass(frozen=True, slots=True)
class TraceSpec:
    """The synthetic trace's knobs; the defaults are the standard 24-h trace."""

    seed: int = 15
    hours: float = 24.0
    render_peak_rate: float = 14000.0
    job_peak_rate: float = 420.0
    trough: float = 0.12
    tenants: int = 40
    tenant_alpha: float = 1.2
    burst_factor: float = 3.0
    burst_every_s: float = 4 * 3600.0
    burst_mean_s: float = 240.0
    step_at_h: float | None = 4.0
    step_factor: float = 10.0
    step_s: float = 900.0
    ramp_at_h: float | None = 19.0
    ramp_factor: float = 1.6
    ramp_s: float = 3600.0
    kill_at_h: float | None = 11.0
    kill_fraction: float = 0.1


def _diurnal(t: NDArray[np.float64], trough: float) -> NDArray[np.float64]:
    phase = 2 * math.pi * (t / 3600 - 4.0) / 24
    return trough + (1 - trough) * (0.5 - 0.5 * np.cos(phase))


def _tenant_mix(spec: TraceSpec, ticks: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """Sum of Pareto-weighted two-state MMPP multipliers, normalised to mean ≈ 1."""
    weights = rng.pareto(spec.tenant_alpha, spec.tenants) + 1
    weights /= weights.sum()
    burst_share = spec.burst_mean_s / (spec.burst_every_s + spec.burst_mean_s)
    mean_multiplier = 1 + (spec.burst_factor - 1) * burst_share
    mix = np.zeros(ticks)
    for weight in weights:
        multiplier = np.ones(ticks)
        at = rng.exponential(spec.burst_every_s)
        while at < ticks:
            length = rng.exponential(spec.burst_mean_s)
            multiplier[int(at) : int(at + length) + 1] = spec.burst_factor
            at += length + rng.exponential(spec.burst_every_s)
        mix += weight * multiplier
    result: NDArray[np.float64] = mix / mean_multiplier
    return result


def _scripted(spec: TraceSpec, t: NDArray[np.float64]) -> NDArray[np.float64]:
    factor = np.ones_like(t)
    if spec.step_at_h is not None:
        start = spec.step_at_h * 3600
        factor[(t >= start) & (t < start + spec.step_s)] *= spec.step_factor
    if spec.ramp_at_h is not None:
        start, half = spec.ramp_at_h * 3600, spec.ramp_s / 2
        tri = np.clip(1 - np.abs(t - start - half) / half, 0, 1)
        factor *= 1 + (spec.ramp_factor - 1) * tri
    return factor


def synthetic(spec: TraceSpec) -> Trace:
    """The seeded synthetic trace of ``spec`` (same seed, same counts)."""
    rng = np.random.default_rng(spec.seed)
    ticks = int(spec.hours * 3600)
    t = np.arange(ticks, dtype=np.float64)
    shape = _diurnal(t, spec.trough) * _scripted(spec, t)
    arrivals = {
        "render": rng.poisson(spec.render_peak_rate * shape * _tenant_mix(spec, ticks, rng)),
        "jobs": rng.poisson(spec.job_peak_rate * shape * _tenant_mix(spec, ticks, rng)),
    }
    step = None
    if spec.step_at_h is not None:
        step = (spec.step_at_h * 3600, spec.step_at_h * 3600 + spec.step_s)
    kills: tuple[float, ...] = () if spec.kill_at_h is None else (spec.kill_at_h * 3600,)
    horizon = ticks * 1.0
    kills = tuple(k for k in kills if k < horizon)
    if step is not None and step[0] >= horizon:
        step = None
    return Trace(
        name=f"synthetic seed {spec.seed}, {spec.hours:g} h",
        arrivals={k: v.astype(np.int64) for k, v in arrivals.items()},
        service={"render": RENDER_SERVICE, "jobs": JOB_SERVICE},
        kills=kills,
        kill_fraction=spec.kill_fraction,
        burst=step,
        info={"seed": spec.seed, "hours": spec.hours},
    )


def standard() -> Trace:
    """The standard seeded 24-h trace the docs and the benchmark report."""
    return synthetic(TraceSpec())


#: the longest trace replayed: a week of one-second ticks (a longer span, or a timestamp
#: far off the others, would be arrays of millions of ticks per policy)
MAX_TRACE_SPAN_S = 7 * 86400.0
#: the longest service time a row may give: a task running for more than a day is no
#: autoscaling input (and a week-long one would be the whole trace)
MAX_SERVICE_TIME_S = 86400.0
#: the widest lognormal a replay fits (mean = 2,981 x median): wider is a trace mixing
#: units (ms and s) or broken rows, and would size for a mean of another order
MAX_TRACE_SIGMA = 4.0


def _number(text: str, what: str, number: int, *, high: float) -> float:
    """``text`` as a finite number of at most ``high`` (a service time: not negative),
    else a ``ValueError`` naming the line."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"line {number}: {what} {text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"line {number}: {what} {text.strip()!r} is not a finite number")
    if what == "service_time" and not 0 <= value <= high:
        raise ValueError(
            f"line {number}: service_time {text.strip()} is not between 0 and {high:g} s"
        )
    return value


def _fit(service: str, durations: list[float]) -> ServiceTime:
    if len(durations) < 2:
        return {"render": RENDER_SERVICE, "jobs": JOB_SERVICE}[service]
    fitted = fit_lognormal(durations)
    if not fitted.sigma <= MAX_TRACE_SIGMA:
        raise ValueError(
            f"the {service} rows' service times spread too widely for a lognormal (sigma "
            f"{fitted.sigma:.1f}, at most {MAX_TRACE_SIGMA:g}): mixed units?"
        )
    return fitted


def read_csv(lines: Iterable[str], *, name: str = "replay") -> Trace:
    """A trace from CSV text ``timestamp,kind,service_time`` (seconds; a header is
    allowed). Kind ``render`` is a render; any other kind is a job. Each service's
    lognormal is fitted from its own service times; arrivals are counted per second
    from the first timestamp. Timestamps and service times must be finite numbers,
    service times between 0 and :data:`MAX_SERVICE_TIME_S`, and the trace span at most
    :data:`MAX_TRACE_SPAN_S`; a ``ValueError`` names the line that is not."""
    stamps: dict[str, list[float]] = {"render": [], "jobs": []}
    durations: dict[str, list[float]] = {"render": [], "jobs": []}
    #: (timestamp, line) of the earliest and the latest row so far
    first = last = (math.inf, 0)
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#") or text.lower().startswith("timestamp"):
            continue
        parts = text.split(",")
        if len(parts) != 3:
            raise ValueError(f"line {number}: want timestamp,kind,service_time; got {text!r}")
        service = "render" if parts[1].strip() == "render" else "jobs"
        at = _number(parts[0], "timestamp", number, high=math.inf)
        stamps[service].append(at)
        durations[service].append(
            _number(parts[2], "service_time", number, high=MAX_SERVICE_TIME_S)
        )
        first = min(first, (at, number))
        last = max(last, (at, number)) if last[1] else (at, number)
        if last[0] - first[0] > MAX_TRACE_SPAN_S:
            raise ValueError(
                f"lines {first[1]} and {last[1]}: the trace spans more than "
                f"{MAX_TRACE_SPAN_S / 86400:g} days ({first[0]:g} to {last[0]:g})"
            )
    everything = stamps["render"] + stamps["jobs"]
    if not everything:
        raise ValueError("the trace has no rows")
    ticks = int(last[0] - first[0]) + 1
    arrivals = {
        key: np.bincount((np.asarray(v) - first[0]).astype(np.int64), minlength=ticks)
        for key, v in stamps.items()
    }
    fitted = {key: _fit(key, durations[key]) for key in stamps}
    return Trace(name=name, arrivals=arrivals, service=fitted, info={"rows": len(everything)})
