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
