"""Grafana dashboards of pixelmill, as code: ``python tools/grafana_dashboards.py`` writes
``deploy/grafana/dashboards/*.json`` (commit the result; a test fails when the committed
JSON differs from what this script generates, and another evaluates every ``expr``
against a real Prometheus scraping a real gateway and worker).

Plain JSON (Grafana dashboard schema 39), built with a few helpers: the Python
grafana-foundation-sdk is not published on PyPI. Every metric name comes from
``src/pixelmill/observability/metrics.py``; the ``pixelmill:*`` series are the recording
rules of ``deploy/prometheus/rules/slo.yml``. Panels take the Prometheus data source from
the ``datasource`` variable and use ``$__rate_interval``.

Adding a dashboard: write a function returning :func:`dashboard` (…) and list it in
:data:`DASHBOARDS`; the PromQL test picks up its expressions by itself.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
W = "$__rate_interval"

Panel = dict[str, Any]


def target(expr: str, legend: str = "__auto", ref: str = "A") -> dict[str, Any]:
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref}


def panel(
    title: str,
    exprs: list[tuple[str, str]],
    *,
    unit: str = "short",
    kind: str = "timeseries",
    description: str = "",
    thresholds: list[tuple[str, float | None]] | None = None,
) -> Panel:
    """A panel of ``kind`` drawing ``exprs`` (``(expr, legend)``) in ``unit``."""
    steps = [{"color": c, "value": v} for c, v in (thresholds or [("green", None)])]
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": [
            {
                **target(expr, legend, chr(ord("A") + i)),
                **({"format": "heatmap"} if kind == "heatmap" else {}),
            }
            for i, (expr, legend) in enumerate(exprs)
        ],
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
            "overrides": [],
        },
        "options": {"legend": {"displayMode": "table", "placement": "bottom"}}
        if kind == "timeseries"
        else {},
    }


def row(title: str) -> Panel:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def dashboard(uid: str, title: str, description: str, panels: list[Panel]) -> dict[str, Any]:
    """A dashboard laying ``panels`` out two per line; a row starts a new line."""
    x = y = 0
    placed = []
    for i, p in enumerate(panels, start=1):
        if p["type"] == "row":
            y += 8 if x else 0
            x = 0
            placed.append({**p, "id": i, "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})
            y += 1
            continue
        placed.append({**p, "id": i, "gridPos": {"h": 8, "w": 12, "x": x, "y": y}})
        x, y = (12, y) if x == 0 else (0, y + 8)
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["pixelmill"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                }
            ]
        },
        "annotations": {"list": []},
        "links": [
            {"type": "dashboards", "tags": ["pixelmill"], "title": "pixelmill", "asDropdown": True}
        ],
        "panels": placed,
    }


def ratio_of(selector: str, metric: str, by: str, window: str = W) -> str:
    """The share of ``metric``'s rate matching ``selector``, per ``by``: 0 (not "No data")
    while nothing matches, because the other series join in at 0."""
    agg = f"sum by ({by})" if by else "sum"
    return (
        f"{agg} (rate({metric}{{{selector}}}[{window}]) or rate({metric}[{window}]) * 0)"
        f" / {agg} (rate({metric}[{window}]))"
    )


def quantile(q: float, metric: str, by: str, selector: str = "") -> str:
    keep = f"{by}, le" if by else "le"
    sel = f"{{{selector}}}" if selector else ""
    return f"histogram_quantile({q}, sum by ({keep}) (rate({metric}_bucket{sel}[{W}])))"


def p50_p95(metric: str, by: str) -> list[tuple[str, str]]:
    """The median and 95th percentile of histogram ``metric`` per ``by``, legend by ``by``."""
    return [
        (quantile(q, metric, by), f"{name} {{{{{by}}}}}")
        for q, name in ((0.5, "p50"), (0.95, "p95"))
    ]


def rate_by(metric: str, by: str) -> str:
    """``metric``'s per-second rate summed per ``by`` (comma-separated labels)."""
    return f"sum by ({by}) (rate({metric}[{W}]))"


