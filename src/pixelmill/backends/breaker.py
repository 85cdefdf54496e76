"""Circuit breakers for the backends, on `pybreaker <https://pypi.org/project/pybreaker/>`_.

A breaker watches the outcomes of the calls it guards over a sliding window. When at
least ``min_calls`` were made and ``failure_rate`` of them failed, it **opens**: calls
fail at once with :class:`~pixelmill.errors.BackendUnavailable` (503 with
``Retry-After``) instead of each waiting for a dead server's timeout. After
``reset_timeout_s`` it is **half-open**: one probe call goes through (the others are still
refused); success closes it, failure opens it again.

Only outages count as failures: our 5xx errors and foreign exceptions. A 4xx (a missing
key, bad input) is the caller's problem and counts as a success.

pybreaker holds one lock for the whole of every call, which would serialise all object
storage reads; :class:`_Concurrent` lets calls run side by side while closed and keeps
the lock (one probe at a time) only while open or half-open. pybreaker opens after N
consecutive failures; the failure *rate* rule is a listener (:class:`_Rate`).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

import pybreaker

from pixelmill.errors import BackendUnavailable, PixelmillError
from pixelmill.observability import metrics
from pixelmill.settings_healing import BreakerSettings

log = logging.getLogger(__name__)
T = TypeVar("T")
B = TypeVar("B")

CLOSED, HALF_OPEN, OPEN = pybreaker.STATE_CLOSED, pybreaker.STATE_HALF_OPEN, pybreaker.STATE_OPEN
_GAUGE = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` says the backend is down or broken (not the caller's fault)."""
    if isinstance(exc, PixelmillError):
        return exc.status >= 500
    return isinstance(exc, Exception)


class _Rate(pybreaker.CircuitBreakerListener):
    """Opens a closed breaker on the failure rate of its recent calls; mirrors its state
    into ``pixelmill_breaker_state``."""

    def __init__(self, label: str, policy: BreakerSettings) -> None:
        self.label = label
        self.policy = policy
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._failed = 0  # failures among _outcomes
        self._lock = threading.Lock()
        metrics.BREAKER_STATE.labels(label).set(0)
        # its counters at 0 from the start: a series that appears only on the first
        # rejection shows "No data" until then, and increase() misses that first one
        metrics.BREAKER_REJECTED.labels(label)
        for state in (OPEN, HALF_OPEN, CLOSED):
            metrics.BREAKER_TRANSITIONS.labels(label, state)

    def _record(self, ok: bool) -> tuple[int, int]:
        now = time.monotonic()
        with self._lock:
            self._outcomes.append((now, ok))
            self._failed += not ok
            while self._outcomes and self._outcomes[0][0] < now - self.policy.window_s:
                self._failed -= not self._outcomes.popleft()[1]
            # counted as they come and go: summing the window was O(calls in it) per call
            return len(self._outcomes), self._failed

    def success(self, cb: pybreaker.CircuitBreaker) -> None:
        self._record(True)

    def failure(self, cb: pybreaker.CircuitBreaker, exc: BaseException) -> None:
        calls, failed = self._record(False)
        if (
            cb.current_state == CLOSED
            and calls >= self.policy.min_calls
            and failed >= self.policy.failure_rate * calls
        ):
            log.warning(
                "breaker %s opens: %d of %d calls failed in %.0f s; last: %s",
                cb.name,
                failed,
                calls,
                self.policy.window_s,
                exc,
            )
            cb.open()

    def state_change(self, cb: pybreaker.CircuitBreaker, old: Any, new: Any) -> None:
        metrics.BREAKER_STATE.labels(self.label).set(_GAUGE.get(new.name, 0))
        metrics.BREAKER_TRANSITIONS.labels(self.label, new.name).inc()
        if new.name == CLOSED:
            with self._lock:
                self._outcomes.clear()
                self._failed = 0
            log.info("breaker %s closed again", cb.name)


class _Concurrent(pybreaker.CircuitBreaker):
    """pybreaker without its call-wide lock while closed (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._probe = threading.RLock()  # re-entrant: open -> half-open re-enters call()

    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self.current_state == CLOSED:
            return self.state.call(func, *args, **kwargs)
        if not self._probe.acquire(blocking=False):
            raise pybreaker.CircuitBreakerError("a probe call is in flight")
        try:
            return self.state.call(func, *args, **kwargs)
        finally:
            self._probe.release()


class CircuitBreaker:
    """A named breaker: :meth:`call` runs a function through it.

    ``label`` names it in metrics (bounded: ``storage``, ``cache``, ``broker``,
    ``inference:<model>:<version>`` for the few loaded versions); ``name`` may be more
    specific (in logs only)."""

    def __init__(
        self,
        label: str,
        policy: BreakerSettings,
        *,
        name: str | None = None,
        failure: Callable[[BaseException], bool] = is_outage,
    ) -> None:
        self.label = label
        self.policy = policy
        self._cb = _Concurrent(
            fail_max=2**31,  # never by count: the failure rate decides (``_Rate``)
            reset_timeout=policy.reset_timeout_s,
            exclude=[lambda exc: not failure(exc)],
            listeners=[_Rate(label, policy)],
            name=name or label,
        )

    @property
    def state(self) -> str:
        """``closed``, ``half-open`` or ``open``."""
        return str(self._cb.current_state)

    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``func(*args, **kwargs)``, or :class:`BackendUnavailable` at once while open."""
        try:
            return self._cb.call(func, *args, **kwargs)
        except pybreaker.CircuitBreakerError:
            metrics.BREAKER_REJECTED.labels(self.label).inc()
            raise BackendUnavailable(
                f"{self._cb.name} is unavailable (circuit breaker open); retry later",
                retry_after=self.policy.retry_after_s,
                breaker=self.label,
            ) from None


class Breakers:
    """Makes breakers with one policy; ``None`` from :meth:`get` when they are off."""

    def __init__(self, policy: BreakerSettings) -> None:
        self.policy = policy
        self._made: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    def get(
        self,
        label: str,
        *,
        name: str | None = None,
        failure: Callable[[BaseException], bool] = is_outage,
    ) -> CircuitBreaker | None:
        """The breaker ``name`` (default ``label``), made on first use; ``failure`` says
        which exceptions count against it (default :func:`is_outage`)."""
        if not self.policy.enabled:
            return None
        key = name or label
        with self._lock:
            if key not in self._made:
                self._made[key] = CircuitBreaker(label, self.policy, name=key, failure=failure)
            return self._made[key]

    def states(self) -> dict[str, str]:
        with self._lock:
            return {key: b.state for key, b in self._made.items()}


class Guarded(Generic[B]):
    """A backend ``inner`` behind ``breaker``: the members named in :attr:`guarded` run
    through the breaker; every other member is ``inner``'s own, unguarded (``ping``:
    readiness asks the real server; ``purge``, ``queue_name``, ``bucket``, ...: admin and
    test helpers, not the request path). Subclasses write out only what differs."""

    guarded: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, inner: B, breaker: CircuitBreaker) -> None:
        self.inner = inner
        self.breaker = breaker

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (copy, unpickling): no endless recursion
            raise AttributeError(name)
        member = getattr(self.inner, name)
        if name in self.guarded:
            return functools.partial(self.breaker.call, member)
        return member
