"""Hand-written statements on PostgreSQL, past SQLAlchemy: the psycopg handle of a
pooled connection, each statement in autocommit (one round trip) or in one transaction.

For wide, hand-written hot statements (the job transitions in
:mod:`~pixelmill.backends.metadata.jobs.pg_statements`, the image-by-digest look-up)
SQLAlchemy's per-execution result set-up cost more CPU than the statement itself, and
psycopg prepares a statement server-side after a few uses (docs/benchmarks.md, "Async
jobs"). :func:`session` also survives a server restart: a dead pooled connection is
replaced once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
import sqlalchemy as sa

from pixelmill.errors import BackendUnavailable
from pixelmill.observability import tracing

T = TypeVar("T")


def one(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """The first row of ``sql`` as a dict, or ``None``."""
    with tracing.db_span(sql, "postgresql"):
        cursor = conn.execute(sql, params)
    return first(cursor)


def first(cursor: psycopg.Cursor[Any]) -> dict[str, Any] | None:
    """The cursor's next row as a dict, or ``None``."""
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip(_names(cursor), row, strict=True))


def rows(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every row of ``sql`` as a dict."""
    with tracing.db_span(sql, "postgresql"):
        cursor = conn.execute(sql, params)
    names = _names(cursor)
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _names(cursor: psycopg.Cursor[Any]) -> list[str]:
    """Column names straight from the result (``cursor.description`` builds a Column
    object with type look-ups per column: ~19 % of a task's statement CPU with
    ``RETURNING *``)."""
    result = cursor.pgresult
    if result is None:
        return []
    return [(result.fname(i) or b"").decode() for i in range(result.nfields)]


def run(engine: sa.Engine, sql: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """Execute one statement on its own (autocommit: one round trip); its first row as a
    dict, or ``None``. See :func:`session`."""
    return session(engine, lambda conn: one(conn, sql, params))


def session(
    engine: sa.Engine,
    work: Callable[[psycopg.Connection[Any]], T],
    *,
    transaction: bool = False,
) -> T:
    """``work(conn)`` on the psycopg connection of a pooled connection of ``engine`` —
    each statement on its own (autocommit), or all in one ``transaction``.

    Once more on a fresh connection when the pooled one turns out dead (the server
    restarted): every statement here is guarded, so a second run after a commit whose
    answer was lost changes nothing twice. Raises ``BackendUnavailable`` when the
    server cannot be reached."""
    for attempt in (1, 2):
        try:
            fairy = engine.raw_connection()  # the pool's hang-up check included
        except sa.exc.DBAPIError as exc:
            raise BackendUnavailable(f"metadata DB unavailable: {exc.orig}") from exc
        conn: psycopg.Connection[Any] = fairy.driver_connection  # type: ignore[assignment]
        try:
            if transaction:
                with conn.transaction():
                    return work(conn)
            conn.autocommit = True
            try:
                return work(conn)
            finally:
                if not conn.broken and not conn.closed:
                    conn.autocommit = False
        except psycopg.OperationalError as exc:
            lost = conn.broken or conn.closed
            fairy.invalidate(exc)
            if lost and attempt == 1:
                continue
            raise BackendUnavailable(f"metadata DB unavailable: {exc}") from exc
        finally:
            fairy.close()
    raise AssertionError("unreachable")