def overview() -> dict[str, Any]:
    http = "pixelmill_http_requests_total"
    return dashboard(
        "pixelmill-overview",
        "pixelmill / Overview",
        "RED per service and route, SLO burn, queues, workers, errors and breakers.",
        [
            row("Requests (RED)"),
            panel(
                "Requests per second by service",
                [(rate_by(http, "job"), "{{job}}")],
                unit="reqps",
            ),
            panel(
                "Requests per second by route",
                [(rate_by(http, "route"), "{{route}}")],
                unit="reqps",
            ),
            panel(
                "5xx share by route",
                [(ratio_of('status=~"5.."', http, "route"), "{{route}}")],
                unit="percentunit",
            ),
            panel(
                "Responses per second by status",
                [(rate_by(http, "status"), "{{status}}")],
                unit="reqps",
            ),
            panel(
                "Latency p50 / p95 by route",
                p50_p95("pixelmill_http_request_duration_seconds", "route"),
                unit="s",
            ),
            panel(
                "SLO burn rate (1 = spending the 30-day budget exactly)",
                [
                    ("pixelmill:http_errors:ratio_rate1h / 0.001", "errors, 1h"),
                    ("pixelmill:http_slow:ratio_rate1h / 0.01", "latency > 1 s, 1h"),
                    ("pixelmill:http_errors:ratio_rate6h / 0.001", "errors, 6h"),
                    ("pixelmill:http_slow:ratio_rate6h / 0.01", "latency > 1 s, 6h"),
                ],
                description="Error SLO 99.9 % non-5xx, latency SLO 99 % within 1 s "
                "(deploy/prometheus/rules/slo.yml). 14.4 over 1 h pages.",
                thresholds=[("green", None), ("orange", 6), ("red", 14.4)],
            ),
            row("Queues"),
            panel(
                "Messages ready by queue and lane",
                [("max by (queue, lane) (pixelmill_queue_messages_ready)", "{{queue}} {{lane}}")],
            ),
            panel(
                "Tasks queued / unacked (running) by queue",
                [
                    ('max by (queue) (pixelmill_queue_tasks{state="queued"})', "queued {{queue}}"),
                    (
                        'max by (queue) (pixelmill_queue_tasks{state="running"})',
                        "unacked {{queue}}",
                    ),
                ],
            ),
            panel(
                "Oldest queued task age",
                [("max by (queue) (pixelmill_queue_oldest_task_age_seconds)", "{{queue}}")],
                unit="s",
            ),
            panel(
                "Consumers by queue and lane",
                [("max by (queue, lane) (pixelmill_queue_consumers)", "{{queue}} {{lane}}")],
            ),
            row("Workers and resources"),
            panel(
                "Worker busy ratio",
                [
                    (
                        f"sum(rate(pixelmill_worker_busy_seconds_total[{W}]))"
                        " / sum(pixelmill_worker_threads)",
                        "busy",
                    )
                ],
                unit="percentunit",
            ),
            panel(
                "Tasks in flight by queue",
                [("sum by (queue) (pixelmill_worker_tasks_in_flight)", "{{queue}}")],
            ),
            panel(
                "DB pool usage",
                [
                    (
                        "sum by (pool) (pixelmill_db_pool_connections_in_use)"
                        " / sum by (pool) (pixelmill_db_pool_size)",
                        "{{pool}}",
                    )
                ],
                unit="percentunit",
            ),
            panel(
                "Queue stats readable (broker, job store)",
                [("min by (source) (pixelmill_queue_stats_up)", "{{source}}")],
            ),
            row("Errors and protection"),
            panel(
                "Instances up",
                [('up{job=~"pixelmill.*"}', "{{job}} {{instance}}")],
                thresholds=[("red", None), ("green", 1)],
            ),
            panel(
                "Circuit breakers (0 closed, 1 half-open, 2 open)",
                [("max by (breaker) (pixelmill_breaker_state)", "{{breaker}}")],
                thresholds=[("green", None), ("orange", 1), ("red", 2)],
            ),
            panel(
                "Calls refused by open breakers",
                [
                    (
                        rate_by("pixelmill_breaker_rejected_total", "breaker"),
                        "{{breaker}}",
                    )
                ],
                unit="reqps",
            ),
            panel(
                "Requests refused with 429 by budget",
                [(rate_by("pixelmill_rate_limited_total", "budget"), "{{budget}}")],
                unit="reqps",
            ),
        ],
    )


