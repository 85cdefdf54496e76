"""Queueing formulas for sizing: Erlang C (M/M/c) and the Allen-Cunneen approximation
for G/G/c, vectorised with numpy over any shape of (servers, offered load).

Notation: ``lam`` arrivals per second, service mean ``1/mu`` seconds, offered load
``a = lam/mu`` (erlangs), ``c`` servers, utilisation ``rho = a/c``.

Allen-Cunneen: the mean wait of G/G/c is M/M/c's times ``(ca² + cs²)/2`` (squared
coefficients of variation of inter-arrival and service times). Waits are taken as an
atom at zero (probability ``1 - C``) plus an exponential tail with the same mean, the
usual heavy-traffic shape: ``P(W > t) = C · exp(-t · (c·mu - lam) · 2 / (ca² + cs²))``.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pixelmill.autoscale.types import ServiceTime, SloKind

__all__ = [
    "erlang_c",
    "lognormal_cdf",
    "residual_tail",
    "size_for_slo",
    "slo_attainment",
    "wait_tail",
]


@functools.cache
def _special() -> Any:
    """``scipy.special``, imported on first use: the gateway imports this module for its
    autoscaler routes, and scipy would add a fifth of a second to every process start."""
    import scipy.special

    return scipy.special


_GRID = 48


def erlang_c(c: ArrayLike, a: ArrayLike) -> NDArray[np.float64]:
    """Probability an arrival waits in M/M/c with ``c`` servers and ``a`` erlangs.

    1 where the queue is unstable (``a >= c``) or there are no servers. Exact for any
    size: Erlang B from the Poisson pmf over its cdf, then ``C = B / (1 - rho (1 - B))``.

    >>> round(float(erlang_c(2, 1.0)), 6)
    0.333333
    """
    c_arr = np.asarray(c, dtype=np.float64)
    a_arr = np.maximum(np.asarray(a, dtype=np.float64), 1e-12)
    stable = (c_arr > 0) & (a_arr < c_arr)
    c_safe = np.where(c_arr > 0, c_arr, 1.0)
    log_pmf = c_safe * np.log(a_arr) - a_arr - _special().gammaln(c_safe + 1)
    cdf = _special().gammaincc(c_safe + 1, a_arr)
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.exp(log_pmf) / np.maximum(cdf, 1e-300)
        rho = a_arr / c_safe
        result = b / (1 - rho * (1 - b))
    return np.where(stable, np.clip(result, 0.0, 1.0), 1.0)


def _decay(c: NDArray[np.float64], lam: NDArray[np.float64], service: ServiceTime) -> NDArray:
    """Rate (1/s) of the exponential tail of the wait, Allen-Cunneen (ca² = 1, Poisson)."""
    slack = np.maximum(c / service.mean_s - lam, 0.0)
    return slack * 2.0 / (1.0 + service.scv)


def wait_tail(c: ArrayLike, lam: ArrayLike, service: ServiceTime, t: float) -> NDArray:
    """``P(W > t)``: the share of arrivals that wait longer than ``t`` seconds."""
    c_arr = np.asarray(c, dtype=np.float64)
    lam_arr = np.asarray(lam, dtype=np.float64)
    prob = erlang_c(c_arr, lam_arr * service.mean_s)
    return prob * np.exp(-_decay(c_arr, lam_arr, service) * t)


def lognormal_cdf(x: ArrayLike, service: ServiceTime) -> NDArray[np.float64]:
    """``P(S <= x)`` for the lognormal service time (0 for ``x <= 0``)."""
    x_arr = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore"):
        z = (np.log(np.maximum(x_arr, 1e-300)) - math.log(service.median_s)) / service.sigma
    return np.where(x_arr > 0, _special().ndtr(z), 0.0)


def slo_attainment(
    c: ArrayLike, lam: ArrayLike, service: ServiceTime, slo_s: float, kind: SloKind
) -> NDArray[np.float64]:
    """Share of arrivals meeting the SLO at steady state with ``c`` servers.

    ``queue_wait``: ``P(W <= slo_s)``. ``latency``: ``P(S + W <= slo_s)``, the service
    time's own tail included (integrated over a grid of the lognormal's cdf).
    """
    c_arr, lam_arr = np.broadcast_arrays(
        np.asarray(c, dtype=np.float64), np.asarray(lam, dtype=np.float64)
    )
    if kind == "queue_wait":
        return 1.0 - wait_tail(c_arr, lam_arr, service, slo_s)
    prob = erlang_c(c_arr, lam_arr * service.mean_s)[..., None]
    decay = _decay(c_arr, lam_arr, service)[..., None]
    edges = np.linspace(0.0, slo_s, _GRID + 1)
    mass = np.diff(lognormal_cdf(edges, service))
    mids = (edges[:-1] + edges[1:]) / 2
    waited = np.sum(mass * (1.0 - np.exp(-decay * (slo_s - mids))), axis=-1)
    no_wait = float(lognormal_cdf(slo_s, service))
    result: NDArray[np.float64] = (1.0 - prob[..., 0]) * no_wait + prob[..., 0] * waited
    return result


@functools.lru_cache(maxsize=64)
def _grid(service: ServiceTime, slo_s: float) -> tuple[tuple[float, float], ...]:
    """The lognormal's probability mass on ``_GRID`` cells of [0, slo_s], with mid-points."""
    edges = np.linspace(0.0, slo_s, _GRID + 1)
    mass = np.diff(lognormal_cdf(edges, service))
    mids = (edges[:-1] + edges[1:]) / 2
    return tuple(zip(mass.tolist(), mids.tolist(), strict=True))


