"""Group commit: the hot statements of concurrent callers in one transaction.

Each job costs three synchronous-or-not commits (create in the gateway, start and finish
in a worker). Under load many of them are in flight at once in one process — the
gateway's submit threads, a worker's task threads — and each paid its own round trip
and its own commit (a WAL flush and, for ``synchronous_commit=on``, an fsync wait).
:class:`GroupCommit` lets them share: the first caller to arrive runs its statement at
once (alone: exactly the single autocommit statement it was before, so a quiet system's
latency does not change); callers that arrive while a statement is in flight queue up,
and when it returns the next leader runs *all* of them in one transaction, pipelined
(psycopg pipeline mode: one round trip for the lot, one ``COMMIT``).

What each caller is promised does not change: :meth:`GroupCommit.run` returns only
after the transaction holding its statement committed (with that engine's durability:
``synchronous_commit`` on or off), and returns its own statement's first row. The
statements must be guarded single statements that lock at most one job row (the job
transitions of :mod:`~pixelmill.backends.metadata.jobs.pg_statements`): a batch runs
them in job-id order, so two batches of two processes lock rows in the same order and
cannot deadlock. If a batch fails as a whole (one statement's error aborts the
transaction, nothing of it committed), every statement of it runs again on its own, so
each caller gets its own answer or its own error — as without grouping.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import psycopg
import sqlalchemy as sa

from pixelmill.backends.metadata import pg_prepared

log = logging.getLogger(__name__)

#: most statements in one transaction (a bound on the lock set and the pipeline)
MAX_BATCH = 64


class _Call:
    __slots__ = ("done", "error", "lead", "params", "result", "sql")

    def __init__(self, sql: str, params: dict[str, Any]) -> None:
        self.sql, self.params = sql, params
        self.done = threading.Event()
        self.lead = False
        self.result: dict[str, Any] | None = None
        self.error: BaseException | None = None

    def outcome(self) -> dict[str, Any] | None:
        if self.error is not None:
            raise self.error
        return self.result


def _order(call: _Call) -> str:
    params = call.params
    return str(params.get("job_id") or params.get("id") or "")


class GroupCommit:
    """Runs statements on ``engine`` (see the module doc); one per engine and process."""

    def __init__(self, engine: sa.Engine, *, max_batch: int = MAX_BATCH) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._queued: list[_Call] = []
        self._busy = False

    def run(self, sql: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """The first row of ``sql`` (``None`` if none), once it is committed."""
        call = _Call(sql, params)
        with self._lock:
            self._queued.append(call)
            lead = not self._busy
            self._busy = True
        if not lead:
            call.done.wait()
            if not call.lead:  # a leader ran it
                return call.outcome()
        with self._lock:
            batch, self._queued = self._queued[: self.max_batch], self._queued[self.max_batch :]
        try:
            self._execute(batch)
        finally:
            with self._lock:
                if self._queued:  # arrived meanwhile: the first of them leads the next batch
                    nxt = self._queued[0]
                    nxt.lead = True
                    nxt.done.set()
                else:
                    self._busy = False
            for other in batch:
                if other is not call:
                    other.done.set()
        return call.outcome()

    def _execute(self, batch: list[_Call]) -> None:
        """Each call's result or error set; never raises."""
        if len(batch) > 1:
            batch.sort(key=_order)
            try:
                results = pg_prepared.session(self.engine, lambda conn: _pipelined(conn, batch))
            except Exception as exc:
                # nothing of it committed: each statement again, alone, for its own answer
                log.debug("a group of %d statements failed (%r); one by one", len(batch), exc)
            else:
                for call, result in zip(batch, results, strict=True):
                    call.result = result
                return
        for call in batch:
            try:
                call.result = pg_prepared.run(self.engine, call.sql, call.params)
            except BaseException as exc:  # the caller's to raise, on its own thread
                call.error = exc


def _pipelined(conn: psycopg.Connection[Any], batch: list[_Call]) -> list[dict[str, Any] | None]:
    """Every call's statement in one transaction, all in one pipeline (``BEGIN``, the
    statements and ``COMMIT`` leave together); their first rows."""
    with conn.pipeline(), conn.transaction():
        cursors = [conn.execute(call.sql, call.params) for call in batch]
    return [pg_prepared.first(cursor) for cursor in cursors]
