"""Online anomaly detection on one metric series: a robust z-score. Pure numpy.

Each new sample ``x`` is scored against the recent history (the last ``window`` samples
that were not themselves anomalous)::

    z = (x - median) / max(1.4826 * MAD, floor, relative * |median|)

(1.4826 * MAD estimates the standard deviation of normal noise and, unlike it, is not
pulled up by the outliers it should find.) Only upward moves count: latency, error rate
and queue age are bad when they rise. ``floor`` and ``relative`` keep a near-constant
series (an error rate of exactly 0) from calling every small blip an anomaly. An anomaly
is raised after ``persistence`` anomalous samples in a row (one slow request is not an
incident), once per episode; anomalous samples stay out of the baseline, so a lasting
fault is not learnt as normal.

>>> d = RobustZ(warmup=5, floor=0.01)
>>> [d.update(v).raised for v in [1.0, 1.1, 0.9, 1.0, 1.05, 1.0, 5.0, 5.2]]
[False, False, False, False, False, False, False, True]
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

#: scales the MAD of normal noise to its standard deviation
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Verdict:
    value: float
    score: float  #: robust z-score (0 while warming up)
    anomalous: bool  #: this sample is out of line
    raised: bool  #: an anomaly starts here (``persistence`` anomalous samples in a row)
    median: float


class RobustZ:
    """The detector of one series; :meth:`update` once per sampling period."""

    def __init__(
        self,
        *,
        window: int = 240,
        warmup: int = 20,
        threshold: float = 6.0,
        persistence: int = 2,
        floor: float = 1e-3,
        relative: float = 0.05,
    ) -> None:
        self.history: deque[float] = deque(maxlen=window)
        self.warmup = warmup
        self.threshold = threshold
        self.persistence = persistence
        self.floor = floor
        self.relative = relative
        self._streak = 0

    def update(self, value: float) -> Verdict:
        if len(self.history) < self.warmup:
            self.history.append(value)
            return Verdict(value, 0.0, False, False, float(np.median(self.history)))
        data = np.asarray(self.history)
        median = float(np.median(data))
        mad = float(np.median(np.abs(data - median)))
        scale = max(MAD_TO_SIGMA * mad, self.floor, self.relative * abs(median))
        score = (value - median) / scale
        anomalous = score > self.threshold
        if anomalous:
            self._streak += 1
        else:
            self._streak = 0
            self.history.append(value)
        return Verdict(value, score, anomalous, self._streak == self.persistence, median)
