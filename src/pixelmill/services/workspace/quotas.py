"""Per-user quotas: stored bytes, concurrent jobs, training minutes per month, epochs
per training run (docs/security.md, "Quotas").

A user's limits are the site's defaults (``settings.quota``) with their own override
(set by an admin) on top; site admins are exempt from the defaults unless
``quota.admins_exempt`` is off. ``0`` means unlimited. Each denial is a security event
(``denied.quota``) in the event log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from cachetools import TTLCache

from pixelmill.backends.metadata._time import now
from pixelmill.backends.metadata.events import Actor, EventLog
from pixelmill.backends.metadata.quotas import (
    FIELDS,
    QuotaOverride,
    QuotaRepository,
    storage_exceeded,
)
from pixelmill.backends.metadata.users import UserRepository
from pixelmill.errors import (
    EpochQuotaExceeded,
    JobQuotaExceeded,
    NotFound,
    QuotaExceeded,
)
from pixelmill.observability import metrics
from pixelmill.settings import QuotaSettings


@dataclass(frozen=True)
class Limits:
    """A user's effective limits; ``None``: unlimited."""

    stored_bytes: int | None = None
    concurrent_jobs: int | None = None
    training_minutes: int | None = None
    max_epochs: int | None = None

    def to_json(self) -> dict[str, int | None]:
        return asdict(self)


def month_start(at: datetime) -> datetime:
    """The start (UTC) of the calendar month of ``at``: the training-minutes period."""
    at = at.astimezone(UTC)
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def _limit(value: int | None) -> int | None:
    return value or None  # 0 is unlimited


