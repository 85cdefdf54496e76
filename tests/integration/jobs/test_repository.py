"""The job tables on SQLite and PostgreSQL: the same migrations go down and up again.

What every job store promises (guarded transitions, idempotency keys, owners, events,
publishing marks, retention) is ``tests/contract/test_jobs_contract.py``; PostgreSQL's
event notifications are ``test_event_notifications.py``."""

from __future__ import annotations

import sqlalchemy as sa

from pixelmill.backends.metadata.database import Database


def test_the_migration_goes_down_and_up_again(db: Database) -> None:
    from alembic import command
    from alembic.config import Config

    from pixelmill.backends.metadata import database

    cfg = Config()
    cfg.set_main_option("script_location", str(database._MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001_images_keys")
    assert "jobs" not in sa.inspect(db.engine).get_table_names()
    db.upgrade()
    assert {"jobs", "job_tasks", "job_events"} <= set(sa.inspect(db.engine).get_table_names())
