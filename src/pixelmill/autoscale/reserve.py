"""Burst reserve: headroom for the jumps in load that come faster than a cold start.

A worker started when a jump is seen is ready only a cold start later; until then every
request queues behind the jump. The reserve is the largest relative rise of the arrival
rate seen within one cold-start horizon lately (peak-hold, decaying with ``decay_s``),
after removing what Poisson noise alone explains (3 standard deviations of the ratio of
two counts), and capped: rises above the cap are bursts for panic mode, not headroom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Jumps", "observe"]


@dataclass(frozen=True, slots=True)
class Jumps:
    recent: tuple[tuple[float, float], ...] = ()
    reserve: float = 0.0
    at: float | None = None


def observe(
    jumps: Jumps,
    at: float,
    rate: float,
    *,
    horizon_s: float,
    window_s: float,
    decay_s: float,
    cap: float,
) -> Jumps:
    """Fold the short-window ``rate`` (per second, counted over ``window_s``) seen at ``at``."""
    recent = tuple(x for x in jumps.recent if x[0] >= at - horizon_s)
    reserve = 0.0
    if jumps.at is not None:
        reserve = jumps.reserve * math.exp(-(at - jumps.at) / decay_s)
    if rate > 0:
        for _, then in recent:
            if then <= 0:
                continue
            noise = 3 * math.sqrt(1 / (then * window_s) + 1 / (rate * window_s))
            jump = rate / then - 1 - noise
            if reserve < jump <= cap:
                reserve = jump
    return Jumps(recent=(*recent, (at, rate)), reserve=reserve, at=at)
