"""Timing loops and summaries: medians, percentiles, geometric means, and runs that
interleave the things compared so that a shared machine's drifting load hits all alike."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def median(values: Sequence[float] | Iterator[float]) -> float:
    """The median; NaN for no values (a row that did not run)."""
    values = list(values)
    return statistics.median(values) if values else math.nan


def pct(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank, one of the values; NaN for none."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def geomean(values: Sequence[float]) -> float:
    """Geometric mean of the positive, finite values (the mean of ratios)."""
    kept = [v for v in values if v > 0 and math.isfinite(v)]
    return math.exp(sum(map(math.log, kept)) / len(kept)) if kept else math.nan


def latency_summary(seconds: Sequence[float], wall: float | None = None) -> dict[str, float]:
    """p50/p99 in ms and the rate per second (over ``wall``, else over the sum)."""
    ms = [s * 1000 for s in seconds]
    return {
        "p50_ms": round(pct(ms, 0.5), 2),
        "p99_ms": round(pct(ms, 0.99), 2),
        "per_s": round(len(ms) / (wall if wall else sum(seconds)), 2),
        "n": len(ms),
    }


def batched(
    fn: Callable[[], Any],
    *,
    batch: int,
    batches: int,
    clock: Callable[[], float] = time.process_time,
) -> float:
    """Median ms per call over ``batches`` batches of ``batch`` calls (one warm-up call)."""
    fn()
    samples = []
    for _ in range(batches):
        started = clock()
        for _ in range(batch):
            fn()
        samples.append((clock() - started) / batch * 1000)
    return statistics.median(samples)


def rotations(names: Sequence[T], rounds: int) -> Iterator[list[T]]:
    """``names`` once per round, the order rotated by one each round (A B C, B C A, ...):
    interleaved A/B rounds, so no side always runs first or right after another."""
    for r in range(rounds):
        k = r % len(names)
        yield [*names[k:], *names[:k]]


def interleaved(
    fns: dict[str, Callable[[], Any]],
    rounds: int,
    *,
    clock: Callable[[], float] = time.perf_counter,
    after: Callable[[str], Any] | None = None,
) -> dict[str, list[float]]:
    """Seconds of each function per round, run in :func:`rotations` after one warm-up call
    each; ``clock`` ``time.process_time`` counts this process's CPU, not others' load.
    ``after(name)`` runs after each call, outside its time (a pause, a reading)."""
    for name, fn in fns.items():
        fn()
        if after is not None:
            after(name)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for order in rotations(list(fns), rounds):
        for name in order:
            t = clock()
            fns[name]()
            samples[name].append(clock() - t)
            if after is not None:
                after(name)
    return samples


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """Median of the run-by-run ratios a/b (pairs saw the same load)."""
    return median([x / y for x, y in zip(a, b, strict=True) if y])
