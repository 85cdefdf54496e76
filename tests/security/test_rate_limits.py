"""Attacks by volume (issue 18, finding 6): one client rendering, uploading or guessing
keys as fast as it can, from one or several gateways."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from pixelmill.runtime.container import build_container
from pixelmill.services.gateway.app import create_app
from tests.conftest import make_settings
from tests.helpers import make_image, make_key


@contextmanager
def gateway(
    tmp_path: Path, address: str = "203.0.113.7", public: bool = False, **ratelimit: Any
) -> Iterator[tuple[TestClient, dict[str, str], Any]]:
    """A gateway with the given ``ratelimit`` settings (anonymous renders allowed when
    ``public``), a client at ``address`` and the headers of an admin key of user boss."""
    settings = make_settings(tmp_path, ratelimit=ratelimit, security={"public_read": public})
    container = build_container(settings)
    _, key = make_key(container, "admin", role="admin", username="boss")
    app = create_app(container)
    with TestClient(app, client=(address, 50000), raise_server_exceptions=False) as client:
        yield client, {"Authorization": f"Bearer {key}"}, app
    container.close()


def other_client(app: Any, address: str) -> TestClient:
    return TestClient(app, client=(address, 50001), raise_server_exceptions=False)


def assert_rate_limited(resp: Any) -> None:
    assert resp.status_code == 429, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["type"].endswith("/rate-limited")
    assert int(resp.headers["retry-after"]) >= 1
    assert int(resp.headers["ratelimit-remaining"]) < int(resp.headers["ratelimit-limit"])
    assert int(resp.headers["ratelimit-reset"]) >= 1


def test_guessing_api_keys_from_one_address_is_locked_out_after_a_few_tries(
    tmp_path: Path,
) -> None:
    # given failures cost 100 of an address's 500 units: five wrong keys
    with gateway(tmp_path, per_ip=500, cost_auth_failure=100) as (client, auth, app):
        for attempt in range(5):
            guess = {"Authorization": f"Bearer pm_guess{attempt}"}
            assert client.get("/v1/jobs", headers=guess).status_code == 401
        # then the next guess is refused before any key is looked up
        assert_rate_limited(client.get("/v1/jobs", headers={"Authorization": "Bearer pm_x"}))
        # and so is even the right key from that address, until the window moves on
        assert_rate_limited(client.get("/v1/jobs", headers=auth))
        # while the key's owner at another address is served
        with other_client(app, "198.51.100.20") as elsewhere:
            assert elsewhere.get("/v1/jobs", headers=auth).status_code == 200
            scraped = elsewhere.get("/metrics").text
        assert 'pixelmill_rate_limited_total{budget="auth_failures"}' in scraped


def test_one_key_cannot_render_without_bound_and_other_keys_are_unaffected(
    tmp_path: Path,
) -> None:
    # given a key may spend 40 units a minute and a render costs 4
    with gateway(tmp_path, per_key=40, cost_render=4, cost_upload=0) as (client, auth, app):
        image = client.post("/v1/images", content=make_image(64, 48), headers=auth).json()["id"]
        remaining = []
        for width in range(10, 20):  # ten different renders
            resp = client.get(f"/v1/images/{image}/render?w={width}", headers=auth)
            assert resp.status_code == 200, resp.text
            remaining.append(int(resp.headers["ratelimit-remaining"]))
        assert resp.headers["ratelimit-limit"] == "40"
        assert remaining == sorted(remaining, reverse=True) and remaining[-1] == 0
        # when the key asks for an eleventh
        assert_rate_limited(client.get(f"/v1/images/{image}/render?w=30", headers=auth))
        # then another key of the same client address still renders
        container = app.state.deps
        _, other = make_key(container, "other", role="read", username="boss")
        resp = client.get(
            f"/v1/images/{image}/render?w=30", headers={"Authorization": f"Bearer {other}"}
        )
        assert resp.status_code == 200
        # and the probes answer whatever the budgets
        assert client.get("/healthz", headers=auth).status_code == 200


def test_an_anonymous_client_is_bounded_per_address(tmp_path: Path) -> None:
    with gateway(tmp_path, public=True, per_ip=6, cost_other=1, cost_render=3) as (
        client,
        auth,
        app,
    ):
        image = client.post("/v1/images", content=make_image(64, 48), headers=auth).json()["id"]
        # anonymous renders are allowed here; two renders spend the address's budget
        assert client.get(f"/v1/images/{image}/render?w=20").status_code == 200
        assert client.get(f"/v1/images/{image}/render?w=21").status_code == 200
        assert_rate_limited(client.get(f"/v1/images/{image}/render?w=22"))
        with other_client(app, "198.51.100.21") as elsewhere:
            assert elsewhere.get(f"/v1/images/{image}/render?w=22").status_code == 200


def test_uploads_and_job_submissions_cost_more_than_reads(tmp_path: Path) -> None:
    with gateway(tmp_path, per_key=100, cost_upload=30, cost_job_submit=20) as (client, auth, _):
        up = client.post("/v1/images", content=make_image(32, 32), headers=auth)
        assert up.status_code == 201 and up.headers["ratelimit-remaining"] == "70"
        job = client.post("/v1/jobs", json={"kind": "nope"}, headers=auth)
        assert job.headers["ratelimit-remaining"] == "50"
        assert client.get("/v1/images", headers=auth).headers["ratelimit-remaining"] == "49"
        for seed in (1, 2):  # 49 -> 19 -> refused
            last = client.post("/v1/images", content=make_image(32, 32, seed=seed), headers=auth)
        assert_rate_limited(last)


def test_budgets_hold_across_gateways_sharing_redis(tmp_path: Path, redis_url: str) -> None:
    # given two gateways over the same services, counting budgets on the same Redis
    limits = {"storage_url": redis_url, "per_key": 12, "cost_render": 4, "cost_upload": 0}
    with gateway(tmp_path, **limits) as (first, auth, app_a):
        app_b = create_app(app_a.state.deps)
        with TestClient(app_b, client=("203.0.113.7", 50002)) as second:
            image = first.post("/v1/images", content=make_image(64, 48), headers=auth).json()
            render = f"/v1/images/{image['id']}/render?w="
            # when one key spends its budget partly on each gateway
            assert first.get(render + "10", headers=auth).status_code == 200
            assert first.get(render + "11", headers=auth).status_code == 200
            resp = second.get(render + "12", headers=auth)
            # then the second gateway counts what the first one spent
            assert resp.status_code == 200 and resp.headers["ratelimit-remaining"] == "0"
            assert_rate_limited(second.get(render + "13", headers=auth))
            assert_rate_limited(first.get(render + "14", headers=auth))


def test_budgets_in_memory_are_per_gateway(tmp_path: Path) -> None:
    """The embedded default (memory://) counts per process: the reason for Redis above."""
    with (
        gateway(tmp_path, per_key=4, cost_render=4, cost_upload=0) as (first, auth, app_a),
        TestClient(create_app(app_a.state.deps)) as second,
    ):
        image = first.post("/v1/images", content=make_image(64, 48), headers=auth).json()
        render = f"/v1/images/{image['id']}/render?w="
        assert first.get(render + "10", headers=auth).status_code == 200
        assert first.get(render + "11", headers=auth).status_code == 429
        assert second.get(render + "11", headers=auth).status_code == 200


def test_the_defaults_let_an_ordinary_client_work(client: TestClient, auth: dict[str, str]) -> None:
    image = client.post("/v1/images", content=make_image(64, 48), headers=auth).json()["id"]
    for width in range(16, 116):
        assert client.get(f"/v1/images/{image}/render?w={width}", headers=auth).status_code == 200
    assert int(client.get("/v1/images", headers=auth).headers["ratelimit-remaining"]) > 1000


def test_a_gateway_whose_budget_store_is_down_keeps_serving(tmp_path: Path, caplog: Any) -> None:
    """Limits protect capacity; an unreachable Redis must not turn into an outage."""
    with gateway(tmp_path, storage_url="redis://127.0.0.1:1/0") as (client, auth, _):
        for _ in range(3):
            resp = client.get("/v1/images", headers=auth)
            assert resp.status_code == 200 and "ratelimit-limit" not in resp.headers
    assert "rate limits not enforced" in caplog.text
