"""Broker publishing behind a circuit breaker. While RabbitMQ is unreachable a submit
does not wait for a connection timeout per task: publish fails fast with
:class:`~pixelmill.errors.BackendUnavailable`, the job stays in the database (it was
accepted durably there) and a worker re-publishes it once the broker is back."""

from __future__ import annotations

from pixelmill.backends.breaker import Guarded
from pixelmill.backends.broker.base import Broker


class BreakerBroker(Guarded[Broker]):
    """A :class:`~pixelmill.backends.broker.base.Broker` whose ``publish`` is guarded;
    consuming (``serve``), ``depth``, ``ping`` ... are the wrapped broker's own: consuming
    is left to its reconnect loop."""

    guarded = frozenset({"publish"})
