"""Jobs are scoped per API key, over SQLite and PostgreSQL (where the job is written by
the one-statement create): a non-admin key reads, lists, cancels, watches and fetches
the results of its own jobs only — another key's job is a 404 indistinguishable from an
unknown id — and an admin key sees every job and can filter the list by owner."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import make_key
from tests.integration.jobs.conftest import Gateway, job_settings, job_settings_on, open_gateway

#: an embedded gateway (SQLite or the given DB) as a context manager
gateway_at = contextmanager(open_gateway)


@dataclass
class Keys:
    """The gateway's own write key (alice) plus bob (write), a read key and an admin."""

    gw: Gateway
    alice: str
    bob: dict[str, str]
    reader: dict[str, str]
    admin: dict[str, str]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.server)])
def keys(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Keys]:
    with gateway_at(job_settings_on(request.param, request, tmp_path)) as gw:
        made = {}
        for name, role in (("bob", "write"), ("reader", "read"), ("admin", "admin")):
            _, secret = make_key(gw.container, name, role=role)  # type: ignore[arg-type]
            made[name] = {"Authorization": f"Bearer {secret}"}
        (alice,) = [k.user_id for k in gw.container.keys.list() if k.name == "jobs test"]
        yield Keys(gw, alice, made["bob"], made["reader"], made["admin"])


