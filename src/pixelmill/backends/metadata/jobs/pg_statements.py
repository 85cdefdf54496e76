"""The three hot job transitions as ONE PostgreSQL statement each: create, start, finish.

:class:`~pixelmill.backends.metadata.jobs.sql.JobRepository` runs these on PostgreSQL
instead of its portable multi-statement transactions (which SQLite keeps). Each is a
data-modifying CTE executed as a single autocommit statement — one round trip, no
``BEGIN``/``COMMIT`` — with the same guards and the same results:

* **The job row lock comes first.** ``job AS (SELECT … FOR UPDATE)`` is referenced by
  every other part (``EXISTS (SELECT 1 FROM job)`` in the task update's ``WHERE``), so
  PostgreSQL takes the job's row lock before it touches the task or inserts an event.
  Events therefore get their ids in commit order per job, as in the portable path, and
  the lock order (job, then task) is the same everywhere: no deadlocks.
* **Guards re-check the newest row.** Under READ COMMITTED, an ``UPDATE … WHERE state IN
  (…)`` that waited for a concurrent writer re-evaluates its ``WHERE`` on the committed
  row, so a redelivered task's second finish matches nothing. The state lists come from
  :mod:`~pixelmill.backends.metadata.jobs.states`, like the portable path's.
* **Event order is a data dependency.** A second event's ``INSERT … SELECT`` reads the
  first one's ``RETURNING``, so the task event gets the smaller id than the job's state
  event (the SSE stream ends at the final state event).

The final transition of a job needs its result (``JobKind.aggregate`` in Python). For a
one-task job the caller knows it before the statement runs (the only task is this one),
so it passes ``finalise=true`` and the values; for larger jobs it passes ``false`` and
completes the job in the same transaction after reading the tasks (see the repository).

They run through :mod:`~pixelmill.backends.metadata.pg_prepared` (prepared server-side
after a few uses). Lists travel as one JSON parameter (psycopg adapting Python lists to
arrays was a measurable part of a submit).
"""

from __future__ import annotations

from pixelmill.backends.metadata.jobs.states import ACTIVE, sources
from pixelmill.backends.metadata.tables_jobs import job_tasks, jobs


def _in(states: tuple[str, ...]) -> str:
    """A SQL list of state literals, e.g. ``('queued', 'running')``."""
    return "(" + ", ".join(f"'{s}'" for s in states) + ")"


_ACTIVE = _in(ACTIVE)
#: a task may start (or restart, after a redelivery) from these
_STARTABLE = _in(sources("task", "running"))
#: a job moves to running from these
_JOB_STARTABLE = _in(sources("job", "running"))

JOB_COLUMNS = [c.name for c in jobs.c]
TASK_COLUMNS = [c.name for c in job_tasks.c]

#: insert a job, its tasks and its ``queued`` event — if every image in ``check``
#: exists and neither the id nor ``(owner, idempotency_key)`` is taken; returns the id
CREATE = """
WITH job AS (
    INSERT INTO jobs (id, kind, state, queue, priority, params, inputs, owner,
                      idempotency_key, request_hash, total, succeeded, failed, cancelled,
                      time_limit_s, max_retries, created_at, updated_at)
    SELECT %(id)s, %(kind)s, 'queued', %(queue)s, %(priority)s, CAST(%(params)s AS json),
           CAST(%(inputs)s AS json), %(owner)s, %(idempotency_key)s, %(request_hash)s,
           %(total)s, 0, 0, 0,
           %(time_limit_s)s, %(max_retries)s, %(now)s, %(now)s
    WHERE (SELECT count(*) FROM images
           WHERE id IN (SELECT json_array_elements_text(CAST(%(check)s AS json))))
          = %(n_check)s
    ON CONFLICT DO NOTHING
    RETURNING id
), tasks AS (
    INSERT INTO job_tasks (job_id, idx, queue, state, input, attempts, progress, created_at)
    SELECT job.id, t.idx, %(queue)s, 'queued', t.input, 0, 0, %(now)s
    FROM job, json_to_recordset(CAST(%(tasks)s AS json)) AS t(idx int, input text)
), event AS (
    INSERT INTO job_events (job_id, type, data, at)
    SELECT id, 'state', CAST('{"state": "queued"}' AS json), %(now)s FROM job
)
SELECT id FROM job
"""

_JOB_OUT = ", ".join(f'job."{c}" AS "j_{c}"' for c in JOB_COLUMNS)
_TASK_OUT = ", ".join(f'task."{c}" AS "t_{c}"' for c in TASK_COLUMNS)