def _queueing_misses(
    c: int, lam: float, service: ServiceTime, slo_s: float, kind: SloKind
) -> float:
    """Share of arrivals that miss the SLO because they waited (not because of S): the
    scalar form of :func:`slo_attainment`, in plain floats (sizing calls it often)."""
    a = lam * service.mean_s
    if a >= c:
        return 1.0
    log_b = (
        c * math.log(a)
        - a
        - math.lgamma(c + 1)
        - math.log(max(float(_special().gammaincc(c + 1, a)), 1e-300))
    )
    b = math.exp(log_b)
    prob = min(1.0, b / (1 - (a / c) * (1 - b)))
    decay = (c / service.mean_s - lam) * 2.0 / (1.0 + service.scv)
    if kind == "queue_wait":
        return prob * math.exp(-decay * slo_s)
    # waiting pushes a render past the SLO when W > slo_s - S
    return prob * sum(
        mass * math.exp(-decay * (slo_s - mid)) for mass, mid in _grid(service, slo_s)
    )


def size_for_slo(
    lam: float, service: ServiceTime, slo_s: float, kind: SloKind, target: float
) -> int:
    """Fewest servers whose waiting costs at most ``1 - target`` of arrivals the SLO.

    0 for no arrivals. Found by doubling then bisection over ``c`` (the miss share falls
    monotonically with ``c``), starting just above the offered load.
    """
    if lam <= 0:
        return 0
    # a rate rounded up to a 0.2 % grid: sizing is cached, and never for less than asked
    step = math.ceil(math.log(lam) / _RATE_STEP)
    return _size(math.exp(step * _RATE_STEP), service, slo_s, kind, target)


_RATE_STEP = math.log1p(0.002)


@functools.lru_cache(maxsize=65536)
def _size(lam: float, service: ServiceTime, slo_s: float, kind: SloKind, target: float) -> int:
    allowed = 1.0 - target
    low = max(1, math.floor(lam * service.mean_s))
    if _queueing_misses(low, lam, service, slo_s, kind) <= allowed:
        return low
    step = max(1, int(math.sqrt(lam * service.mean_s)))
    high = low + step
    while _queueing_misses(high, lam, service, slo_s, kind) > allowed:
        low, high = high, high + step
        step *= 2
    while high - low > 1:
        mid = (low + high) // 2
        if _queueing_misses(mid, lam, service, slo_s, kind) <= allowed:
            high = mid
        else:
            low = mid
    return high


def residual_tail(service: ServiceTime, grace_s: float) -> float:
    """Share of busy workers whose task still needs more than ``grace_s`` seconds.

    The residual (remaining) service time of a task caught at a random moment has the
    tail ``E[(S - g)+] / E[S]``; for a lognormal it has a closed form.
    """
    mu, sigma = math.log(service.median_s), service.sigma
    log_g = math.log(max(grace_s, 1e-12))
    mean = service.mean_s
    beyond = mean * float(_special().ndtr((mu + sigma**2 - log_g) / sigma)) - grace_s * float(
        _special().ndtr((mu - log_g) / sigma)
    )
    return max(0.0, beyond / mean)
