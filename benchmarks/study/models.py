"""The analytical models of the study, pure functions of measured numbers.

* The Universal Scalability Law (Gunther): throughput of ``n`` workers
  ``X(n) = λ n / (1 + sigma (n - 1) + κ n (n - 1))`` — sigma is contention (the serial share),
  κ coherency (crosstalk); peak at ``n* = sqrt((1 - sigma) / κ)``.
* The papers' response-time model for ``users`` concurrent users: a monolith's time grows
  linearly through contention on one central service, ``R = r0 + c·users``; microservices
  with co-located state stay nearly flat, ``R = r0``.
* The interactive response-time law (operational analysis, no fitting): with per-request
  CPU demand ``D`` on ``cores`` cores and think time ``Z``, ``R(N) ≥ max(D, N·D/cores - Z)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def usl(n: float, lam: float, sigma: float, kappa: float) -> float:
    """USL throughput of ``n`` workers (same unit as ``lam``, the one-worker rate)."""
    return lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


@dataclass(frozen=True)
class UslFit:
    lam: float
    sigma: float
    kappa: float

    def throughput(self, n: float) -> float:
        return usl(n, self.lam, self.sigma, self.kappa)

    def peak_n(self) -> float:
        """Workers at peak throughput (infinite when κ = 0: it only flattens)."""
        return math.inf if self.kappa <= 0 else math.sqrt(max(1 - self.sigma, 0) / self.kappa)

    def workers_for(self, target: float, limit: int = 100_000) -> int | None:
        """Fewest workers of ONE scaling group reaching ``target``; ``None`` when the
        curve never gets there (past its peak more workers only lose)."""
        n = 1
        while n <= limit:
            if self.throughput(n) >= target:
                return n
            if n > self.peak_n():
                return None
            n += 1
        return None


def fit_usl(ns: Sequence[float], xs: Sequence[float]) -> UslFit:
    """Least-squares USL fit (scipy ``curve_fit``), sigma and κ bounded to [0, 1]."""
    import warnings

    import numpy as np
    from scipy.optimize import OptimizeWarning, curve_fit

    n, x = np.asarray(ns, float), np.asarray(xs, float)
    lam0 = float(x[np.argmin(n)] / n.min())
    with warnings.catch_warnings():  # an exact fit has no covariance: not our concern
        warnings.simplefilter("ignore", OptimizeWarning)
        (lam, sigma, kappa), _ = curve_fit(
            usl, n, x, p0=(lam0, 0.05, 0.001), bounds=([0, 0, 0], [np.inf, 1, 1]), maxfev=20_000
        )
    return UslFit(float(lam), float(sigma), float(kappa))


def paper_monolith_ms(users: float, r0_ms: float, slope_ms: float) -> float:
    """The papers' monolith: linear growth through a central service."""
    return r0_ms + slope_ms * users


def paper_microservices_ms(users: float, r0_ms: float) -> float:
    """The papers' microservices: flat (state co-located with each service)."""
    return r0_ms + 0.0 * users


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Intercept and slope of a least-squares line (the papers' model fitted to data)."""
    count = len(xs)
    mx, my = sum(xs) / count, sum(ys) / count
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0
    return my - slope * mx, slope


def response_bound_ms(users: float, demand_ms: float, cores: float, think_ms: float) -> float:
    """Interactive response-time law lower bound for ``users`` closed-loop users."""
    return max(demand_ms, users * demand_ms / cores - think_ms)
