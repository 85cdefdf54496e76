"""What the gateway writes to the event log about requests: who submitted, uploaded or
deleted what, who was refused at the door (a credential without the scope a route needs,
a cookie request without its CSRF token), and admins' reads of other users' jobs.

Each event names the actor (user, API key, address) and its target; the event log adds
the request's id (``X-Request-ID``). Only actions and refusals write a row: an admin's
reads are logged once per while per target (:meth:`Access.admin_read`), and reads by a
data's owner (renders, tiles) never write one.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from pixelmill.errors import Forbidden
from pixelmill.services.gateway.deps import deps
from pixelmill.services.workspace.access import actor_of
from pixelmill.services.workspace.principal import Principal

if TYPE_CHECKING:
    from pixelmill.backends.metadata.jobs import JobRecord
    from pixelmill.services.gateway.deps import GatewayDeps

#: input ids an event of a job's submission lists (its ``input_count`` gives them all)
MAX_LISTED_INPUTS = 100


def ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def record(
    request: Request,
    principal: Principal | None,
    action: str,
    target_type: str,
    target_id: str | None,
    **fields: Any,
) -> None:
    """Log ``action`` on the target with the caller as actor (``fields``: those of
    :meth:`EventLog.record`, ``after=...``). Blocking."""
    actor = actor_of(principal, ip(request))
    deps(request).events.record(actor, action, target_type, target_id, **fields)


async def refuse(
    request: Request, principal: Principal, action: str, detail: str, **after: Any
) -> Forbidden:
    """The 403 for ``principal`` at this route, once ``denied.<action>`` is logged with
    the route (method and path template) and ``after``."""
    route = getattr(request.scope.get("route"), "path", None) or request.url.path
    where = f"{request.method} {route}"
    write = partial(record, request, principal, "denied." + action, "route", where[:64])
    await run_in_threadpool(write, after={"route": where, **after}, security=True)
    return Forbidden(detail)


# -- jobs -------------------------------------------------------------------------------
def job_scope(key: Principal | None) -> str | None:
    """The owner whose jobs the caller may see; ``None``: every job (an admin, or
    authentication disabled)."""
    if key is None or key.is_admin or key.via == "local":
        return None
    return key.user_id


def visible_job(request: Request, key: Principal | None, job_id: str) -> JobRecord:
    """The job when the caller may see it (``404`` as for an unknown id otherwise); an
    admin's read of another user's job is logged (``admin.read``)."""
    job = deps(request).jobs.get(job_id, owner=job_scope(key))
    deps(request).access.owner_read(key, job.owner, "job", job.id)
    return job


def jobs_listed(request: Request, key: Principal | None, owner: str | None) -> None:
    """Log an admin's listing of another user's jobs (``owner``), or of everyone's
    (``None``, logged as ``*``); not of their own or of the unowned ones (``''``)."""
    if key is not None and owner not in ("", key.user_id):
        deps(request).access.owner_read(key, owner or "*", "jobs", owner or "*")


def admin_reads_job(request: Request, key: Principal | None, job_id: str) -> None:
    """Log an admin's read of part of another user's job (its results): one look-up, for
    admins only."""
    if key is not None and key.is_admin:
        visible_job(request, key, job_id)


def submit_job(
    services: GatewayDeps, key: Principal | None, arguments: dict[str, Any], ip: str | None
) -> tuple[JobRecord, bool]:
    """Submit a job for ``key`` (its inputs checked with the caller's access) and log a
    new one (``job.submit``); an idempotent resubmit is not a new submission. Blocking."""
    job, created = services.jobs.submit(**arguments, can_read=services.access.input_check(key))
    if created:
        services.events.record(
            actor_of(key, ip),
            "job.submit",
            "job",
            job.id,
            after={
                "kind": job.kind,
                "inputs": job.inputs[:MAX_LISTED_INPUTS],
                "input_count": len(job.inputs),
                "priority": job.priority,
            },
        )
    return job, created