class Quotas:
    """Resolve, report and enforce users' quotas."""

    def __init__(
        self,
        *,
        repo: QuotaRepository,
        users: UserRepository,
        events: EventLog,
        settings: QuotaSettings,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self.repo = repo
        self.users = users
        self.events = events
        self.settings = settings
        self.clock = clock
        self._cache: TTLCache[str, Limits] | None = (
            TTLCache(maxsize=4096, ttl=settings.cache_s, timer=time.monotonic)
            if settings.cache_s > 0
            else None
        )
        #: user -> [their active jobs when counted, plus this process's submits since];
        #: mutated in place, so an entry expires ``jobs_count_s`` after it was counted
        self._active: TTLCache[str, list[int]] | None = (
            TTLCache(maxsize=4096, ttl=settings.jobs_count_s, timer=time.monotonic)
            if settings.jobs_count_s > 0
            else None
        )
        self._lock = threading.Lock()

    # -- limits -------------------------------------------------------------------------
    def limits(self, user_id: str) -> Limits:
        """``user_id``'s limits (cached for ``quota.cache_s``); none for no user."""
        if not user_id or not self.settings.enabled:
            return Limits()
        if self._cache is not None:
            with self._lock:
                hit = self._cache.get(user_id)
            if hit is not None:
                return hit
        found = self._resolve(user_id)
        if self._cache is not None:
            with self._lock:
                self._cache[user_id] = found
        return found

    def _resolve(self, user_id: str) -> Limits:
        try:
            exempt = self.users.get(user_id).is_admin and self.settings.admins_exempt
        except NotFound:
            return Limits()
        own = self.repo.override(user_id) or QuotaOverride(user_id)
        values: dict[str, int | None] = {}
        for name in FIELDS:
            mine = getattr(own, name)
            default = None if exempt else getattr(self.settings, name)
            values[name] = _limit(mine if mine is not None else default)
        return Limits(**values)

    def stored_limit(self, user_id: str) -> int | None:
        return self.limits(user_id).stored_bytes

    # -- reading and setting ------------------------------------------------------------
    def report(self, user_id: str) -> dict[str, Any]:
        """Limits, the override they come from, and current usage of ``user_id``."""
        self.users.get(user_id)  # 404 for an unknown user
        limits = self.limits(user_id)
        stored = self.repo.stored(user_id)
        since = month_start(self.clock())
        seconds = self.repo.training_seconds(user_id, since=since)
        own = self.repo.override(user_id)
        return {
            "user_id": user_id,
            "enforced": self.settings.enabled,
            "limits": limits.to_json(),
            "override": {name: getattr(own, name) for name in FIELDS} if own else None,
            "usage": {
                "stored_bytes": stored.total,
                "stored": {
                    "images": stored.images,
                    "datasets": stored.datasets,
                    "models": stored.models,
                },
                "concurrent_jobs": self.repo.active_jobs(user_id),
                "training_minutes": round(seconds / 60, 2),
                "training_period": {
                    "start": since.isoformat(),
                    "end": _next_month(since).isoformat(),
                },
            },
        }

    def set(self, actor: Actor, user_id: str, limits: dict[str, int | None]) -> dict[str, Any]:
        """Set ``user_id``'s override (``None`` fields: the site default) and report."""
        self.users.get(user_id)
        self.repo.set_override(user_id, limits, by=actor.user_id)
        self.forget(user_id)
        self.events.record(
            actor,
            "quota.set",
            "user",
            user_id,
            after={name: limits.get(name) for name in FIELDS},
            security=True,
        )
        return self.report(user_id)

    def forget(self, user_id: str) -> None:
        """Drop this process's cached limits of ``user_id``."""
        if self._cache is not None:
            with self._lock:
                self._cache.pop(user_id, None)

    def denied(self, user_id: str, exc: QuotaExceeded) -> None:
        """Record a refusal as a security event (no metric labels carry user ids)."""
        metrics.QUOTA_DENIALS.labels(exc.extra.get("quota", "unknown")).inc()
        self.events.record(
            Actor(user_id or None),
            "denied.quota",
            "user",
            user_id or None,
            after={k: exc.extra.get(k) for k in ("quota", "limit", "used", "requested")},
            security=True,
        )

    # -- enforcement --------------------------------------------------------------------
    def check_room(self, user_id: str, adding: int) -> None:
        """403 when ``adding`` bytes do not fit in ``user_id``'s storage quota now: an
        early answer before work is queued. The check that holds under concurrency is
        the one in the transaction that records each object (``count_stored``)."""
        limit = self.stored_limit(user_id)
        if limit is None:
            return
        used = self.repo.stored(user_id).total
        if used + adding > limit:
            self._refuse(user_id, storage_exceeded(adding, limit, used))

    def admit_job(self, owner: str) -> None:
        """429 (``Retry-After``) when ``owner`` has ``concurrent_jobs`` queued or running.

        The count comes from the database at most every ``quota.jobs_count_s`` per user
        and process, plus this process's admitted submits since (jobs that finished
        meanwhile still count: the estimate only errs high, and a submit it would refuse
        is counted afresh first). Submits made through other processes within that time
        are not seen: the bound is documented in docs/security.md."""
        limit = self.limits(owner).concurrent_jobs
        if limit is None:
            return
        with self._lock:
            seen = self._active.get(owner) if self._active is not None else None
            estimate = seen[0] if seen is not None else None
        if estimate is None or estimate >= limit:
            estimate = self.repo.active_jobs(owner)
            if estimate < limit and self._active is not None:
                with self._lock:
                    seen = self._active[owner] = [estimate]
        if estimate >= limit:
            self._refuse(
                owner,
                JobQuotaExceeded(
                    f"you have {estimate} jobs queued or running, your limit is {limit}; "
                    "submit again when one has finished",
                    retry_after=self.settings.retry_after_s,
                    quota="concurrent_jobs",
                    limit=limit,
                    used=estimate,
                ),
            )
        if seen is not None:
            with self._lock:
                seen[0] += 1

    def check_training(self, owner: str | None, epochs: int) -> None:
        """422 when ``epochs`` is over ``owner``'s cap; 403 when their training minutes
        of this month are used up."""
        limits = self.limits(owner or "")
        if limits.max_epochs is not None and epochs > limits.max_epochs:
            self._refuse(
                owner or "",
                EpochQuotaExceeded(
                    f"a training run of yours may have at most {limits.max_epochs} epochs, "
                    f"not {epochs}",
                    quota="max_epochs",
                    limit=limits.max_epochs,
                    requested=epochs,
                ),
            )
        if limits.training_minutes is not None:
            used = self.repo.training_seconds(owner or "", since=month_start(self.clock()))
            if used >= limits.training_minutes * 60:
                self._refuse(owner or "", minutes_used_up(limits.training_minutes, used))

    def training_meter(self, owner: str | None, job_id: str) -> TrainingMeter:
        """A meter of the training run ``job_id`` of ``owner`` (see :class:`TrainingMeter`)."""
        return TrainingMeter(self, owner or "", job_id)

    def _refuse(self, user_id: str, exc: QuotaExceeded) -> None:
        self.denied(user_id, exc)
        raise exc


def minutes_used_up(limit_minutes: int, used_s: float) -> QuotaExceeded:
    return QuotaExceeded(
        f"your training minutes of this month are used up ({used_s / 60:.1f} of "
        f"{limit_minutes}); they renew on the 1st (UTC), or ask an admin",
        quota="training_minutes",
        limit=limit_minutes,
        used=round(used_s / 60, 2),
    )


def _next_month(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


class TrainingMeter:
    """Counts the wall-clock time of one training run and says when the user's training
    minutes are used up (polled between optimizer steps, through the trainer's
    cancellation path).

    Every ``quota.training_sync_s`` it records the run's seconds so far and re-reads the
    user's other runs and their limit, so concurrent runs of one user see each other
    and a run stops within that time of the limit. :meth:`close` records the final
    seconds; a redelivered or resumed run adds to its job's earlier seconds.
    """

    def __init__(self, quotas: Quotas, owner: str, job_id: str) -> None:
        self.quotas = quotas
        self.owner = owner
        self.job_id = job_id
        self.base_s = quotas.repo.run_seconds(job_id) if owner else 0.0
        self._started = time.monotonic()
        self._next_sync = 0.0
        self._others_s = 0.0
        self._limit_min: int | None = None
        self.used_up = False

    @property
    def seconds(self) -> float:
        """Seconds of this run's job so far, earlier attempts included."""
        return self.base_s + time.monotonic() - self._started

    def exhausted(self) -> bool:
        """True once the user's training minutes are used up (then it stays true)."""
        if not self.owner or self.used_up:
            return self.used_up
        if time.monotonic() >= self._next_sync:
            self._sync()
        if self._limit_min is not None:
            self.used_up = self._others_s + self.seconds >= self._limit_min * 60
        return self.used_up

    def _sync(self) -> None:
        q = self.quotas
        self._limit_min = q.limits(self.owner).training_minutes
        q.repo.record_run(self.job_id, self.owner, self.seconds)
        since = month_start(q.clock())
        self._others_s = q.repo.training_seconds(self.owner, since=since, except_job=self.job_id)
        self._next_sync = time.monotonic() + q.settings.training_sync_s

    def error(self) -> QuotaExceeded:
        """The job's failure once :meth:`exhausted` said so (also a security event)."""
        exc = minutes_used_up(self._limit_min or 0, self._others_s + self.seconds)
        self.quotas.denied(self.owner, exc)
        return exc

    def close(self) -> None:
        """Record the run's seconds (when it ends, however it ends)."""
        if self.owner:
            self.quotas.repo.record_run(self.job_id, self.owner, self.seconds)
