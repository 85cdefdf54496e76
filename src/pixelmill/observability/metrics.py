"""Every Prometheus metric pixelmill exports, named in one place.

Multi-process safe: when several server processes run, the composition root sets
``PROMETHEUS_MULTIPROC_DIR`` before this module is first imported and ``/metrics``
aggregates all processes' files (see :func:`render_latest`). Gauges of a process's own
state sum over live processes (``livesum``). Labels never hold ids: routes are the
matched templates, models and queues are names from small sets.

The queue metrics are read at scrape time (:class:`QueueCollector`), from the broker
and the job store, by the process that answers the scrape.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

HTTP_REQUESTS = Counter(
    "pixelmill_http_requests_total", "HTTP requests served.", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "pixelmill_http_request_duration_seconds",
    "HTTP request latency.",
    ["method", "route", "status"],
    buckets=_LATENCY,
)
RENDER_SECONDS = Histogram(
    "pixelmill_render_seconds",
    "Time to decode, transform and encode one render, labelled by each operation it ran "
    "(libvips fuses a pipeline, so a render's time is counted once under each of its ops).",
    ["operation"],
    buckets=_LATENCY,
)
CACHE_REQUESTS = Counter("pixelmill_render_cache_total", "Result cache lookups.", ["result"])
BYTES_IN = Counter("pixelmill_bytes_in_total", "Bytes received in uploads.")
BYTES_OUT = Counter("pixelmill_bytes_out_total", "Bytes sent in image responses.", ["kind"])
UPLOADS = Counter("pixelmill_uploads_total", "Uploads by outcome.", ["outcome"])
RATE_LIMITED = Counter(
    "pixelmill_rate_limited_total",
    "Requests refused with 429, by whose budget (key, address, auth_failures).",
    ["budget"],
)
QUOTA_DENIALS = Counter(
    "pixelmill_quota_denials_total",
    "Requests and training runs refused by a user's quota, by quota (never by user).",
    ["quota"],
)
RENDERS_REFUSED = Counter(
    "pixelmill_renders_refused_total",
    "Renders not computed or stopped, by reason (queue_full, queue_timeout, time_budget, "
    "client_gone).",
    ["reason"],
)
RENDERS = Counter("pixelmill_renders_total", "Renders served, hits too, by format.", ["format"])
RENDER_BYTES = Counter("pixelmill_render_bytes_total", "Bytes of renders, by format.", ["format"])
RENDER_GATE_ACTIVE = Gauge(
    "pixelmill_render_gate_active",
    "Renders computing now (each holds one of render.max_concurrent slots).",
    multiprocess_mode="livesum",
)
RENDER_GATE_WAITING = Gauge(
    "pixelmill_render_gate_waiting",
    "Renders waiting for a slot (at most render.max_queue per process).",
    multiprocess_mode="livesum",
)
RENDER_GATE_WAIT_SECONDS = Histogram(
    "pixelmill_render_gate_wait_seconds",
    "Time a render waited for its slot (0 when one was free).",
    buckets=_LATENCY,
)
IMAGES_STORED = Gauge("pixelmill_images_stored", "Images in the DB.", multiprocess_mode="max")
RENDER_INTERMEDIATES = Counter(
    "pixelmill_render_intermediate_total", "Decoded-original lookups (hit|miss|shared).", ["result"]
)


def _zero(counter: Counter, *values: str) -> None:
    """Export ``counter`` at 0 for each of its fixed label values before the first event:
    a series that appears only once something went wrong makes dashboards show "No data"
    and ``rate()``/``increase()`` miss the first increment."""
    for value in values:
        counter.labels(value)


_zero(CACHE_REQUESTS, "hit", "miss")
_zero(RENDER_INTERMEDIATES, "hit", "miss", "shared")
_zero(BYTES_OUT, "render", "original")
_zero(UPLOADS, "created", "duplicate", "rejected")
_zero(RATE_LIMITED, "key", "address", "auth_failures")
_zero(RENDERS_REFUSED, "queue_full", "queue_timeout", "time_budget", "client_gone")


# -- ML: serving, drift, training (docs/ml.md) ---------------------------------------------
MODEL_PREDICTIONS = Counter(
    "pixelmill_model_predictions_total",
    "Model predictions by model, version and outcome.",
    ["model", "version", "outcome"],
)
MODEL_INFERENCE_SECONDS = Histogram(
    "pixelmill_model_inference_seconds",
    "Time of one prediction (pre-processing, tiles, batching wait, runtime, post-processing).",
    ["model"],
    buckets=_LATENCY,
)
MODEL_BATCH_SIZE = Histogram(
    "pixelmill_model_batch_size",
    "Inputs per runtime call after dynamic batching.",
    ["model"],
    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32, 64),
)
MODEL_DRIFT_SCORE = Gauge(
    "pixelmill_model_drift_score",
    "Input drift (PSI of intensity histograms, served window vs training reference).",
    ["model", "version"],
    multiprocess_mode="max",
)
MODEL_DRIFT_FLAGS = Counter(
    "pixelmill_model_drift_flags_total",
    "Times the drift score crossed its threshold upward.",
    ["model", "version"],
)
MODELS_LOADED = Gauge(
    "pixelmill_models_loaded", "Model versions loaded for serving.", multiprocess_mode="max"
)
TRAINING_RUNS = Counter("pixelmill_training_runs_total", "Training runs by outcome.", ["outcome"])
_zero(TRAINING_RUNS, "succeeded", "failed", "cancelled")


TRAINING_PROGRESS = Gauge(
    "pixelmill_training_progress_ratio",
    "Progress of the running training of each model, 0..1 (1 once it ended).",
    ["model"],
    multiprocess_mode="livemax",
)


# -- USE: workers, DB pools ----------------------------------------------------------------
WORKER_THREADS = Gauge(
    "pixelmill_worker_threads",
    "Task threads of job-running processes (busy ratio: "
    "sum(rate(pixelmill_worker_busy_seconds_total)) / sum(pixelmill_worker_threads)).",
    multiprocess_mode="livesum",
)
WORKER_IN_FLIGHT = Gauge(
    "pixelmill_worker_tasks_in_flight",
    "Tasks running right now.",
    ["queue"],
    multiprocess_mode="livesum",
)
WORKER_BUSY_SECONDS = Counter(
    "pixelmill_worker_busy_seconds_total",
    "Seconds task threads spent running tasks.",
    ["queue"],
)
DB_POOL_IN_USE = Gauge(
    "pixelmill_db_pool_connections_in_use",
    "DB connections checked out of the pool.",
    ["pool"],
    multiprocess_mode="livesum",
)
DB_POOL_SIZE = Gauge(
    "pixelmill_db_pool_size",
    "Connections each pool keeps (it may open max_overflow more under load).",
    ["pool"],
    multiprocess_mode="livesum",
)


def render_latest() -> tuple[bytes, str]:
    """The exposition text for ``/metrics``, aggregated over processes when needed, plus
    the scrape-time collectors of this process (:func:`add_scrape_collector`)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest()
    return body + generate_latest(_scrape_registry), CONTENT_TYPE_LATEST


