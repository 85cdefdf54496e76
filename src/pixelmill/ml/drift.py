"""Data drift: reference statistics of a model's training inputs, and a sliding-window
comparison of served inputs against them. Pure numpy.

Features are computed **in the model's own input space**: the image becomes the model's
planes (:func:`~pixelmill.ml.preprocess.to_planes`, ``channels``) normalised per image
between its ``p_low`` and ``p_high`` percentiles, exactly as the runtime does before
inference (:class:`~pixelmill.ml.spec.InputSpec`). So the same scene saved as 8-bit, as
12-bit in a 16-bit PNG (common in microscopy) or as full 16-bit gives the same features:
the model sees the same input, and drift must not fire. (Version 1 references scaled raw
intensities by the file's dtype range; a 12-in-16-bit image then scored PSI ~3.8 against a
0.25 threshold on every request. Those references are kept but not compared: see
:attr:`DriftMonitor.comparable`.)

Per image we record: percentiles 1/50/99, mean and standard deviation of the normalised
values, and size (rows, cols); plus a 32-bin histogram of the normalised values over
``RANGE`` (values outside are counted in the end bins).

Scores over the window of the last ``window`` served images:

* **PSI** (population stability index) of the pooled histogram against the reference
  histogram — the headline ``score``;
* **KS** two-sample statistic and p-value per scalar feature (mean, p50, p99, std).

Rule of thumb (credit scoring, where PSI comes from): < 0.1 stable, 0.1-0.25 moderate,
> 0.25 shifted. A flag is raised when the window holds ``min_samples`` images and
``score > threshold``.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pixelmill.ml.preprocess import (
    SAMPLE,
    normalize,
    normalized_with_percentiles,
    percentiles,
    to_planes,
)
from pixelmill.ml.spec import InputSpec

BINS = 32
#: normalised values binned by the histogram (0..1 is p_low..p_high of each image)
RANGE = (-0.25, 1.25)
#: the reference format computed in model-input space
REFERENCE_VERSION = 2
FEATURES = ("mean", "std", "p1", "p50", "p99", "rows", "cols")
_KS_FEATURES = ("mean", "std", "p50", "p99")
#: largest number of per-image feature rows kept in a reference
MAX_REFERENCE = 2000


def space(spec: InputSpec | None) -> dict[str, float]:
    """The normalisation drift features are computed in (stored with a reference)."""
    spec = spec or InputSpec()
    return {"channels": spec.channels, "p_low": spec.p_low, "p_high": spec.p_high}


def image_features(
    image: NDArray[np.generic], norm: dict[str, float] | None = None
) -> tuple[dict[str, float], NDArray[np.float64]]:
    """Scalar features and the normalised 32-bin histogram (sums to 1) of one image in
    the model's input space ``norm`` (:func:`space`), from a strided sample of about
    16,384 pixels (cheap next to inference)."""
    norm = norm or space(None)
    arr = np.asarray(image)
    rows, cols = arr.shape[:2]
    step = max(1, int(np.sqrt(rows * cols / SAMPLE)))
    planes = to_planes(arr[::step, ::step], int(norm["channels"]))
    if len(planes) == 1:
        unit, (p1, p50, p99) = normalized_with_percentiles(
            planes[0], float(norm["p_low"]), float(norm["p_high"]), [1, 50, 99]
        )
    else:
        unit = normalize(planes, float(norm["p_low"]), float(norm["p_high"])).ravel()
        p1, p50, p99 = percentiles(unit, [1, 50, 99])
    low, high = RANGE
    bins = np.clip(((unit - low) / (high - low) * BINS).astype(np.int64), 0, BINS - 1)
    hist = np.bincount(bins, minlength=BINS)
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


def reference(images: list[NDArray[np.generic]], spec: InputSpec | None = None) -> dict[str, Any]:
    """Reference statistics of training images in the input space of ``spec`` (the model
    trained on them); JSON-safe, stored with the version."""
    norm = space(spec)
    rows: list[dict[str, float]] = []
    pooled = np.zeros(BINS)
    for image in images[:MAX_REFERENCE]:
        feats, hist = image_features(image, norm)
        rows.append(feats)
        pooled += hist
    pooled /= max(pooled.sum(), 1e-12)
    return {
        "version": REFERENCE_VERSION,
        "space": norm,
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


class SortedSample:
    """One side of repeated KS tests, prepared once: its values sorted (float64) and its
    empirical CDF at each of them (a monitor's reference against every window)."""

    def __init__(self, values: Any) -> None:
        self.values = np.sort(np.asarray(values, dtype=np.float64))
        self.cdf = np.searchsorted(self.values, self.values, side="right") / max(
            self.values.size, 1
        )


def ks(
    sample_a: NDArray[np.float64] | SortedSample, sample_b: NDArray[np.float64]
) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and asymptotic p-value. The statistic is
    the largest CDF difference over both samples' values, taken over ``a``'s and
    ``b``'s in turn (the same numbers as over their concatenation)."""
    prepared = sample_a if isinstance(sample_a, SortedSample) else SortedSample(sample_a)
    a = prepared.values
    b = np.sort(np.asarray(sample_b, dtype=np.float64))
    if a.size == 0 or b.size == 0:
        return 0.0, 1.0
    at_a = np.abs(prepared.cdf - np.searchsorted(b, a, side="right") / b.size)
    at_b = np.abs(
        np.searchsorted(a, b, side="right") / a.size - np.searchsorted(b, b, side="right") / b.size
    )
    d = float(max(at_a.max(), at_b.max()))
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
    #: False for a reference in the old (dtype-range) space: nothing is compared
    comparable: bool = True

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "score": round(self.score, 6),
            "metric": "psi",
            "flagged": self.flagged,
            "window": self.window,
            "threshold": self.threshold,
            "ks": self.ks,
        }
        if not self.comparable:
            body["reference"] = "outdated: computed before model-input normalisation; retrain"
        return body


