"""Open-loop arrivals: requests start on a schedule fixed before the run, whether or not
earlier ones have answered, so a slow server cannot slow the client down and hide its
own queueing (coordinated omission). Latency is measured from the *intended* start.

:func:`schedule` is pure (tested); :func:`drive` runs a schedule with asyncio + httpx and
records every request in an HDR histogram (``hdrhistogram``) and as a raw CSV row.
"""

from __future__ import annotations

import asyncio
import csv
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: (requests per second, seconds) — one constant-rate step of a load profile
Step = tuple[float, float]


def schedule(steps: Sequence[Step], *, poisson: bool = False, seed: int = 0) -> list[float]:
    """Intended start times (s from the run's start) for ``steps`` played one after the
    other: evenly spaced at each step's rate, or Poisson arrivals with that mean rate.

    >>> schedule([(2, 1), (4, 0.5)])
    [0.0, 0.5, 1.0, 1.25]
    """
    rng = random.Random(seed)
    times: list[float] = []
    start = 0.0
    for rate, seconds in steps:
        if rate <= 0 or seconds <= 0:
            start += max(seconds, 0.0)
            continue
        t = start
        while t < start + seconds - 1e-12:
            times.append(round(t, 9))
            t += rng.expovariate(rate) if poisson else 1.0 / rate
        start += seconds
    return times


@dataclass
class Sample:
    """One request: intended and actual start, end (s from the run's start), outcome."""

    scenario: str
    intended: float
    started: float
    ended: float
    status: int
    error: str = ""

    @property
    def latency_ms(self) -> float:
        """From the intended start: the wait for a free client counts as latency too."""
        return (self.ended - self.intended) * 1000


@dataclass
class Result:
    """Every sample of a run and its HDR histogram (µs, 1 µs .. 120 s, 3 digits)."""

    samples: list[Sample] = field(default_factory=list)
    histogram: Any = None

    def __post_init__(self) -> None:
        from hdrh.histogram import HdrHistogram

        self.histogram = HdrHistogram(1, 120_000_000, 3)

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)
        if sample.status and sample.status < 400:
            self.histogram.record_value(max(1, int(sample.latency_ms * 1000)))

    def ok(self) -> int:
        return sum(1 for s in self.samples if s.status and s.status < 400)

    def failed(self) -> int:
        return len(self.samples) - self.ok()

    def percentile_ms(self, q: float) -> float:
        """The q-th percentile (0-100) of successful latencies, ms."""
        return float(self.histogram.get_value_at_percentile(q)) / 1000

    def summary(self) -> dict[str, float]:
        duration = max((s.ended for s in self.samples), default=0.0)
        return {
            "requests": len(self.samples),
            "failed": self.failed(),
            "throughput_rps": self.ok() / duration if duration else 0.0,
            **{f"p{q:g}_ms": self.percentile_ms(q) for q in (50, 95, 99, 99.9)},
        }

    def write_csv(self, path: Path) -> None:
        """The raw samples, one row per request (times in s from the run's start)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["scenario", "intended_s", "started_s", "ended_s", "status", "error"])
            writer.writerows(
                [
                    s.scenario,
                    f"{s.intended:.6f}",
                    f"{s.started:.6f}",
                    f"{s.ended:.6f}",
                    s.status,
                    s.error,
                ]
                for s in self.samples
            )


#: one request of a scenario: (client) -> (scenario name, HTTP status)
Request = Callable[[Any], Awaitable[tuple[str, int]]]


async def _one(client: Any, request: Request, intended: float, t0: float, out: Result) -> None:
    started = time.perf_counter() - t0
    try:
        name, status = await request(client)
        error = ""
    except Exception as exc:  # a refused connection is a failed request, not a crash
        name, status, error = "error", 0, type(exc).__name__
    out.add(Sample(name, intended, started, time.perf_counter() - t0, status, error))


async def drive_async(
    base_url: str,
    times: Sequence[float],
    request: Request,
    *,
    headers: dict[str, str] | None = None,
    max_in_flight: int = 512,
    timeout: float = 30.0,
) -> Result:
    """Start ``request`` at each of ``times``; wait for all to end. ``max_in_flight``
    bounds the client's connections (a request waiting for one still counts its wait)."""
    import httpx

    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
    out = Result()
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=timeout, limits=limits
    ) as client:
        t0 = time.perf_counter()
        tasks = []
        for intended in times:
            delay = intended - (time.perf_counter() - t0)
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_one(client, request, intended, t0, out)))
        await asyncio.gather(*tasks)
    return out


def drive(base_url: str, times: Sequence[float], request: Request, **kw: Any) -> Result:
    """:func:`drive_async` from synchronous code."""
    return asyncio.run(drive_async(base_url, times, request, **kw))


async def closed_async(
    base_url: str,
    request: Request,
    users: int,
    seconds: float,
    *,
    think_s: float = 0.0,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> Result:
    """``users`` closed-loop clients (each waits for its answer, then ``think_s``) for
    ``seconds`` — the saturation experiments' load, not a latency measurement: latency
    here is from the actual start (a closed loop has no intended start)."""
    import httpx

    out = Result()
    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=timeout, limits=limits
    ) as client:
        t0 = time.perf_counter()

        async def user() -> None:
            while time.perf_counter() - t0 < seconds:
                now = time.perf_counter() - t0
                await _one(client, request, now, t0, out)
                if think_s:
                    await asyncio.sleep(think_s)

        await asyncio.gather(*(user() for _ in range(users)))
    return out


def closed(base_url: str, request: Request, users: int, seconds: float, **kw: Any) -> Result:
    """:func:`closed_async` from synchronous code."""
    return asyncio.run(closed_async(base_url, request, users, seconds, **kw))