#: queued|running -> running for the task (attempt counted), queued -> running for the
#: job (with its state event); a retry or redelivery also gets a task event. Returns
#: the job as locked and the task as started, or no row (job finished, task finished).
START = f"""
WITH job AS (
    SELECT * FROM jobs WHERE id = %(job_id)s AND state IN {_ACTIVE} FOR UPDATE
), task AS (
    UPDATE job_tasks
    SET state = 'running', attempts = attempts + 1, started_at = coalesce(started_at, %(now)s)
    WHERE job_id = %(job_id)s AND idx = %(idx)s AND state IN {_STARTABLE}
      AND EXISTS (SELECT 1 FROM job)
    RETURNING *
), running AS (
    UPDATE jobs SET state = 'running', started_at = %(now)s, updated_at = %(now)s
    WHERE id = %(job_id)s AND state IN {_JOB_STARTABLE} AND EXISTS (SELECT 1 FROM task)
    RETURNING id
), state_event AS (
    INSERT INTO job_events (job_id, type, data, at)
    SELECT id, 'state', CAST('{{"state": "running"}}' AS json), %(now)s FROM running
    RETURNING id
), task_event AS (
    INSERT INTO job_events (job_id, type, data, at)
    SELECT task.job_id, 'task',
           json_build_object('index', task.idx, 'state', 'running', 'attempt', task.attempts),
           %(now)s
    FROM task LEFT JOIN state_event ON true
    WHERE task.attempts > 1
)
SELECT {_JOB_OUT}, {_TASK_OUT} FROM job, task
"""

#: record a task's outcome (only from ``from_states``; ``succeeded`` becomes
#: ``cancelled`` in a cancelled job), count it on the job, insert the task event and —
#: with ``finalise`` — move a job whose last task this was to succeeded|failed with
#: ``final_result`` / ``final_error`` and its state event. Returns the job after the
#: change plus ``final_state`` (NULL unless this completed it), or no row (duplicate).
FINISH = f"""
WITH job AS (
    SELECT state, total, succeeded, failed, cancelled
    FROM jobs WHERE id = %(job_id)s FOR UPDATE
), task AS (
    UPDATE job_tasks SET
        state = CASE WHEN (SELECT state FROM job) = 'cancelled'
                          AND CAST(%(state)s AS text) = 'succeeded'
                     THEN 'cancelled' ELSE CAST(%(state)s AS text) END,
        progress = CASE WHEN CAST(%(state)s AS text) = 'succeeded'
                             AND (SELECT state FROM job) <> 'cancelled'
                        THEN 1.0 ELSE progress END,
        result_image = CAST(%(result_image)s AS text),
        artifacts = CAST(%(artifacts)s AS json),
        result = CAST(%(result)s AS json),
        error = CAST(%(error)s AS text),
        finished_at = %(now)s
    WHERE job_id = %(job_id)s AND idx = %(idx)s
      AND state IN (SELECT json_array_elements_text(CAST(%(from_states)s AS json)))
      AND EXISTS (SELECT 1 FROM job)
    RETURNING state
), counted AS (
    SELECT job.state AS was, job.total, task.state AS task_state,
           job.succeeded + CAST(task.state = 'succeeded' AS int) AS succeeded,
           job.failed + CAST(task.state = 'failed' AS int) AS failed,
           job.cancelled + CAST(task.state = 'cancelled' AS int) AS cancelled
    FROM job, task
), decided AS (
    SELECT counted.*,
           CASE WHEN CAST(%(finalise)s AS boolean) AND was IN {_ACTIVE}
                     AND succeeded + failed + cancelled >= total
                THEN CASE WHEN failed = 0 AND cancelled = 0 THEN 'succeeded' ELSE 'failed' END
           END AS final_state
    FROM counted
), updated AS (
    UPDATE jobs SET
        succeeded = decided.succeeded,
        failed = decided.failed,
        cancelled = decided.cancelled,
        updated_at = %(now)s,
        state = coalesce(decided.final_state, jobs.state),
        finished_at = CASE WHEN decided.final_state IS NULL THEN jobs.finished_at ELSE %(now)s END,
        result = CASE WHEN decided.final_state IS NULL THEN jobs.result
                      ELSE CAST(%(final_result)s AS json) END,
        error = CASE WHEN decided.final_state = 'failed' THEN CAST(%(final_error)s AS text)
                     ELSE jobs.error END
    FROM decided
    WHERE jobs.id = %(job_id)s
    RETURNING jobs.*, decided.final_state AS final_state
), task_event AS (
    INSERT INTO job_events (job_id, type, data, at)
    SELECT %(job_id)s, 'task',
           json_strip_nulls(json_build_object(
               'index', CAST(%(idx)s AS int), 'state', decided.task_state,
               'result_image', CAST(%(event_image)s AS text), 'error', CAST(%(event_error)s AS text))),
           %(now)s
    FROM decided
    RETURNING id
), state_event AS (
    INSERT INTO job_events (job_id, type, data, at)
    SELECT %(job_id)s, 'state',
           json_strip_nulls(json_build_object(
               'state', updated.final_state,
               'error', CASE WHEN updated.final_state = 'failed'
                             THEN CAST(%(final_error)s AS text) END)),
           %(now)s
    FROM updated, task_event
    WHERE updated.final_state IS NOT NULL
)
SELECT * FROM updated
"""


#: a job's tasks in order (to complete a larger job after its last task's FINISH)
TASKS = "SELECT * FROM job_tasks WHERE job_id = %(job_id)s ORDER BY idx"

#: complete a job (inside the transaction that counted its last task) and insert its
#: final state event after the task's
COMPLETE = """
WITH done AS (
    UPDATE jobs SET state = %(state)s, finished_at = %(now)s, updated_at = %(now)s,
                    error = %(error)s, result = CAST(%(result)s AS json)
    WHERE id = %(job_id)s
    RETURNING *
), event AS (
    INSERT INTO job_events (job_id, type, data, at)
    SELECT id, 'state', CAST(%(event)s AS json), %(now)s FROM done
)
SELECT * FROM done
"""