def render() -> dict[str, Any]:
    seconds = "pixelmill_render_seconds"
    return dashboard(
        "pixelmill-render",
        "pixelmill / Render",
        "Render latency, the result cache, output formats and the render gate.",
        [
            row("Latency"),
            panel(
                "Render p50 / p95 by operation",
                p50_p95(seconds, "operation"),
                unit="s",
                description="A render is counted under each operation it ran.",
            ),
            panel(
                "Render time distribution",
                [(f"sum by (le) (increase({seconds}_bucket[{W}]))", "{{le}}")],
                kind="heatmap",
            ),
            panel(
                "Render route p95 (cache hits included)",
                [
                    (
                        quantile(
                            0.95,
                            "pixelmill_http_request_duration_seconds",
                            "",
                            'route=~".*/render"',
                        ),
                        "p95",
                    )
                ],
                unit="s",
            ),
            panel(
                "Renders computed per second by operation",
                [(rate_by(f"{seconds}_count", "operation"), "{{operation}}")],
                unit="ops",
            ),
            row("Cache and formats"),
            panel(
                "Result cache hit ratio",
                [(ratio_of('result="hit"', "pixelmill_render_cache_total", ""), "hit ratio")],
                unit="percentunit",
            ),
            panel(
                "Cache lookups by result",
                [(rate_by("pixelmill_render_cache_total", "result"), "{{result}}")],
                unit="ops",
            ),
            panel(
                "Renders served per second by format",
                [(rate_by("pixelmill_renders_total", "format"), "{{format}}")],
                unit="reqps",
            ),
            panel(
                "Mean render size by format",
                [
                    (
                        rate_by("pixelmill_render_bytes_total", "format")
                        + " / "
                        + rate_by("pixelmill_renders_total", "format"),
                        "{{format}}",
                    )
                ],
                unit="bytes",
            ),
            row("Render gate (queueing)"),
            panel(
                "Renders computing / waiting for a slot",
                [
                    ("sum(pixelmill_render_gate_active)", "computing"),
                    ("sum(pixelmill_render_gate_waiting)", "waiting"),
                ],
            ),
            panel(
                "Wait for a render slot p95",
                [(quantile(0.95, "pixelmill_render_gate_wait_seconds", ""), "p95")],
                unit="s",
            ),
            panel(
                "Renders refused by reason",
                [(rate_by("pixelmill_renders_refused_total", "reason"), "{{reason}}")],
                unit="reqps",
            ),
            panel(
                "Bytes in (uploads) and out (images)",
                [
                    (f"sum(rate(pixelmill_bytes_in_total[{W}]))", "in"),
                    (rate_by("pixelmill_bytes_out_total", "kind"), "out {{kind}}"),
                ],
                unit="Bps",
            ),
        ],
    )


