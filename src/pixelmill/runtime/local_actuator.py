"""The local actuator: one :class:`~pixelmill.runtime.supervisor.WorkerSupervisor` per
queue, each running ``pixelmill worker --queues Q`` processes on this machine.

Scaling up starts workers; scaling down drains them (SIGTERM: the worker takes no new
task, finishes its running ones for up to ``drain_timeout_s``, past which they go back
to the queue, and exits): a busy worker is never killed. A worker that dies on its own
is restarted by its supervisor, as in ``pixelmill up --workers N``.
"""

from __future__ import annotations

from collections.abc import Sequence

from pixelmill.runtime.supervisor import WorkerSupervisor, worker_command

__all__ = ["LocalActuator"]


class LocalActuator:
    """Worker processes per queue (children of this process; ``env``: theirs, default
    this process's)."""

    def __init__(
        self,
        queues: Sequence[str],
        *,
        threads: int = 1,
        drain_timeout_s: float = 600.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.drain_timeout_s = drain_timeout_s
        self._pools: dict[str, WorkerSupervisor] = {}
        for queue in queues:
            command = [
                *worker_command(threads),
                "--queues",
                queue,
                "--shutdown-timeout",
                str(drain_timeout_s),
            ]
            self._pools[queue] = WorkerSupervisor(command, [], env=env).start()

    def replicas(self, service: str) -> tuple[int, int]:
        pool = self._pools.get(service)
        return pool.size() if pool is not None else (0, 0)

    def scale(self, service: str, replicas: int) -> None:
        pool = self._pools.get(service)
        if pool is not None:
            pool.resize(replicas)

    def pids(self, service: str) -> list[int]:
        """PIDs of ``service``'s worker processes, draining ones included."""
        pool = self._pools.get(service)
        return pool.pids() if pool is not None else []

    def close(self) -> None:
        """Drain every worker (they finish their tasks) and wait for them to exit."""
        for pool in self._pools.values():
            pool.stop(timeout_s=self.drain_timeout_s + 5)
