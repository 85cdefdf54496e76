"""Every Prometheus metric pixelmill exports, named in one place.

Multi-process safe: when several server processes run, the composition root sets
``PROMETHEUS_MULTIPROC_DIR`` before this module is first imported and ``/metrics``
aggregates all processes' files (see :func:`render_latest`).
"""

from __future__ import annotations

import os

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
RENDERS_REFUSED = Counter(
    "pixelmill_renders_refused_total",
    "Renders not computed or stopped, by reason (queue_full, queue_timeout, time_budget, "
    "client_gone).",
    ["reason"],
)
IMAGES_STORED = Gauge(
    "pixelmill_images_stored", "Images in the metadata DB.", multiprocess_mode="max"
)


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


def render_latest() -> tuple[bytes, str]:
    """The exposition text for ``/metrics``, aggregated over processes when needed."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


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