def jobs() -> dict[str, Any]:
    return dashboard(
        "pixelmill-jobs",
        "pixelmill / Jobs",
        "Job throughput and failures, queue age, task durations and dead letters.",
        [
            row("Throughput"),
            panel(
                "Jobs submitted per second by kind",
                [(rate_by("pixelmill_jobs_submitted_total", "kind"), "{{kind}}")],
                unit="ops",
            ),
            panel(
                "Jobs finished per second by state",
                [(rate_by("pixelmill_jobs_finished_total", "state"), "{{state}}")],
                unit="ops",
            ),
            panel(
                "Failed share of finished jobs",
                [(ratio_of('state="failed"', "pixelmill_jobs_finished_total", ""), "failed")],
                unit="percentunit",
            ),
            panel(
                "Task runs per second by queue and outcome",
                [
                    (
                        rate_by("pixelmill_job_tasks_total", "queue, outcome"),
                        "{{queue}} {{outcome}}",
                    )
                ],
                unit="ops",
            ),
            row("Latency and age"),
            panel(
                "Task duration p50 / p95 by queue",
                p50_p95("pixelmill_job_task_seconds", "queue"),
                unit="s",
            ),
            panel(
                "Wait from submit to start p95 by queue",
                [(quantile(0.95, "pixelmill_job_task_wait_seconds", "queue"), "{{queue}}")],
                unit="s",
            ),
            panel(
                "Oldest queued task age",
                [("max by (queue) (pixelmill_queue_oldest_task_age_seconds)", "{{queue}}")],
                unit="s",
            ),
            panel(
                "Tasks waiting per queue (as last submitted)",
                [("max by (queue) (pixelmill_job_tasks_queued)", "{{queue}}")],
            ),
            row("Failures"),
            panel(
                "Dead-lettered tasks (last hour)",
                [
                    (
                        "sum by (queue) (increase(pixelmill_job_dead_letters_total[1h]))",
                        "{{queue}}",
                    )
                ],
                thresholds=[("green", None), ("red", 1)],
            ),
            panel(
                "Submissions refused by backpressure",
                [(rate_by("pixelmill_jobs_rejected_total", "queue"), "{{queue}}")],
                unit="ops",
            ),
            panel(
                "Worker restarts and purged jobs (last hour)",
                [
                    ("sum(increase(pixelmill_worker_restarts_total[1h]))", "worker restarts"),
                    ("sum(increase(pixelmill_jobs_purged_total[1h]))", "jobs purged"),
                ],
            ),
        ],
    )


def ml() -> dict[str, Any]:
    predictions = "pixelmill_model_predictions_total"
    return dashboard(
        "pixelmill-ml",
        "pixelmill / ML",
        "Inference latency and batching per model, errors, training, drift, rollbacks and "
        "the anomaly detector.",
        [
            row("Inference"),
            panel(
                "Predictions per second by model and outcome",
                [(rate_by(predictions, "model, outcome"), "{{model}} {{outcome}}")],
                unit="ops",
            ),
            panel(
                "Prediction error share by model",
                [(ratio_of('outcome="error"', predictions, "model"), "{{model}}")],
                unit="percentunit",
            ),
            panel(
                "Inference latency p50 / p95 by model",
                p50_p95("pixelmill_model_inference_seconds", "model"),
                unit="s",
            ),
            panel(
                "Mean batch size by model",
                [
                    (
                        rate_by("pixelmill_model_batch_size_sum", "model")
                        + " / "
                        + rate_by("pixelmill_model_batch_size_count", "model"),
                        "{{model}}",
                    )
                ],
            ),
            row("Training, drift and the registry"),
            panel(
                "Training progress by model",
                [("max by (model) (pixelmill_training_progress_ratio)", "{{model}}")],
                unit="percentunit",
            ),
            panel(
                "Training runs (last day) by outcome",
                [("sum by (outcome) (increase(pixelmill_training_runs_total[1d]))", "{{outcome}}")],
            ),
            panel(
                "Drift score (PSI) by model and version",
                [
                    (
                        "max by (model, version) (pixelmill_model_drift_score)",
                        "{{model}}:{{version}}",
                    )
                ],
                thresholds=[("green", None), ("red", 0.25)],
                description="Above ml.drift_threshold (0.25 by default) inputs no longer "
                "look like the training data.",
            ),
            panel(
                "Registry: automatic rollbacks and drift flags (last day)",
                [
                    (
                        "sum by (model, reason) (increase(pixelmill_model_rollbacks_total[1d]))",
                        "rollback {{model}} ({{reason}})",
                    ),
                    (
                        "sum by (model) (increase(pixelmill_model_drift_flags_total[1d]))",
                        "drift flag {{model}}",
                    ),
                ],
            ),
            panel(
                "Model versions loaded",
                [("max(pixelmill_models_loaded)", "loaded")],
                kind="stat",
            ),
            row("Anomaly detector"),
            panel(
                "Anomaly score (robust z) by series",
                [("max by (series) (pixelmill_anomaly_score)", "{{series}}")],
                thresholds=[("green", None), ("red", 6)],
            ),
            panel(
                "Anomalies raised (last hour) by series",
                [("sum by (series) (increase(pixelmill_anomalies_total[1h]))", "{{series}}")],
            ),
        ],
    )


