"""``pixelmill autoscale``: the autoscaling simulator and the trace recorder.

``simulate`` runs policies over a trace (the standard seeded 24-h trace, or a CSV
recorded with ``record``) and reports per policy, as a table or as the JSON of issue 15:
``{"trace": {...}, "policies": {NAME: {render_slo, job_slo, worker_seconds,
reversals_per_service_hour, burst_violations, recovery_s, jobs_lost, peak_workers}}}``.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC
from pathlib import Path
from typing import Any

import click

from pixelmill.runtime.cli._common import Finite
from pixelmill.settings import Settings

POLICY_NAMES = ("pixelmill", "hpa", "keda_ready", "keda_unacked", "ray", "static", "oracle")


@click.group("autoscale")
def autoscale_group() -> None:
    """Autoscaling: simulate policies over a trace, record a trace from a load run."""


@autoscale_group.command("simulate")
@click.option(
    "--trace",
    "trace_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV of timestamp,kind,service_time (s); default: the standard seeded 24-h trace.",
)
@click.option(
    "--policy",
    "policies",
    multiple=True,
    type=click.Choice(POLICY_NAMES),
    help="A policy to run (repeat for more); default: all of them.",
)
@click.option(
    "--hours", type=Finite(0.01, 168), help="Synthetic trace length (h; at most 168, a week)."
)
@click.option("--scale", type=Finite(0.0001, 1000), help="Synthetic load x this (at most 1000).")
@click.option("--seed", type=int, help="Synthetic trace seed (default 15).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--plots",
    type=click.Path(file_okay=False, path_type=Path),
    help="Save PNG plots here (needs matplotlib: the autoscale extra).",
)
def simulate_command(
    trace_file: Path | None,
    policies: tuple[str, ...],
    hours: float | None,
    scale: float | None,
    seed: int | None,
    as_json: bool,
    plots: Path | None,
) -> None:
    """Run autoscaling policies over a trace and report SLOs, cost and stability."""
    from pixelmill.autoscale import sim
    from pixelmill.runtime.autoscale import policy_config, save_plots

    if plots is not None:
        _plot_folder(plots)  # before the simulation, not after it
    if trace_file is not None:
        with trace_file.open(encoding="utf-8") as lines:
            try:
                trace = sim.read_csv(lines, name=trace_file.name)
            except ValueError as error:
                raise click.BadParameter(str(error), param_hint="--trace") from error
    else:
        trace = sim.synthetic(_spec(hours, scale, seed))
    config = policy_config(Settings().autoscale, simulated=True)
    report, runs = sim.compare(trace, config, policies or POLICY_NAMES)
    if plots is not None:
        try:
            saved = save_plots(report, runs, plots)
        except ImportError as error:
            raise click.ClickException(
                "plots need matplotlib: pip install 'pixelmill[autoscale]'"
            ) from error
        click.echo("\n".join(f"saved {path}" for path in saved), err=True)
    click.echo(json.dumps(report, indent=2) if as_json else _table(report))


def _plot_folder(folder: Path) -> None:
    """Create ``folder`` (missing parents too) and check that plots can be written there,
    else a click error naming it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = error.strerror or str(error)
        raise click.BadParameter(
            f"cannot create {folder}: {reason}", param_hint="--plots"
        ) from error
    if not os.access(folder, os.W_OK | os.X_OK):
        raise click.BadParameter(f"{folder} is not writable", param_hint="--plots")


def _spec(hours: float | None, scale: float | None, seed: int | None) -> Any:
    from dataclasses import replace

    from pixelmill.autoscale.sim import TraceSpec

    spec = TraceSpec()
    if hours is not None:
        spec = replace(spec, hours=hours)
    if seed is not None:
        spec = replace(spec, seed=seed)
    if scale is not None:
        spec = replace(
            spec,
            render_peak_rate=spec.render_peak_rate * scale,
            job_peak_rate=spec.job_peak_rate * scale,
        )
    return spec


def _table(report: dict[str, Any]) -> str:
    policies = report["policies"]
    oracle = policies.get("oracle", {}).get("worker_seconds")
    head = (
        f"{'policy':<13}{'render SLO':>11}{'job SLO':>9}{'worker-h':>10}{'/oracle':>8}"
        f"{'rev/svc-h':>10}{'burst viol.':>12}{'recovery s':>11}{'lost':>6}{'peak':>6}"
    )
    lines = [f"trace: {report['trace']['name']}", head]
    for name, r in policies.items():
        ratio = f"{r['worker_seconds'] / oracle:.3f}" if oracle else "-"
        recovery = "-" if r["recovery_s"] is None else f"{r['recovery_s']:.0f}"
        lines.append(
            f"{name:<13}{_share(r['render_slo']):>11}{_share(r['job_slo']):>9}"
            f"{r['worker_seconds'] / 3600:>10.0f}{ratio:>8}"
            f"{r['reversals_per_service_hour']:>10.2f}{r['burst_violations']:>12}"
            f"{recovery:>11}{r['jobs_lost']:>6}{r['peak_workers']:>6}"
        )
    return "\n".join(lines)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


@autoscale_group.command("record")
@click.option("--database-url", help="postgresql+psycopg://... or sqlite: the job tasks.")
@click.option(
    "--access-log",
    "access_logs",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A gateway's log with access lines (observability.access_log): the renders. "
    "Repeat for several gateways.",
)
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    help="Only tasks created (renders arrived) at or after this UTC time.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV file to write (default: standard output).",
)
def record_command(
    database_url: str | None, access_logs: tuple[Path, ...], since: Any, out: Path | None
) -> None:
    """Write a replayable trace (timestamp,kind,service_time) of a real pixelmill run:
    from the database, its finished job tasks (when each was queued, its job's kind, how
    long a worker ran it); from gateway logs, its renders (when each arrived, how long
    the server took)."""
    if not database_url and not access_logs:
        raise click.UsageError("give --database-url, --access-log, or both")
    rows: list[tuple[float, str, float]] = []
    if database_url:
        from pixelmill.backends.metadata.database import Database
        from pixelmill.backends.metadata.job_timings import task_timings

        database = Database(database_url)
        try:
            with database.read() as connection:
                rows += task_timings(connection, since)
        finally:
            database.dispose()
    renders = 0
    if access_logs:
        from pixelmill.autoscale.sim.record import render_rows

        start = since.replace(tzinfo=since.tzinfo or UTC).timestamp() if since else None
        for path in access_logs:
            with path.open(encoding="utf-8", errors="replace") as lines:
                found = [
                    (at, "render", seconds)
                    for at, seconds in render_rows(lines)
                    if start is None or at >= start
                ]
            renders += len(found)
            rows += found
    rows.sort()
    stream = out.open("w", encoding="utf-8") if out else sys.stdout
    try:
        stream.write("timestamp,kind,service_time\n")
        for created, kind, seconds in rows:
            stream.write(f"{created:.6f},{kind},{seconds:.6f}\n")
    finally:
        if out:
            stream.close()
    click.echo(f"{len(rows) - renders} tasks, {renders} renders", err=True)
