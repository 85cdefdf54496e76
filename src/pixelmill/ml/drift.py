"""Data drift: reference statistics of a model's training inputs, and a sliding-window
comparison of served inputs against them. Pure numpy.

Per image we record a small feature vector from raw intensities scaled to 0..1 by the
dtype's range (see :func:`pixelmill.ml.preprocess.intensity_unit`): percentiles 1/50/99,
mean, standard deviation, and size (rows, cols); plus a 32-bin intensity histogram.

Scores over the window of the last ``window`` served images:

* **PSI** (population stability index) of the pooled intensity histogram against the
  reference histogram — the headline ``score``;
* **KS** two-sample statistic and p-value per scalar feature (mean, p50, p99, std).

Rule of thumb (credit scoring, where PSI comes from): < 0.1 stable, 0.1-0.25 moderate,
> 0.25 shifted. A flag is raised when the window holds ``min_samples`` images and
``score > threshold``.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pixelmill.ml.preprocess import SAMPLE, intensity_unit, percentiles, sample

BINS = 32
FEATURES = ("mean", "std", "p1", "p50", "p99", "rows", "cols")
_KS_FEATURES = ("mean", "std", "p50", "p99")
#: largest number of per-image feature rows kept in a reference
MAX_REFERENCE = 2000


def image_features(image: NDArray[np.generic]) -> tuple[dict[str, float], NDArray[np.float64]]:
    """Scalar features and the normalised 32-bin histogram (sums to 1) of one image,
    from a strided sample of at most 16,384 pixels (cheap next to inference)."""
    arr = np.asarray(image)
    rows, cols = arr.shape[:2]
    if arr.ndim == 3:
        bands = arr.shape[2] - (1 if arr.shape[2] in (2, 4) else 0)
        step = max(1, int(np.sqrt(rows * cols / SAMPLE)))
        arr = arr[::step, ::step, : max(1, bands)].mean(axis=2).astype(arr.dtype)
    unit = intensity_unit(sample(arr))
    p1, p50, p99 = percentiles(unit, [1, 50, 99])
    hist = np.bincount(np.clip((unit * BINS).astype(np.int64), 0, BINS - 1), minlength=BINS)
    feats = {
        "mean": float(unit.mean()),
        "std": float(unit.std()),
        "p1": p1,
        "p50": p50,
        "p99": p99,
        "rows": float(rows),
        "cols": float(cols),
    }
    return feats, hist.astype(np.float64) / max(float(hist.sum()), 1.0)


def reference(images: list[NDArray[np.generic]]) -> dict[str, Any]:
    """Reference statistics of training images (JSON-safe, stored with the version)."""
    rows: list[dict[str, float]] = []
    pooled = np.zeros(BINS)
    for image in images[:MAX_REFERENCE]:
        feats, hist = image_features(image)
        rows.append(feats)
        pooled += hist
    pooled /= max(pooled.sum(), 1e-12)
    return {
        "version": 1,
        "count": len(rows),
        "histogram": pooled.round(8).tolist(),
        "features": {k: [round(r[k], 6) for r in rows] for k in FEATURES},
        "moments": {
            k: {
                "mean": float(np.mean([r[k] for r in rows])),
                "std": float(np.std([r[k] for r in rows])),
            }
            for k in FEATURES
        }
        if rows
        else {},
    }


def psi(expected: NDArray[np.float64], actual: NDArray[np.float64], eps: float = 1e-4) -> float:
    """Population stability index between two histograms (each normalised to sum 1)."""
    e = np.clip(np.asarray(expected, dtype=np.float64), eps, None)
    a = np.clip(np.asarray(actual, dtype=np.float64), eps, None)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def ks(sample_a: NDArray[np.float64], sample_b: NDArray[np.float64]) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and asymptotic p-value."""
    a = np.sort(np.asarray(sample_a, dtype=np.float64))
    b = np.sort(np.asarray(sample_b, dtype=np.float64))
    if a.size == 0 or b.size == 0:
        return 0.0, 1.0
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    d = float(np.max(np.abs(cdf_a - cdf_b)))
    n = a.size * b.size / (a.size + b.size)
    lam = (np.sqrt(n) + 0.12 + 0.11 / np.sqrt(n)) * d
    if lam < 0.2:  # the alternating series is useless here, and Q_KS(0.2) = 1 - 1e-26
        return d, 1.0
    k = np.arange(1, 101)
    p = float(np.clip(2 * np.sum((-1) ** (k - 1) * np.exp(-2 * (lam * k) ** 2)), 0, 1))
    return d, p


@dataclass
class DriftState:
    score: float
    flagged: bool
    window: int
    threshold: float
    ks: dict[str, dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 6),
            "metric": "psi",
            "flagged": self.flagged,
            "window": self.window,
            "threshold": self.threshold,
            "ks": self.ks,
        }


class DriftMonitor:
    """Sliding-window drift of served inputs against one version's reference.

    Thread-safe; :meth:`observe` is cheap (a strided 64k-pixel sample per image).
    ``on_flag(state)`` is called once each time the score crosses the threshold upward.
    """

    def __init__(
        self,
        ref: dict[str, Any],
        *,
        window: int = 200,
        min_samples: int = 20,
        threshold: float = 0.25,
        on_flag: Any = None,
    ) -> None:
        self.ref = ref
        self.ref_hist = np.asarray(
            ref.get("histogram") or np.full(BINS, 1 / BINS), dtype=np.float64
        )
        self.ref_features = {
            k: np.asarray(v, dtype=np.float64) for k, v in ref.get("features", {}).items()
        }
        self.min_samples = min_samples
        self.threshold = threshold
        self.on_flag = on_flag
        self._hists: deque[NDArray[np.float64]] = deque(maxlen=window)
        self._feats: deque[dict[str, float]] = deque(maxlen=window)
        self._lock = threading.Lock()
        self._flagged = False

    def observe(self, image: NDArray[np.generic]) -> DriftState:
        feats, hist = image_features(image)
        with self._lock:
            self._hists.append(hist)
            self._feats.append(feats)
            state = self._state()
            crossed = state.flagged and not self._flagged
            self._flagged = state.flagged
        if crossed and self.on_flag is not None:
            self.on_flag(state)
        return state

    def state(self) -> DriftState:
        with self._lock:
            return self._state()

    def _state(self) -> DriftState:
        n = len(self._hists)
        if n == 0:
            return DriftState(0.0, False, 0, self.threshold, {})
        pooled = np.sum(self._hists, axis=0)
        score = psi(self.ref_hist, pooled / max(pooled.sum(), 1e-12))
        tests = {}
        for k in _KS_FEATURES:
            if k in self.ref_features and self.ref_features[k].size:
                d, p = ks(self.ref_features[k], np.array([f[k] for f in self._feats]))
                tests[k] = {"statistic": round(d, 6), "p_value": round(p, 6)}
        flagged = n >= self.min_samples and score > self.threshold
        return DriftState(score, flagged, n, self.threshold, tests)
