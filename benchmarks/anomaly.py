"""Anomaly detector evaluation: false alarms per day on clean series, detection delay on
injected faults, for the robust z-score detector the serving processes run
(``pixelmill.ml.anomaly.RobustZ`` with the ``healing.anomaly`` defaults).

    .venv/bin/python benchmarks/anomaly.py            # 14 clean days, 200 faults a kind: ~8 min
    .venv/bin/python benchmarks/anomaly.py --quick    # 3 days, 40 faults: ~1.5 min

The series are simulated, one sample per 15 s as the monitor takes them, with the
shapes seen on the metrics: a daily cycle of traffic, lognormal request latency with
rare single spikes (a slow render, a GC pause), binomial 5xx counts out of ~300
requests per interval, and a queue wait with short bursts. Faults start at a random
time after the first 2 hours: latency x3 and x1.5 (a slow disk, a noisy neighbour),
error rate 5 % and 1 % (a dependency failing), and a backlog whose wait grows 2 s and
0.5 s per sample (workers gone). A fault not raised within 1 hour is a miss.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _harness import parse, parser, save, table

from pixelmill.ml.anomaly import RobustZ
from pixelmill.services.anomaly import SCALES
from pixelmill.settings_healing import AnomalySettings

INTERVAL_S = 15.0
PER_DAY = int(86400 / INTERVAL_S)
WARM = int(7200 / INTERVAL_S)
HORIZON = int(3600 / INTERVAL_S)


def clean(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of a healthy ``kind`` series."""
    t = np.arange(n)
    day = 1 + 0.3 * np.sin(2 * np.pi * t / PER_DAY)  # traffic, and so load, by hour
    if kind == "latency":
        base = 0.05 * day * rng.lognormal(0, 0.15, n)
        spikes = rng.random(n) < 0.005
        return np.where(spikes, base * rng.uniform(1.5, 3, n), base)
    if kind == "error_rate":
        requests = rng.poisson(300 * day)
        return rng.binomial(requests, 0.002) / np.maximum(requests, 1)
    wait = 0.4 * day * rng.gamma(4, 0.25, n)  # queue_age
    bursts = rng.random(n) < 0.01
    return np.where(bursts, wait + rng.uniform(1, 3, n), wait)


FAULTS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "latency x3": lambda x, k: x * 3,
    "latency x1.5": lambda x, k: x * 1.5,
    "error rate 5 %": lambda x, k: x + 0.05,
    "error rate 1 %": lambda x, k: x + 0.01,
    "backlog +2 s/sample": lambda x, k: x + 2.0 * (k + 1),
    "backlog +0.5 s/sample": lambda x, k: x + 0.5 * (k + 1),
}
SERIES = {"latency": "latency", "error": "error_rate", "backlog": "queue_age"}


def detector(kind: str, policy: AnomalySettings) -> RobustZ:
    floor, relative = SCALES[kind]
    return RobustZ(
        window=policy.window,
        warmup=policy.warmup,
        threshold=policy.threshold,
        persistence=policy.persistence,
        floor=floor,
        relative=relative,
    )


def false_alarms(days: int, policy: AnomalySettings) -> dict[str, float]:
    """Anomalies raised per day on clean series."""
    out = {}
    for kind in SCALES:
        rng = np.random.default_rng(hash(kind) % 2**32)
        d = detector(kind, policy)
        raised = sum(d.update(float(v)).raised for v in clean(kind, days * PER_DAY, rng))
        out[kind] = raised / days
    return out


def delays(fault: str, trials: int, policy: AnomalySettings) -> dict[str, Any]:
    """Detection delay (s) of ``fault`` over ``trials`` random starts, and misses."""
    kind = SERIES[fault.split()[0]]
    rng = np.random.default_rng(sum(map(ord, fault)))
    found: list[float] = []
    early = 0
    for _ in range(trials):
        start = WARM + int(rng.integers(0, PER_DAY // 2))
        series = clean(kind, start + HORIZON, rng)
        k = np.arange(HORIZON)
        series[start:] = FAULTS[fault](series[start:], k)
        d = detector(kind, policy)
        for i, v in enumerate(series):
            if d.update(float(v)).raised:
                if i < start:
                    early += 1  # a false alarm before the fault: keep looking
                    continue
                found.append((i - start + 1) * INTERVAL_S)
                break
    return {
        "trials": trials,
        "detected": len(found),
        "missed": trials - len(found),
        "delay_median_s": float(np.median(found)) if found else None,
        "delay_p95_s": float(np.percentile(found, 95)) if found else None,
        "alarms_before_fault": early,
    }


def main() -> None:
    p = parser(__doc__, "3 clean days, 40 faults a kind")
    p.add_argument("--days", type=int, default=14)
    p.add_argument("--trials", type=int, default=200)
    args = parse(p, {"days": 3, "trials": 40})
    started = time.perf_counter()
    runs = {}
    for threshold in (6.0, 4.0):  # the default, and a more sensitive setting
        policy = AnomalySettings(threshold=threshold)
        fa = false_alarms(args.days, policy)
        faults = {name: delays(name, args.trials, policy) for name in FAULTS}
        runs[f"z>{threshold:g}"] = {"policy": policy.model_dump(), "fa": fa, "faults": faults}
        rows = [
            (name, f"{r['detected']}/{r['trials']}", r["delay_median_s"], r["delay_p95_s"])
            for name, r in faults.items()
        ]
        print(f"\nthreshold {threshold:g}, persistence {policy.persistence}")
        print(table(["fault", "detected", "median delay s", "p95 delay s"], rows, "lrrr"))
        print(table(["series", "false alarms/day"], [(k, f"{v:.2f}") for k, v in fa.items()], "lr"))
    result = {
        "interval_s": INTERVAL_S,
        "clean_days": args.days,
        "runs": runs,
        "seconds": round(time.perf_counter() - started, 1),
    }
    default = runs["z>6"]
    headline = [f"false alarms/day {sum(default['fa'].values()):.2f} (3 series, z>6)"] + [
        f"{n}: median {r['delay_median_s']} s" for n, r in default["faults"].items() if "x3" in n
    ]
    print(json.dumps(result, indent=1)[:2000])
    save("anomaly", result, headline)


if __name__ == "__main__":
    main()