def process_exiting() -> None:
    """Drop this process's ``live*`` gauges from the shared multi-process folder (a
    process that exits cleanly calls it; one that crashed keeps its last values until
    the folder is emptied at the next start)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(os.getpid())


_scrape_registry = CollectorRegistry(auto_describe=False)
_scrape_collectors: dict[str, Any] = {}
log = logging.getLogger(__name__)


def add_scrape_collector(name: str, collector: Any) -> None:
    """Serve ``collector`` on this process's ``/metrics`` (replacing an earlier one of
    the same ``name``: a process has one job store and one broker at a time)."""
    old = _scrape_collectors.pop(name, None)
    if old is not None:
        _scrape_registry.unregister(old)
    _scrape_collectors[name] = collector
    _scrape_registry.register(collector)


class QueueCollector:
    """USE metrics of the job queues, read when scraped (at most every ``ttl_s``):

    * from the broker, per queue and lane: ready messages and consumers
      (``pixelmill_queue_messages_ready``, ``pixelmill_queue_consumers``);
    * from the job store, per queue: tasks ``queued`` (accepted, not started) and
      ``running`` (started, unacknowledged) and the age of the oldest queued task
      (``pixelmill_queue_tasks``, ``pixelmill_queue_oldest_task_age_seconds``);
    * ``pixelmill_queue_stats_up{source}``: 0 when a source could not be read.
    """

    def __init__(
        self,
        broker_stats: Callable[[], list[tuple[str, str, int, int]]],
        store_stats: Callable[[], list[tuple[str, str, int, datetime | None]]],
        queues: tuple[str, ...],
        ttl_s: float = 5.0,
    ) -> None:
        self.broker_stats = broker_stats
        self.store_stats = store_stats
        self.queues = queues
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Any]] = (0.0, [])

    def collect(self) -> Iterator[Any]:
        with self._lock:
            at, families = self._cached
            if time.monotonic() - at > self.ttl_s:
                families = self._read()
                self._cached = (time.monotonic(), families)
        yield from families

    def _read(self) -> list[Any]:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily(
            "pixelmill_queue_stats_up", "Whether queue stats could be read.", labels=["source"]
        )
        ready = GaugeMetricFamily(
            "pixelmill_queue_messages_ready",
            "Messages ready in the broker per queue and lane.",
            labels=["queue", "lane"],
        )
        consumers = GaugeMetricFamily(
            "pixelmill_queue_consumers",
            "Consumers attached per queue and lane.",
            labels=["queue", "lane"],
        )
        try:
            for queue, lane, n_ready, n_consumers in self.broker_stats():
                ready.add_metric([queue, lane], n_ready)
                consumers.add_metric([queue, lane], n_consumers)
            up.add_metric(["broker"], 1)
        except Exception as exc:
            log.warning("queue stats: broker unreadable: %s", type(exc).__name__)
            up.add_metric(["broker"], 0)
        tasks = GaugeMetricFamily(
            "pixelmill_queue_tasks",
            "Tasks per queue: queued (accepted, not started) and running (unacked).",
            labels=["queue", "state"],
        )
        oldest = GaugeMetricFamily(
            "pixelmill_queue_oldest_task_age_seconds",
            "Age of the oldest queued task per queue (0 when none waits).",
            labels=["queue"],
        )
        try:
            rows = self.store_stats()
            counts = {(q, s): n for q, s, n, _ in rows}
            ages = {q: t for q, s, _, t in rows if s == "queued" and t is not None}
            now = datetime.now(UTC)
            for queue in self.queues:
                for state in ("queued", "running"):
                    tasks.add_metric([queue, state], counts.get((queue, state), 0))
                age = (now - ages[queue]).total_seconds() if queue in ages else 0.0
                oldest.add_metric([queue], max(age, 0.0))
            up.add_metric(["store"], 1)
        except Exception as exc:
            log.warning("queue stats: job store unreadable: %s", type(exc).__name__)
            up.add_metric(["store"], 0)
        return [up, ready, consumers, tasks, oldest]


# -- async jobs ---------------------------------------------------------------------------
JOBS_SUBMITTED = Counter("pixelmill_jobs_submitted_total", "Jobs accepted.", ["kind", "queue"])
JOBS_REJECTED = Counter(
    "pixelmill_jobs_rejected_total", "Job submissions refused by backpressure.", ["queue"]
)
JOBS_FINISHED = Counter(
    "pixelmill_jobs_finished_total", "Jobs that reached a final state.", ["kind", "state"]
)
TASKS_RUN = Counter(
    "pixelmill_job_tasks_total", "Task runs on workers by outcome.", ["queue", "outcome"]
)
TASK_SECONDS = Histogram(
    "pixelmill_job_task_seconds", "Wall time of one task run.", ["queue"], buckets=_LATENCY
)
TASK_WAIT_SECONDS = Histogram(
    "pixelmill_job_task_wait_seconds",
    "From submit to the first start of a task (enqueue -> start latency).",
    ["queue"],
    buckets=_LATENCY,
)
JOBS_PURGED = Counter(
    "pixelmill_jobs_purged_total",
    "Finished jobs deleted by retention (jobs.retention_days or `pixelmill jobs purge`).",
)
DEAD_LETTERS = Counter(
    "pixelmill_job_dead_letters_total",
    "Tasks dead-lettered (retries or deliveries exhausted).",
    ["queue"],
)


def queues_known(queues: tuple[str, ...]) -> None:
    """Export the per-queue failure counters at 0 (a job service calls it at start)."""
    for queue in queues:
        DEAD_LETTERS.labels(queue)
        JOBS_REJECTED.labels(queue)


TASKS_QUEUED = Gauge(
    "pixelmill_job_tasks_queued",
    "Tasks waiting per queue (as last seen).",
    ["queue"],
    multiprocess_mode="max",
)


# -- self-healing: breakers, supervisor, rollback, anomalies (docs/operations.md) -------------
BREAKER_STATE = Gauge(
    "pixelmill_breaker_state",
    "Circuit breaker state per breaker: 0 closed, 1 half-open, 2 open (worst process).",
    ["breaker"],
    multiprocess_mode="max",
)
BREAKER_TRANSITIONS = Counter(
    "pixelmill_breaker_transitions_total",
    "Circuit breaker state changes, by the state entered.",
    ["breaker", "state"],
)
BREAKER_REJECTED = Counter(
    "pixelmill_breaker_rejected_total",
    "Calls refused fast (503) because their breaker was open.",
    ["breaker"],
)
WORKER_RESTARTS = Counter(
    "pixelmill_worker_restarts_total", "Crashed local worker processes restarted."
)
MODEL_ROLLBACKS = Counter(
    "pixelmill_model_rollbacks_total",
    "Automatic rollbacks of a newly promoted version, by model and breached threshold.",
    ["model", "reason"],
)
ANOMALIES = Counter(
    "pixelmill_anomalies_total", "Anomalies raised by the online detector.", ["series"]
)
ANOMALY_SCORE = Gauge(
    "pixelmill_anomaly_score",
    "Latest robust z-score of each watched series (|x - median| / (1.4826 MAD)).",
    ["series"],
    multiprocess_mode="max",
)

#: why :class:`pixelmill.services.inference.rollback` rolls a version back (a bounded label)
ROLLBACK_REASONS = ("error_rate", "latency", "drift")


def model_loaded(model: str, version: str) -> None:
    """Export a newly loaded version's failure counters at 0 (errors, drift flags,
    rollbacks), so error ratios and alerts have a series before the first failure."""
    MODEL_PREDICTIONS.labels(model, version, "error")
    MODEL_DRIFT_FLAGS.labels(model, version)
    for reason in ROLLBACK_REASONS:
        MODEL_ROLLBACKS.labels(model, reason)
