"""The ``autoscale`` branch of the settings tree (:class:`pixelmill.settings.Settings`):
what each service and queue promises its users (SLO, budget, replicas) and the knobs of
the control loop. Read like every other branch (``PIXELMILL_AUTOSCALE__RENDER__SLO_S``,
``autoscale:`` in the config file); docs/autoscaling.md explains each field and reason.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ScaledServiceSettings(BaseModel):
    """One autoscaled service (render) or queue (transform, analyse, segment, train)."""

    slo_s: float = Field(
        gt=0,
        description="Render: latency SLO, wait + render (s). Queue: start budget, the "
        "longest a job may wait before a worker starts it (s).",
    )
    target: float = Field(
        0.999,
        gt=0,
        lt=1,
        description="Share of requests sized for: waiting may make at most 1 - target "
        "of them miss the SLO (the service time's own tail is not counted).",
    )
    min_replicas: int = Field(1, ge=0, description="Fewest workers, whatever the load.")
    max_replicas: int = Field(2000, ge=1, description="Most workers (the budget cap).")
    cold_start_s: float = Field(
        20.0, ge=0, description="Seconds from starting a worker to it taking work."
    )
    prefetch: int = Field(
        8, ge=0, description="Messages a worker holds unacked before it starts them."
    )


def _queue(budget_s: float, cold_start_s: float) -> ScaledServiceSettings:
    return ScaledServiceSettings(slo_s=budget_s, cold_start_s=cold_start_s)


class AutoscalerSettings(BaseModel):
    """The live autoscaler (``pixelmill autoscaler``): what it drives and how."""

    actuator: Literal["local", "kubernetes"] = Field(
        "local",
        description="local: start and stop `pixelmill worker` processes on this machine; "
        "kubernetes: the scale subresource of one Deployment per queue.",
    )
    queues: list[str] = Field(
        default_factory=lambda: ["transform", "analyse", "segment", "train"],
        description="Queues the autoscaler sizes (each a service of the policy).",
    )
    worker_threads: int = Field(
        1, ge=1, description="Task threads of each local worker (1: a replica is a server)."
    )
    drain_timeout_s: float = Field(
        600.0,
        gt=0,
        description="A stopped local worker finishes its tasks for up to this long; past it "
        "they go back to the queue (never lost).",
    )
    namespace: str = Field("pixelmill", description="Kubernetes namespace of the Deployments.")
    deployment_prefix: str = Field(
        "pixelmill-worker-", description="Kubernetes Deployment of queue Q: PREFIX + Q."
    )
    window_s: float = Field(
        120.0, gt=0, description="Arrival rate and service time: tasks of this many seconds."
    )
    short_window_s: float = Field(
        10.0, gt=0, description="Short-window arrival rate (bursts, panic mode)."
    )


class AutoscaleSettings(BaseModel):
    render: ScaledServiceSettings = ScaledServiceSettings(slo_s=0.15, cold_start_s=10.0, prefetch=0)
    queues: dict[str, ScaledServiceSettings] = Field(
        default_factory=lambda: {
            "transform": _queue(10.0, 20.0),
            "analyse": _queue(60.0, 20.0),
            "segment": _queue(60.0, 30.0),
            "train": _queue(600.0, 60.0),
        },
        description="Per queue (pixelmill.queues): start budget, replicas, cold start.",
    )
    interval_s: float = Field(2.0, gt=0, description="Seconds between two decisions.")
    stale_after_s: float = Field(
        30.0, gt=0, description="Metrics older than this hold the replicas as they are."
    )
    scale_down_window_s: float = Field(
        120.0, ge=0, description="Scale down only to the highest need of this window (s)."
    )
    max_down_step: float = Field(
        0.1, gt=0, le=1, description="Largest share of the replicas one decision removes."
    )
    down_hysteresis: float = Field(
        0.4,
        ge=0,
        lt=1,
        description="The first step down after a rise (a reversal) only when the window's "
        "need is this share below the replicas.",
    )
    hysteresis_half_life_s: float = Field(
        7200.0,
        gt=0,
        description="down_hysteresis halves every this many seconds the replicas are held.",
    )
    continue_hysteresis: float = Field(
        0.05,
        ge=0,
        lt=1,
        description="A step down that follows a step down only when it removes this share "
        "of the replicas (it reverses nothing); also the narrowest band of a first step.",
    )
    down_min_share: float = Field(
        0.01,
        ge=0,
        lt=1,
        description="No step down removes fewer workers than this share of the service's "
        "max_replicas (small steps at low load are the ones the next rise reverses).",
    )
    burst_reserve_decay_s: float = Field(
        1200.0,
        gt=0,
        description="How fast the headroom kept for sudden jumps in load fades (time constant, s).",
    )
    panic_threshold: float = Field(
        1.5, gt=1, description="Panic when the short-window need is this x the ready workers."
    )
    panic_hold_s: float = Field(60.0, ge=0, description="No scale-down this long after a panic.")
    forecast_bucket_s: float = Field(
        60.0,
        gt=0,
        description="Arrivals are summed per bucket of this many seconds for the forecast.",
    )
    forecast_z: float = Field(
        0.0,
        ge=0,
        description="The forecast adds capacity for its mean plus this many standard "
        "deviations of its one-bucket error (0: the mean, the trend alone).",
    )
    live: AutoscalerSettings = AutoscalerSettings()
    baseline_target: float = Field(
        0.7,
        gt=0,
        description="Utilisation target of the simulated baselines (HPA CPU share, KEDA "
        "messages and Ray Serve requests per replica).",
    )
