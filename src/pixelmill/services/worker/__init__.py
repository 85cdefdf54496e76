"""The worker service: consume job queues and run tasks until told to stop.

A worker is stateless: it takes ``(job, task)`` messages off the broker's queues, runs
them with the job service's runner, and keeps nothing of its own — start as many as
the load needs, on any machine that reaches the broker, the DB and the object store.
It also deletes expired finished jobs now and then (``jobs.retention_days``).
``SIGTERM`` stops it gracefully: no new messages, in-flight tasks finish (or, past the
timeout, go back to the queue), then it exits.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pixelmill.errors import InvalidInput

if TYPE_CHECKING:
    from pixelmill.services.jobs.daemon import JobDaemon

log = logging.getLogger("pixelmill.worker")


class WorkerService:
    def __init__(
        self,
        daemon: JobDaemon,
        *,
        queues: Sequence[str],
        threads: int,
        shutdown_timeout_s: float = 30.0,
    ) -> None:
        self.jobs = daemon
        if not daemon.broker.durable:
            raise InvalidInput(
                "a separate worker needs a shared broker: set PIXELMILL_BROKER__URL=amqp://... "
                "(the in-process broker only serves the embedded gateway)"
            )
        self.queues = list(queues)
        self.threads = threads
        self.shutdown_timeout_s = shutdown_timeout_s

    def run(self, stop: threading.Event, *, on_ready: object = None) -> None:
        """Serve until ``stop`` is set, then shut down gracefully."""
        self.jobs.serve(self.queues, threads=self.threads)
        self.jobs.start_sweeper()
        self.jobs.start_retention()
        log.info(
            "worker %d serving %s with %d thread(s)",
            os.getpid(),
            ",".join(self.queues),
            self.threads,
        )
        if callable(on_ready):
            on_ready()
        stop.wait()
        log.info("worker %d stopping: finishing in-flight tasks", os.getpid())
        self.jobs.stop(timeout_s=self.shutdown_timeout_s)
        log.info("worker %d stopped", os.getpid())
