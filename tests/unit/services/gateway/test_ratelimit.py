"""What each request costs, and where budgets are counted."""

from __future__ import annotations

import pytest

from pixelmill.services.gateway.ratelimit import route_cost, storage_url
from pixelmill.settings import RateLimitSettings

COSTS = RateLimitSettings(
    cost_other=1, cost_render=4, cost_upload=10, cost_job_submit=7, cost_auth_failure=99
)


@pytest.mark.parametrize(
    ("method", "path", "cost"),
    [
        ("GET", "/v1/images/abc/render", 4),
        ("HEAD", "/v1/images/abc/render", 4),
        ("POST", "/v1/models/nuclei@production/predict", 4),  # a prediction is compute too
        ("POST", "/v1/images", 10),
        ("POST", "/v1/datasets", 10),
        ("POST", "/v1/models/nuclei/versions", 10),
        ("POST", "/v1/jobs", 7),
        ("GET", "/v1/jobs", 1),
        ("GET", "/v1/images", 1),
        ("DELETE", "/v1/images/abc", 1),
        ("GET", "/v1/images/render", 1),  # an image id, not a render
    ],
)
def test_each_route_class_costs_its_setting(method: str, path: str, cost: int) -> None:
    assert route_cost(COSTS, method, path) == cost


def test_budgets_follow_the_cache_to_redis_unless_told_otherwise() -> None:
    default = RateLimitSettings()
    assert storage_url(default, "memory://") == "memory://"
    assert storage_url(default, "redis://cache:6379/0") == "redis://cache:6379/0"
    told = RateLimitSettings(storage_url="redis://limits:6379/3")
    assert storage_url(told, "redis://cache:6379/0") == "redis://limits:6379/3"


def test_budgets_in_memory_forget_identities_whose_window_has_passed() -> None:
    """A flood from many addresses must not grow the embedded store without bound, nor
    need a thread scanning it (the library's default)."""
    import threading
    import time

    from pixelmill.services.gateway.ratelimit import Budgets

    threads = threading.active_count()
    budgets = Budgets(RateLimitSettings(window_s=1), "memory://")
    for address in range(500):
        budgets.spend(budgets.per_ip, f"198.51.100.{address}", 1)
    store = budgets.limiter.storage
    assert len(store.storage) == 500
    time.sleep(2.2)  # every key lives two windows
    for address in range(200):  # later traffic drops the expired keys as it goes
        budgets.spend(budgets.per_ip, f"203.0.113.{address}", 1)
    assert len(store.storage) == 200 and len(store.locks) <= 200
    assert threading.active_count() <= threads
