"""Additive Holt-Winters (level + trend + season), exact, on fixed buckets of a rate.

Pure and incremental: :func:`observe` folds one sample into an immutable
:class:`HoltWinters` state, :func:`forecast` projects ``h`` seconds ahead with an upper
bound ``mean + z · sigma_h``. The season (default one day of one-minute buckets) starts
at zero, so within a first day it acts as Holt's linear trend; from the second day it
learns the daily shape. Residual spread is an exponentially weighted variance of the
one-step errors (each clipped to 3 sigma, sigma at least the square root of the level); it widens with the horizon as in simple exponential smoothing.

Why not statsmodels: it is not a dependency, its fit is a batch optimisation (far too
slow to run every few seconds in a simulator) and a policy needs the incremental form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

__all__ = ["Forecast", "HoltWinters", "forecast", "observe", "start"]


@dataclass(frozen=True, slots=True)
class HoltWinters:
    bucket_s: float
    alpha: float
    beta: float
    gamma: float
    season: tuple[float, ...]
    level: float | None = None
    trend: float = 0.0
    variance: float = 0.0
    bucket_start: float | None = None
    bucket_sum: float = 0.0
    bucket_n: int = 0
    buckets: int = 0


@dataclass(frozen=True, slots=True)
class Forecast:
    mean: float
    upper: float


def start(
    bucket_s: float = 60.0,
    season_buckets: int = 1440,
    *,
    alpha: float = 0.5,
    beta: float = 0.1,
    gamma: float = 0.2,
) -> HoltWinters:
    """An empty model of buckets of ``bucket_s`` seconds and a season of that many."""
    return HoltWinters(bucket_s, alpha, beta, gamma, (0.0,) * max(1, season_buckets))


def observe(model: HoltWinters, at: float, value: float) -> HoltWinters:
    """Fold a sample of the rate taken at ``at`` seconds; a full bucket updates the model."""
    if model.bucket_start is None:
        return replace(model, bucket_start=at, bucket_sum=value, bucket_n=1)
    if at - model.bucket_start < model.bucket_s:
        return replace(model, bucket_sum=model.bucket_sum + value, bucket_n=model.bucket_n + 1)
    closed = _update(model, model.bucket_sum / max(model.bucket_n, 1))
    return replace(closed, bucket_start=at, bucket_sum=value, bucket_n=1)


def _update(model: HoltWinters, y: float) -> HoltWinters:
    index = model.buckets % len(model.season)
    seasonal = model.season[index]
    if model.level is None:
        return replace(model, level=y, buckets=model.buckets + 1)
    predicted = model.level + model.trend + seasonal
    error = y - predicted
    level = model.alpha * (y - seasonal) + (1 - model.alpha) * (model.level + model.trend)
    trend = model.beta * (level - model.level) + (1 - model.beta) * model.trend
    season = list(model.season)
    if model.buckets >= len(model.season):
        season[index] = model.gamma * (y - level) + (1 - model.gamma) * seasonal
    # a step (a burst, a kill) is for panic mode and the backlog to handle: its error is
    # clipped to 3 sigma before it widens the band, so one burst does not inflate the
    # upper bound (and the capacity it adds) for the next half hour
    # (the floor, sqrt of the level, is Poisson noise: a quiet series still has some)
    limit = 3 * max(math.sqrt(model.variance), math.sqrt(max(model.level, 1.0)))
    error = max(-limit, min(limit, error))
    variance = 0.9 * model.variance + 0.1 * error * error
    return replace(
        model,
        level=level,
        trend=trend,
        season=tuple(season) if model.buckets >= len(model.season) else model.season,
        variance=variance,
        buckets=model.buckets + 1,
    )


def forecast(model: HoltWinters, horizon_s: float, z: float = 2.0) -> Forecast | None:
    """The rate ``horizon_s`` seconds ahead and its upper bound; None before any bucket."""
    if model.level is None:
        return None
    steps = max(1.0, horizon_s / model.bucket_s)
    ahead = model.buckets + math.ceil(steps) - 1
    seasonal = model.season[ahead % len(model.season)] if model.buckets > len(model.season) else 0.0
    mean = max(0.0, model.level + steps * model.trend + seasonal)
    spread = math.sqrt(model.variance * (1 + (steps - 1) * model.alpha**2))
    return Forecast(mean=mean, upper=mean + z * spread)
