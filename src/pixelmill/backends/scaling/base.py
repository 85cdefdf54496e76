"""The one interface every actuator implements: how many replicas a service (a queue)
has, and a request for how many it should have.

* :class:`pixelmill.runtime.local_actuator.LocalActuator`: ``pixelmill worker``
  processes on this machine (the worker supervisor), stopped by graceful drain;
* :class:`pixelmill.backends.scaling.kubernetes.KubernetesActuator`: the scale
  subresource of one Deployment per queue (the official ``kubernetes`` client).
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Actuator"]


class Actuator(Protocol):
    def replicas(self, service: str) -> tuple[int, int]:
        """``(replicas asked for, replicas running and ready)`` of ``service``."""
        ...

    def scale(self, service: str, replicas: int) -> None:
        """Ask for ``replicas`` of ``service``. Scaling down drains: a worker told to
        stop takes no new task and finishes the ones it holds before it exits."""
        ...

    def close(self) -> None:
        """Let go of what the actuator holds (local workers: drain and stop them)."""
        ...
