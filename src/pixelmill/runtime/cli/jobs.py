"""``pixelmill jobs purge``: job retention, run now from the shell."""

from __future__ import annotations

import click

from pixelmill.runtime.cli._common import Finite, settings_from

#: the oldest cutoff ``--older-than`` takes: a century (beyond, no date is left to count
#: back to, and no pixelmill job is that old)
MAX_DAYS = 36500


@click.group("jobs")
def jobs_group() -> None:
    """Job maintenance."""


@jobs_group.command("purge")
@click.option(
    "--older-than",
    "older_than",
    default=None,
    type=Finite(0, MAX_DAYS),
    help=f"Days (fractions allowed, at most {MAX_DAYS}) since a job finished; default "
    "jobs.retention_days.",
)
@click.option("--dry-run", is_flag=True, help="Only count the jobs that would be deleted.")
@click.option("--data-dir", default=None, help="Data folder (SQLite, local objects).")
@click.option("--database-url", default=None, help="postgresql+psycopg://... or sqlite.")
@click.option("--storage-url", default=None, help="s3://BUCKET, file://DIR, memory://.")
def jobs_purge(
    older_than: float | None,
    dry_run: bool,
    data_dir: str | None,
    database_url: str | None,
    storage_url: str | None,
) -> None:
    """Delete finished jobs (succeeded, failed, cancelled) older than --older-than days,
    with their tasks, events and artifacts; result images stay. Workers and `pixelmill
    up` do this by themselves (jobs.retention_days); this runs it now, to the end."""
    from datetime import UTC, datetime

    from pixelmill.backends.metadata.database import Database
    from pixelmill.backends.metadata.jobs import JobRepository
    from pixelmill.runtime.container import make_storage
    from pixelmill.services.jobs import retention

    settings = settings_from(data_dir, None, database_url, storage_url, None)
    days = older_than if older_than is not None else settings.jobs.retention_days
    if older_than is None and days <= 0:
        raise click.ClickException(
            "retention is off (jobs.retention_days = 0): say how old with --older-than DAYS"
        )
    database = Database(settings.database_url, pool_size=2)
    try:
        if database.current_revision() is None:
            raise click.ClickException(
                "the metadata DB has no schema: run `pixelmill db upgrade` first"
            )
        repo = JobRepository(database)
        now = datetime.now(UTC)
        before = retention.cutoff(days, now=now)
        stamp = before.isoformat(timespec="seconds")
        if dry_run:
            count = repo.count_finished(before=before)
            click.echo(f"would delete {count} job(s) finished before {stamp} (dry run)")
            return
        result = retention.purge(
            repo,
            make_storage(settings),
            older_than_days=days,
            batch=settings.jobs.retention_batch,
            now=now,
        )
        click.echo(
            f"deleted {result.jobs} job(s) finished before {stamp} "
            f"and {result.objects} artifact object(s)"
        )
    finally:
        database.dispose()