def submit(gw: Gateway, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    resp = gw.client.post("/v1/jobs", json=body, headers=auth)
    assert resp.status_code == 202, resp.text
    return resp.json()  # type: ignore[no-any-return]


def ids(gw: Gateway, auth: dict[str, str], query: str = "") -> list[str]:
    resp = gw.client.get(f"/v1/jobs{query}", headers=auth)
    assert resp.status_code == 200, resp.text
    return [j["id"] for j in resp.json()["items"]]


def not_found_like_unknown(gw: Gateway, method: str, path: str, job_id: str, **kw: Any) -> None:
    """``path`` (with ``job_id``) answers the very 404 an unknown job id gets."""
    unknown = "0" * 32
    resp = gw.client.request(method, path.format(job_id), **kw)
    other = gw.client.request(method, path.format(unknown), **kw)
    assert resp.status_code == other.status_code == 404, (path, resp.text)
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["detail"].replace(job_id, "ID") == other.json()["detail"].replace(
        unknown, "ID"
    )
    assert resp.json()["title"] == other.json()["title"]


def test_a_key_sees_only_its_own_jobs(keys: Keys) -> None:
    # given a job of alice's with artifacts, finished, and a job of bob's
    gw = keys.gw
    image = gw.upload()
    mine = gw.wait(gw.submit(kind="test.artifacts", inputs=[image])["id"])
    theirs = submit(gw, keys.bob, kind="test.sleep", params={"seconds": 0})
    assert mine["state"] == "succeeded" and mine["owner"] == keys.alice
    # then each key lists only its own job
    assert ids(gw, gw.auth) == [mine["id"]]
    assert ids(gw, keys.bob) == [theirs["id"]]
    assert ids(gw, keys.reader) == []  # a read key submits nothing, so it owns nothing
    # and for bob (and the read key) alice's job does not exist, wherever he looks
    for auth in (keys.bob, keys.reader):
        for path in (
            "/v1/jobs/{}",
            "/v1/jobs/{}/results",
            "/v1/jobs/{}/results/cells",
            "/v1/jobs/{}/tasks/0/results/cells",
            "/v1/jobs/{}/events",
        ):
            not_found_like_unknown(gw, "GET", path, mine["id"], headers=auth)
    # while alice still reads all of it
    assert gw.client.get(f"/v1/jobs/{mine['id']}/results/cells", headers=gw.auth).status_code == 200
    events = gw.client.get(f"/v1/jobs/{mine['id']}/events", headers=gw.auth)
    assert "event: snapshot" in events.text and '"succeeded"' in events.text


def test_another_key_cannot_cancel_a_job(keys: Keys) -> None:
    # given a long job of alice's
    gw = keys.gw
    job = gw.submit(kind="test.sleep", params={"seconds": 20})
    # when bob cancels it: 404, as for a job that does not exist, and it keeps running
    not_found_like_unknown(gw, "POST", "/v1/jobs/{}/cancel", job["id"], headers=keys.bob)
    assert gw.job(job["id"])["state"] in ("queued", "running")
    # alice can
    resp = gw.client.post(f"/v1/jobs/{job['id']}/cancel", headers=gw.auth)
    assert resp.status_code == 200 and resp.json()["state"] == "cancelled"


def test_an_admin_key_sees_every_job_and_filters_by_owner(keys: Keys) -> None:
    gw = keys.gw
    first = gw.submit(kind="test.sleep", params={"seconds": 0})
    second = gw.submit(kind="test.sleep", params={"seconds": 0})
    theirs = submit(gw, keys.bob, kind="test.sleep", params={"seconds": 30})
    bob = gw.client.get(f"/v1/jobs/{theirs['id']}", headers=keys.admin).json()["owner"]
    # the admin lists all three, newest first, and filters them by the submitting key
    assert ids(gw, keys.admin) == [theirs["id"], second["id"], first["id"]]
    assert ids(gw, keys.admin, f"?owner={bob}") == [theirs["id"]]
    page = gw.client.get(f"/v1/jobs?owner={keys.alice}&limit=1", headers=keys.admin).json()
    assert [j["id"] for j in page["items"]] == [second["id"]]
    assert f"owner={keys.alice}" in page["next"]
    assert [j["id"] for j in gw.client.get(page["next"], headers=keys.admin).json()["items"]] == [
        first["id"]
    ]
    # and may cancel anyone's job
    resp = gw.client.post(f"/v1/jobs/{theirs['id']}/cancel", headers=keys.admin)
    assert resp.status_code == 200 and resp.json()["state"] == "cancelled"
    # a non-admin key may filter by its own id, but not list another key's jobs
    assert ids(gw, gw.auth, f"?owner={keys.alice}") == [second["id"], first["id"]]
    resp = gw.client.get(f"/v1/jobs?owner={bob}", headers=gw.auth)
    assert resp.status_code == 403 and "admin" in resp.json()["detail"]


def test_a_job_submitted_without_a_key_is_visible_to_admin_keys_only(keys: Keys) -> None:
    # given a job a service submitted on its own (no API key, e.g. a scheduled run)
    gw = keys.gw
    job, _ = gw.jobs.submit(kind="test.sleep", params={"seconds": 0})
    # then no ordinary key sees it, an admin key does
    not_found_like_unknown(gw, "GET", "/v1/jobs/{}", job.id, headers=gw.auth)
    assert job.id not in ids(gw, gw.auth)
    resp = gw.client.get(f"/v1/jobs/{job.id}", headers=keys.admin)
    assert resp.status_code == 200 and resp.json()["owner"] is None
    assert job.id in ids(gw, keys.admin)
    # and finds all of those alone with ?owner=none; an ordinary key may not ask
    gw.submit(kind="test.sleep", params={"seconds": 0})  # an owned one, not listed
    assert ids(gw, keys.admin, "?owner=none") == [job.id]
    assert gw.client.get("/v1/jobs?owner=none", headers=gw.auth).status_code == 403


def test_with_authentication_disabled_every_job_is_visible(tmp_path: Path) -> None:
    with gateway_at(job_settings(tmp_path, security={"auth_enabled": False})) as gw:
        job = gw.client.post("/v1/jobs", json={"kind": "test.sleep", "params": {"seconds": 0}})
        assert job.status_code == 202
        assert gw.client.get(f"/v1/jobs/{job.json()['id']}").status_code == 200
        assert [j["id"] for j in gw.client.get("/v1/jobs").json()["items"]] == [job.json()["id"]]