#: the note of a model's ``drift`` audit event (written by :func:`flag_note`)
_FLAG_NOTE = re.compile(
    r"PSI (?P<score>[0-9.]+) > (?P<threshold>[0-9.]+(?:e-?[0-9]+)?) "
    r"over the last (?P<window>[0-9]+) inputs"
)


def flag_note(state: DriftState) -> str:
    """The note a ``drift`` audit event carries; :func:`parse_flag_note` reads it back."""
    return f"PSI {state.score:.3f} > {state.threshold} over the last {state.window} inputs"


def parse_flag_note(note: str | None) -> dict[str, float] | None:
    """``{"score", "threshold", "window"}`` of a :func:`flag_note` (``None`` otherwise).

    Examples
    --------
    >>> parse_flag_note("PSI 0.412 > 0.25 over the last 50 inputs")
    {'score': 0.412, 'threshold': 0.25, 'window': 50.0}
    """
    found = _FLAG_NOTE.search(note or "")
    if found is None:
        return None
    return {k: float(v) for k, v in found.groupdict().items()}


class DriftMonitor:
    """Sliding-window drift of served inputs against one version's reference.

    Thread-safe; :meth:`observe` is cheap (a strided 16k-pixel sample per image).
    ``on_flag(state)`` is called once each time the score crosses the threshold upward.
    Served images are featurised in the normalisation the reference records.
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
        self.ref_features = {  # prepared once: every observation's KS tests use them
            k: SortedSample(v) for k, v in ref.get("features", {}).items()
        }
        self.comparable = int(ref.get("version", 1)) >= REFERENCE_VERSION
        self.norm = dict(ref.get("space") or space(None))
        self.min_samples = min_samples
        self.threshold = threshold
        self.on_flag = on_flag
        self._hists: deque[NDArray[np.float64]] = deque(maxlen=window)
        self._feats: deque[dict[str, float]] = deque(maxlen=window)
        self._lock = threading.Lock()
        self._flagged = False

    def observe(self, image: NDArray[np.generic]) -> DriftState:
        if not self.comparable:
            return self.state()
        feats, hist = image_features(image, self.norm)
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
            return DriftState(0.0, False, 0, self.threshold, {}, self.comparable)
        pooled = np.sum(self._hists, axis=0)
        score = psi(self.ref_hist, pooled / max(pooled.sum(), 1e-12))
        tests = {}
        for k in _KS_FEATURES:
            if k in self.ref_features and self.ref_features[k].values.size:
                d, p = ks(self.ref_features[k], np.array([f[k] for f in self._feats]))
                tests[k] = {"statistic": round(d, 6), "p_value": round(p, 6)}
        flagged = n >= self.min_samples and score > self.threshold
        return DriftState(score, flagged, n, self.threshold, tests)
