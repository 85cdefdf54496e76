"""The baselines reproduce their documented algorithms."""

from __future__ import annotations

from typing import Any

from pixelmill.autoscale import Observation, Observations, PolicyConfig, ServiceConfig, ServiceTime
from pixelmill.autoscale.baselines import POLICIES, hpa_desired

TIME = ServiceTime(0.5, 0.5)
SERVICE = ServiceConfig("jobs", "queue_wait", 10.0, min_replicas=1, max_replicas=1000)
CONFIG = PolicyConfig(services=(SERVICE,))


def _obs(now: float, **fields: Any) -> Observation:
    values: dict[str, Any] = {
        "at": now,
        "arrival_rate": 10.0,
        "short_rate": 10.0,
        "queue_ready": 0,
        "queue_unacked": 0,
        "oldest_age_s": 0.0,
        "service": TIME,
        "in_flight": 0,
        "cpu": 0.7,
        "replicas": 10,
        "ready": 10,
    }
    values.update(fields)
    return Observation(**values)


def _run(name: str, steps: list[tuple[float, dict[str, Any]]]) -> list[int]:
    spec, state, out = POLICIES[name], POLICIES[name].initial_state(CONFIG), []
    for now, fields in steps:
        decision = spec.decide(CONFIG, Observations(now, {"jobs": _obs(now, **fields)}), state)
        state = decision.state
        out.append(decision.replicas["jobs"])
    return out


def test_hpa_formula_on_the_kubernetes_docs_examples() -> None:
    # "if the current metric value is 200m, and the desired value is 100m, the number of
    # replicas will be doubled"; "if the current value is instead 50m, halve"
    assert hpa_desired(current=3, ready=3, usage=200, target=100) == 6
    assert hpa_desired(current=4, ready=4, usage=50, target=100) == 2
    # within the 0.1 tolerance nothing changes
    assert hpa_desired(current=5, ready=5, usage=108, target=100) == 5
    assert hpa_desired(current=5, ready=5, usage=92, target=100) == 5


def test_hpa_counts_unready_pods_as_idle_when_scaling_up() -> None:
    # 4 ready pods at 150 % of target, 2 more starting: recomputed as 4*1.5/6 = 1.0 -> hold
    assert hpa_desired(current=6, ready=4, usage=150, target=100) == 6
    # 4 ready at 300 %, 2 starting: 4*3/6 = 2.0 -> ceil(2.0 * 6) = 12
    assert hpa_desired(current=6, ready=4, usage=300, target=100) == 12


def test_hpa_scale_down_waits_for_the_300_s_stabilisation_window() -> None:
    busy = [(t, {"cpu": 1.4}) for t in (0.0, 15.0)]
    idle = [(30.0 + 15 * i, {"cpu": 0.2, "replicas": 20, "ready": 20}) for i in range(25)]
    replicas = _run("hpa", busy + idle)
    assert replicas[:2] == [20, 20]
    # inside 300 s of the last high recommendation the replicas stay
    assert all(r == 20 for r, (now, _) in zip(replicas[2:], idle, strict=True) if now < 300)
    assert replicas[-1] < 20


def test_hpa_scale_up_is_limited_to_double_or_plus_four() -> None:
    assert _run("hpa", [(0.0, {"cpu": 7.0, "replicas": 2, "ready": 2})]) == [6]
    assert _run("hpa", [(0.0, {"cpu": 7.0, "replicas": 10, "ready": 10})]) == [20]


def test_keda_ready_only_scales_busy_workers_away() -> None:
    # every worker busy, its prefetch holds the backlog: nothing is "ready" in the queue
    busy = {"queue_ready": 0, "queue_unacked": 80, "in_flight": 10}
    steps = [(15.0 * i, busy) for i in range(30)]
    assert _run("keda_ready", steps)[-1] == SERVICE.min_replicas
    # counting unacked, it wants 80 / 0.7 = 115 and doubles towards it (the HPA's limit)
    assert _run("keda_unacked", steps)[-1] == 20


def test_ray_waits_30_s_before_scaling_up() -> None:
    loaded = {"queue_ready": 30, "queue_unacked": 10}
    replicas = _run("ray", [(float(t), loaded) for t in range(40)])
    assert replicas[:29] == [10] * 29
    assert replicas[29] == 58  # ceil(40 ongoing / 0.7 per replica)


def test_static_never_moves() -> None:
    static = ServiceConfig("jobs", "queue_wait", 10.0, static_replicas=42)
    config = PolicyConfig(services=(static,))
    spec = POLICIES["static"]
    decision = spec.decide(config, Observations(0.0, {"jobs": _obs(0.0, cpu=5.0)}), {})
    assert decision.replicas == {"jobs": 42}


def test_the_oracle_sizes_for_the_future_it_is_told() -> None:
    now = _run("oracle", [(0.0, {"future_rate": 10.0})])[0]
    later = _run("oracle", [(0.0, {"future_rate": 100.0})])[0]
    assert later > 5 * now