def autoscaler() -> dict[str, Any]:
    replicas = "pixelmill_autoscaler_replicas"
    return dashboard(
        "pixelmill-autoscaler",
        "pixelmill / Autoscaler",
        "The live autoscaler (pixelmill autoscaler): replicas decided against those asked "
        "for and running per service, why, and the inputs it read (docs/autoscaling.md).",
        [
            row("Replicas"),
            panel(
                "Replicas decided vs current vs ready, by service",
                [(f"max by (service, state) ({replicas})", "{{service}} {{state}}")],
            ),
            panel(
                "Decided minus ready (workers on their way, or draining)",
                [
                    (
                        f'max by (service) ({replicas}{{state="decided"}}) - '
                        f'max by (service) ({replicas}{{state="ready"}})',
                        "{{service}}",
                    )
                ],
            ),
            row("Reasons"),
            panel(
                "Decisions per minute by reason",
                [
                    (
                        rate_by("pixelmill_autoscaler_decisions_total", "reason") + " * 60",
                        "{{reason}}",
                    )
                ],
                unit="short",
            ),
            panel(
                "Dry run (1) or actuating (0); seconds since the last decision",
                [
                    ("max(pixelmill_autoscaler_dry_run)", "dry run"),
                    (
                        "time() - max(pixelmill_autoscaler_last_decision_timestamp_seconds)",
                        "since last decision",
                    ),
                ],
                kind="stat",
            ),
            row("Inputs"),
            panel(
                "Arrival rate per second, by service",
                [
                    (
                        'max by (service) (pixelmill_autoscaler_input{input="arrival_rate"})',
                        "{{service}}",
                    )
                ],
                unit="reqps",
            ),
            panel(
                "Queue: ready and unacked, by service",
                [
                    (
                        "max by (service, input) "
                        '(pixelmill_autoscaler_input{input=~"queue_ready|queue_unacked"})',
                        "{{service}} {{input}}",
                    )
                ],
            ),
            panel(
                "Oldest waiting task and median service time, by service",
                [
                    (
                        "max by (service, input) (pixelmill_autoscaler_input"
                        '{input=~"oldest_age_seconds|service_time_seconds"})',
                        "{{service}} {{input}}",
                    )
                ],
                unit="s",
            ),
        ],
    )


DASHBOARDS: dict[str, Callable[[], dict[str, Any]]] = {
    "overview": overview,
    "render": render,
    "jobs": jobs,
    "ml": ml,
    "autoscaler": autoscaler,
}


def generate() -> dict[str, str]:
    """File name -> the JSON text of every dashboard."""
    return {
        f"pixelmill-{name}.json": json.dumps(build(), indent=2, sort_keys=True) + "\n"
        for name, build in DASHBOARDS.items()
    }


def expressions() -> list[tuple[str, str, str]]:
    """``(dashboard, panel, expr)`` of every query of every panel."""
    return [
        (board["title"], p["title"], t["expr"])
        for board in (build() for build in DASHBOARDS.values())
        for p in board["panels"]
        for t in p.get("targets", [])
    ]


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in generate().items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
