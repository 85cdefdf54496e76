"""The online anomaly monitor of a serving process (the "AI-based monitoring" loop).

Every ``healing.anomaly.interval_s`` it samples three series from this process's own
Prometheus metrics — mean HTTP latency, the share of 5xx answers, and the mean age of the
job tasks that started (queue wait) — over the last interval, feeds each to a
:class:`~pixelmill.ml.anomaly.RobustZ` detector, and when one raises an anomaly: an
``anomaly`` event in the events table, ``pixelmill_anomalies_total{series}`` and a
warning in the log. ``pixelmill_anomaly_score{series}`` carries the latest score.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from prometheus_client.metrics import MetricWrapperBase

from pixelmill.backends.metadata.events import Actor, EventLog
from pixelmill.ml.anomaly import RobustZ, Verdict
from pixelmill.observability import metrics
from pixelmill.settings_healing import AnomalySettings

log = logging.getLogger(__name__)

Series = Callable[[], float | None]

#: per series: smallest scale of normal noise (s, share, s) and relative scale
SCALES = {"latency": (0.005, 0.1), "error_rate": (0.005, 0.0), "queue_age": (0.5, 0.1)}
#: an error rate over fewer requests than this is noise (one 5xx in 3 is 33 %): skipped
MIN_REQUESTS = 20


def _sums(metric: MetricWrapperBase, suffixes: tuple[str, ...], **where: str) -> list[float]:
    """Totals of ``metric``'s samples named ``<name><suffix>`` (all label sets whose
    labels start with ``where``'s values, e.g. ``status="5"``)."""
    totals = [0.0] * len(suffixes)
    for family in metric.collect():
        for sample in family.samples:
            if not all(sample.labels.get(k, "").startswith(v) for k, v in where.items()):
                continue
            for i, suffix in enumerate(suffixes):
                if sample.name == family.name + suffix:
                    totals[i] += sample.value
    return totals


class _Delta:
    """``numerator / denominator`` of counter increases since the previous call."""

    def __init__(self, read: Callable[[], tuple[float, float]], least: float = 1) -> None:
        self.read = read
        self.least = least
        self.last = read()

    def __call__(self) -> float | None:
        now = self.read()
        num, den = now[0] - self.last[0], now[1] - self.last[1]
        self.last = now
        return num / den if den >= self.least else None


def metric_series() -> dict[str, Series]:
    """The three series, read from this process's metrics."""

    def latency() -> tuple[float, float]:
        total, count = _sums(metrics.HTTP_LATENCY, ("_sum", "_count"))
        return total, count

    def errors() -> tuple[float, float]:
        (failed,) = _sums(metrics.HTTP_REQUESTS, ("_total",), status="5")
        (total,) = _sums(metrics.HTTP_REQUESTS, ("_total",))
        return failed, total

    def queue_age() -> tuple[float, float]:
        total, count = _sums(metrics.TASK_WAIT_SECONDS, ("_sum", "_count"))
        return total, count

    return {
        "latency": _Delta(latency),
        "error_rate": _Delta(errors),
        "queue_age": _Delta(queue_age),
    }


class AnomalyMonitor:
    """Samples ``series`` and raises anomalies; :meth:`sample` once, or :meth:`start`."""

    def __init__(
        self,
        policy: AnomalySettings,
        *,
        events: EventLog | None = None,
        series: dict[str, Series] | None = None,
    ) -> None:
        self.policy = policy
        self.events = events
        self.series = series if series is not None else metric_series()
        self.detectors = {
            name: RobustZ(
                window=policy.window,
                warmup=policy.warmup,
                threshold=policy.threshold,
                persistence=policy.persistence,
                floor=SCALES.get(name, (1e-3, 0.05))[0],
                relative=SCALES.get(name, (1e-3, 0.05))[1],
            )
            for name in self.series
        }
        for name in self.series:  # exported at 0 before the first anomaly
            metrics.ANOMALIES.labels(name)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> dict[str, Verdict]:
        """Read each series once (a series with no data this interval is skipped)."""
        verdicts: dict[str, Verdict] = {}
        for name, read in self.series.items():
            value = read()
            if value is None:
                continue
            verdict = verdicts[name] = self.detectors[name].update(value)
            metrics.ANOMALY_SCORE.labels(name).set(verdict.score)
            if verdict.raised:
                self._raise(name, verdict)
        return verdicts

    def _raise(self, name: str, verdict: Verdict) -> None:
        metrics.ANOMALIES.labels(name).inc()
        log.warning(
            "anomaly in %s: %.4g against a median of %.4g (robust z %.1f)",
            name,
            verdict.value,
            verdict.median,
            verdict.score,
        )
        if self.events is None:
            return
        after: dict[str, Any] = {
            "value": verdict.value,
            "median": verdict.median,
            "score": round(verdict.score, 2),
        }
        try:
            self.events.record(Actor(), "anomaly", "series", name, after=after)
        except Exception:  # the metric and the log have it; the event is best effort
            log.exception("could not record the anomaly event")

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pm-anomaly", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.policy.interval_s):
            try:
                self.sample()
            except Exception:
                log.exception("anomaly sampling failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
