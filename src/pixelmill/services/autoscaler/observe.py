"""Live metrics → the policy's :class:`~pixelmill.autoscale.Observations` (no I/O here:
the rows are read by the caller, time is an argument).

Per queue, from three sources:

* the broker (``Broker.queue_stats``: the broker's own passive-declare counters): ready
  messages and consumers, both lanes summed;
* the job store (``JobRepository.queue_stats``): tasks ``running`` (started, not yet
  acknowledged: the unacked and in-flight count) and the oldest ``queued`` task;
* the task timings of the last ``window_s`` (the jobs DB): arrival rate over the long
  and the short window (every task created), and the lognormal service time of the
  tasks that *succeeded* (a failed or cancelled task's run time does not say how long
  the work takes: a task that fails at once on a missing input took 14 ms); see
  :func:`fit_service_time` for how few samples and outliers are handled;
* the actuator: replicas asked for and replicas running.

A source that could not be read makes its queues' observation ``None``: the policy then
holds the replicas as they are (``missing_metrics``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from pixelmill.autoscale import Observation, Observations, ServiceTime

__all__ = ["Reading", "TaskRow", "fit_service_time", "observations"]

#: (queue, created at, started at or None, finished at or None, task state), unix seconds
TaskRow = tuple[str, float, float | None, float | None, str]

#: before any task of a queue succeeded: an assumed 1-s median with a wide spread
DEFAULT_SERVICE = ServiceTime(median_s=1.0, sigma=1.0)
#: fewer run times than this fit no spread: their median with :data:`ASSUMED_SIGMA`
MIN_FIT_SAMPLES = 10
#: the spread assumed from too few run times (mean = 1.13 x median)
ASSUMED_SIGMA = 0.5
#: the widest spread ever fitted (mean = 90 x median); the job mix of the simulator's
#: standard trace has sigma 2.01
MAX_SIGMA = 3.0
MIN_SIGMA = 0.05


@dataclass(frozen=True, slots=True)
class Reading:
    """What one sampling read; ``None`` for a source that failed."""

    at: float
    broker: Sequence[tuple[str, str, int, int]] | None
    store: Sequence[tuple[str, str, int, datetime | None]] | None
    tasks: Sequence[TaskRow] | None
    #: queue -> (replicas asked for, replicas running); ``None``: unreadable
    replicas: Mapping[str, tuple[int, int] | None]


def fit_service_time(durations: Sequence[float]) -> ServiceTime:
    """A lognormal fitted to the run times (s) of tasks that succeeded: their median, and
    a spread bounded so that a few outliers cannot blow the mean up.

    * none: :data:`DEFAULT_SERVICE`;
    * fewer than :data:`MIN_FIT_SAMPLES`: too few to fit a spread: the median of the run
      times with :data:`ASSUMED_SIGMA`;
    * more: sigma of the logs, but never above the sigma at which the lognormal's mean
      (median x exp(sigma^2 / 2)) would pass the mean observed, nor above
      :data:`MAX_SIGMA`. (The logs of a few very short runs spread the logs a lot and
      would put the fitted mean far above anything observed.)
    """
    runs = [max(d, 1e-3) for d in durations if math.isfinite(d)]
    if not runs:
        return DEFAULT_SERVICE
    logs = [math.log(d) for d in runs]
    median = math.exp(statistics.median(logs))
    if len(runs) < MIN_FIT_SAMPLES:
        return ServiceTime(median_s=median, sigma=ASSUMED_SIGMA)
    spread = statistics.pstdev(logs)
    mean = statistics.fmean(runs)
    to_mean = math.sqrt(2 * math.log(mean / median)) if mean > median else 0.0
    return ServiceTime(median_s=median, sigma=max(MIN_SIGMA, min(spread, to_mean, MAX_SIGMA)))


def _rate(rows: Sequence[TaskRow], since: float, span_s: float) -> float:
    return sum(1 for _, created, *_ in rows if created >= since) / span_s


def observations(
    reading: Reading, queues: Sequence[str], *, window_s: float, short_window_s: float
) -> Observations:
    """The policy's observations of ``queues`` (each a service) at ``reading.at``."""
    services: dict[str, Observation | None] = {}
    for queue in queues:
        sized = reading.replicas.get(queue)
        if reading.broker is None or reading.store is None or reading.tasks is None or not sized:
            services[queue] = None
            continue
        ready = sum(n for q, _, n, _ in reading.broker if q == queue)
        counts = {state: n for q, state, n, _ in reading.store if q == queue}
        oldest = [t for q, s, _, t in reading.store if q == queue and s == "queued" and t]
        age = max(0.0, reading.at - min(t.timestamp() for t in oldest)) if oldest else 0.0
        rows = [row for row in reading.tasks if row[0] == queue]
        done = [
            f - s
            for _, _, s, f, state in rows
            if state == "succeeded" and s is not None and f is not None
        ]
        running = counts.get("running", 0)
        asked, up = sized
        services[queue] = Observation(
            at=reading.at,
            arrival_rate=_rate(rows, reading.at - window_s, window_s),
            short_rate=_rate(rows, reading.at - short_window_s, short_window_s),
            queue_ready=ready,
            queue_unacked=running,
            oldest_age_s=age,
            service=fit_service_time(done),
            in_flight=running,
            cpu=min(1.0, running / up) if up else 0.0,
            replicas=asked,
            ready=up,
        )
    return Observations(now=reading.at, services=services)
