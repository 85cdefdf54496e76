"""0011: a database whose event log predates request ids gains the column and its index
and keeps every event (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.events import EventLog


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.server)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old' / 'pixelmill.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_events_from_before_0011_are_kept_and_get_a_request_id_column(empty_url: str) -> None:
    # given a DB at 0010 as that release made it: events without request_id, one logged
    database = Database(empty_url)
    database.upgrade("0010_login_failures")
    with database.engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_events_request_id"))
        conn.execute(sa.text("ALTER TABLE events DROP COLUMN request_id"))
        conn.execute(
            sa.text(
                "INSERT INTO events (at, action, target_type, security) "
                "VALUES (CURRENT_TIMESTAMP, 'login.failed', 'user', :yes)"
            ),
            {"yes": True},
        )
    # when it is upgraded
    database.upgrade()
    # then the old event is there, with no request id, and new ones can carry one
    (old,) = EventLog(database).list()
    assert (old.action, old.request_id) == ("login.failed", None)
    columns = {c["name"] for c in sa.inspect(database.engine).get_columns("events")}
    assert "request_id" in columns
    indexes = {i["name"] for i in sa.inspect(database.engine).get_indexes("events")}
    assert "ix_events_request_id" in indexes  # one request's events, found by its id
    database.dispose()
