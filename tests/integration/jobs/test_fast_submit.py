"""POST /v1/jobs answered by the gateway's fast path (services/gateway/fast_submit.py)
is the same API as through FastAPI's route: same statuses, headers, bodies and
problems. A JSON body sent as ``application/vnd.pixelmill+json`` goes through FastAPI's
route (which parses any ``+json`` type; the fast path takes only ``application/json``),
so each story submits both ways and compares. (Backpressure on the
fast path: test_jobs_api.py, whose requests all take it.)"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from pixelmill.services.gateway.fast_submit import FastSubmit
from tests.helpers import make_key
from tests.integration.jobs.conftest import Gateway

JSON = {"Content-Type": "application/json"}
ROUTED = {"Content-Type": "application/vnd.pixelmill+json"}


def post_both(gateway: Gateway, body: Any, headers: dict[str, str]) -> tuple[Any, Any]:
    """The same request through the fast path, then through FastAPI's route (with the
    same request id, which problem bodies repeat)."""
    content = orjson.dumps(body)
    headers = {**headers, "X-Request-ID": "same-request"}
    fast = gateway.client.post("/v1/jobs", content=content, headers={**headers, **JSON})
    routed = gateway.client.post("/v1/jobs", content=content, headers={**headers, **ROUTED})
    return fast, routed


def test_an_accepted_job_is_answered_the_same_both_ways(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an image and a pipeline, and a count of the answers the fast path gives
    image = gateway.upload()
    body = {"inputs": [image], "pipeline": [{"op": "flip"}]}
    answered: list[Any] = []
    real = FastSubmit._try_submit

    async def counted(self: FastSubmit, scope: Any, content: bytes) -> Any:
        answer = await real(self, scope, content)
        answered.append(answer)
        return answer

    monkeypatch.setattr(FastSubmit, "_try_submit", counted)
    # when it is submitted through each path
    fast, routed = post_both(gateway, body, gateway.auth)
    # then the fast path answered the first itself and handed the second to FastAPI
    assert [answer is not None for answer in answered] == [True, False]
    # then both are accepted jobs, with the same shape and a Location of their own
    assert (fast.status_code, routed.status_code) == (202, 202)
    assert fast.headers["content-type"] == routed.headers["content-type"] == "application/json"
    assert fast.headers["location"] == f"/v1/jobs/{fast.json()['id']}"
    assert fast.json().keys() == routed.json().keys()
    assert fast.json()["state"] == "queued"
    assert gateway.wait(fast.json()["id"])["state"] == "succeeded"
    assert gateway.jobs.repo.count() == 2


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"inputs": ["nope"], "pipeline": [{"op": "flip"}]}, 422),  # refused by the service
        ({"inputs": ["IMG"], "pipeline": [{"op": "no-such-op"}]}, 422),
        ({"inputs": ["IMG"], "pipeline": []}, 422),
        ({"inputs": ["IMG"]}, 422),  # refused by the route: no pipeline
        ({"inputs": ["IMG"], "pipeline": [{"op": "flip"}], "priority": 10}, 422),  # schema
        ([1, 2], 422),  # not an object
    ],
)
def test_a_refused_job_gets_the_same_problem_both_ways(
    gateway: Gateway, body: Any, status: int
) -> None:
    image = gateway.upload()
    body = orjson.loads(orjson.dumps(body).replace(b'"IMG"', f'"{image}"'.encode()))
    fast, routed = post_both(gateway, body, gateway.auth)
    assert (fast.status_code, routed.status_code) == (status, status)
    assert fast.headers["content-type"] == "application/problem+json"
    assert fast.json() == routed.json()
    assert gateway.jobs.repo.count() == 0


def test_keys_are_checked_the_same_both_ways(gateway: Gateway) -> None:
    body = {"kind": "test.sleep", "params": {"seconds": 0}}
    _, read_key = make_key(gateway.container, "reader", role="read")
    for headers, status in [
        ({}, 401),
        ({"Authorization": "Basic abc"}, 401),
        ({"Authorization": "Bearer not-a-key"}, 401),
        ({"Authorization": f"Bearer {read_key}"}, 403),
    ]:
        fast, routed = post_both(gateway, body, headers)
        assert (fast.status_code, routed.status_code) == (status, status)
        assert fast.json() == routed.json()
        assert fast.headers.get("www-authenticate") == routed.headers.get("www-authenticate")
    assert gateway.jobs.repo.count() == 0


def test_an_idempotency_key_header_works_on_the_fast_path(gateway: Gateway) -> None:
    # given a job submitted under an Idempotency-Key header
    body = {"kind": "test.sleep", "params": {"seconds": 0}}
    header = {**gateway.auth, **JSON, "Idempotency-Key": "order-9"}
    first = gateway.client.post("/v1/jobs", content=orjson.dumps(body), headers=header)
    again = gateway.client.post("/v1/jobs", content=orjson.dumps(body), headers=header)
    # then the resubmit returns the same job, and a different request is a conflict
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    other = orjson.dumps({"kind": "test.sleep", "params": {"seconds": 1}})
    conflict = gateway.client.post("/v1/jobs", content=other, headers=header)
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"
