"""The autoscaling composition: settings → the pure policy's config, and the plots of a
simulation (matplotlib, imported only when plots are asked for)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pixelmill.autoscale import PolicyConfig, ServiceConfig
from pixelmill.settings_autoscale import AutoscaleSettings, ScaledServiceSettings

__all__ = ["SIMULATED_QUEUE", "build_autoscaler", "make_actuator", "policy_config", "save_plots"]

#: the queue whose settings the simulator's one job pool ("jobs") uses
SIMULATED_QUEUE = "transform"


def _service(
    name: str, kind: Any, scaled: ScaledServiceSettings, settings: AutoscaleSettings
) -> ServiceConfig:
    return ServiceConfig(
        name=name,
        kind=kind,
        slo_s=scaled.slo_s,
        target=scaled.target,
        min_replicas=scaled.min_replicas,
        max_replicas=scaled.max_replicas,
        cold_start_s=scaled.cold_start_s,
        prefetch=scaled.prefetch,
        baseline_target=settings.baseline_target,
    )


def policy_config(settings: AutoscaleSettings, *, simulated: bool = False) -> PolicyConfig:
    """The policy's config from the settings tree: ``render`` plus one service per queue,
    or (``simulated``) ``render`` and ``jobs``, the simulator's single job pool."""
    services = [_service("render", "latency", settings.render, settings)]
    if simulated:
        services.append(_service("jobs", "queue_wait", settings.queues[SIMULATED_QUEUE], settings))
    else:
        services += [
            _service(queue, "queue_wait", scaled, settings)
            for queue, scaled in settings.queues.items()
        ]
    return PolicyConfig(
        services=tuple(services),
        interval_s=settings.interval_s,
        stale_after_s=settings.stale_after_s,
        scale_down_window_s=settings.scale_down_window_s,
        max_down_step=settings.max_down_step,
        down_hysteresis=settings.down_hysteresis,
        hysteresis_half_life_s=settings.hysteresis_half_life_s,
        continue_hysteresis=settings.continue_hysteresis,
        down_min_share=settings.down_min_share,
        reserve_decay_s=settings.burst_reserve_decay_s,
        panic_threshold=settings.panic_threshold,
        panic_hold_s=settings.panic_hold_s,
        forecast_bucket_s=settings.forecast_bucket_s,
        forecast_z=settings.forecast_z,
    )


def save_plots(report: dict[str, Any], runs: dict[str, Any], folder: Path) -> list[Path]:
    """Two PNGs in ``folder``: replicas against load over time for each policy, and SLO
    attainment against cost (worker-seconds). Returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    names = list(runs)
    fig, axes = plt.subplots(len(names), 1, figsize=(11, 2.1 * len(names)), sharex=True)
    axes = np.atleast_1d(axes)
    for axis, name in zip(axes, names, strict=True):
        run = runs[name]
        hours = np.arange(run.trace.ticks) * run.trace.dt / 3600
        paid = np.sum([run.paid[n] for n in run.paid], axis=0)
        load = sum(
            run.trace.arrivals[n] * run.trace.service[n].mean_s / run.trace.dt for n in run.paid
        )
        step = max(1, len(hours) // 4000)
        axis.plot(hours[::step], load[::step], lw=0.6, color="0.6", label="load (busy-worker need)")
        axis.plot(hours[::step], paid[::step], lw=0.9, label="workers paid")
        axis.set_ylabel(name, rotation=0, ha="right")
        axis.legend(loc="upper left", fontsize=7)
    axes[-1].set_xlabel("hour")
    fig.tight_layout()
    over_time = folder / "autoscale-replicas.png"
    fig.savefig(over_time, dpi=90)
    plt.close(fig)
    fig, axis = plt.subplots(figsize=(7, 4.5))
    floor = 96.0
    for name, result in report["policies"].items():
        cost = result["worker_seconds"] / 3600
        # a trace without renders or jobs has no share for them: drawn at the top
        render = 100 * (result["render_slo"] if result["render_slo"] is not None else 1.0)
        job = 100 * (result["job_slo"] if result["job_slo"] is not None else 1.0)
        line = axis.scatter(cost, max(render, floor), marker="o" if render >= floor else "v")
        axis.scatter(cost, max(job, floor), marker="^", color=line.get_facecolor())
        label = name if render >= floor else f"{name} ({render:.0f} % / {job:.0f} %)"
        axis.annotate(label, (cost, max(render, floor)), fontsize=8, xytext=(4, -10),
                      textcoords="offset points")  # fmt: skip
    axis.set_ylim(floor - 0.2, 100.1)
    axis.set_xlabel("worker-hours (o render SLO, ^ job-start SLO; v off the scale)")
    axis.set_ylabel("SLO attainment, %")
    fig.tight_layout()
    slo_cost = folder / "autoscale-slo-cost.png"
    fig.savefig(slo_cost, dpi=90)
    plt.close(fig)
    return [over_time, slo_cost]


def build_autoscaler(container: Any, *, dry_run: bool) -> Any:
    """The live autoscaler over ``container`` (its broker, job store, DB and event log)
    and the actuator ``autoscale.live.actuator`` names (none in a dry run)."""
    from pixelmill.backends.metadata.events import Actor
    from pixelmill.backends.metadata.job_timings import recent_tasks
    from pixelmill.services.autoscaler import AutoscalerService, Sources

    settings: AutoscaleSettings = container.settings.autoscale
    live = settings.live

    def tasks_since(since: Any) -> Any:
        with container.db.read() as connection:
            return recent_tasks(connection, since)

    def record_event(action: str, target: str, after: dict[str, Any]) -> None:
        container.events.record(Actor(), action, "autoscaler", target, after=after)

    sources = Sources(
        broker_stats=container.broker.queue_stats,
        store_stats=container.job_store.queue_stats,
        tasks_since=tasks_since,
        record_event=record_event,
    )
    return AutoscalerService(
        policy_config(settings),
        sources,
        None if dry_run else make_actuator(settings),
        queues=live.queues,
        window_s=live.window_s,
        short_window_s=live.short_window_s,
    )


def make_actuator(settings: AutoscaleSettings) -> Any:
    """The actuator ``autoscale.live.actuator`` names."""
    live = settings.live
    if live.actuator == "kubernetes":
        from pixelmill.backends.scaling.kubernetes import KubernetesActuator

        return KubernetesActuator.from_config(
            namespace=live.namespace, prefix=live.deployment_prefix
        )
    from pixelmill.runtime.local_actuator import LocalActuator

    return LocalActuator(
        live.queues, threads=live.worker_threads, drain_timeout_s=live.drain_timeout_s
    )
