"""Autoscaling, the pure core: policies as functions of config + observations + state.

``decide(config, observations, state) -> Decision`` (:mod:`.policy` for pixelmill's
own, :mod:`.baselines` for HPA, KEDA, Ray Serve, static and the oracle), the queueing
model (:mod:`.queueing`), the forecast (:mod:`.forecast`) and the simulator
(:mod:`.sim`). No I/O: actuators and the live service plug in from outside.
"""

from __future__ import annotations

from pixelmill.autoscale.policy import decide
from pixelmill.autoscale.types import (
    Decision,
    Observation,
    Observations,
    PolicyConfig,
    PolicySpec,
    Reason,
    ServiceConfig,
    ServiceTime,
)

__all__ = [
    "Decision",
    "Observation",
    "Observations",
    "PolicyConfig",
    "PolicySpec",
    "Reason",
    "ServiceConfig",
    "ServiceTime",
    "decide",
]
