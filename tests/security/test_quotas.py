"""Abuse that per-user quotas stop (issue 18, finding 6): a member filling the disk
through every upload path, flooding the queues with jobs, and burning the training
machines with endless runs.

Each refusal is an RFC 9457 problem of type ``quota-exceeded`` (403 storage and training
minutes, 429 with Retry-After for concurrent jobs, 422 for epochs), leaves nothing half
written behind, and is a security event in the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pixelmill.runtime.container import Container, build_container
from pixelmill.services.gateway.app import create_app
from tests.conftest import make_settings
from tests.helpers import make_image
from tests.jobs_helpers import run_concurrently, wait_for
from tests.ml_helpers import TINY_SPEC, nuclei_zip
from tests.security.people import Person, person

QUOTA_EXCEEDED = "https://pixelmill.dev/problems/quota-exceeded"


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    # jobs stay queued (no job threads): a member's jobs are "queued or running"
    c = build_container(make_settings(tmp_path, jobs={"embedded_threads": 0}))
    yield c
    c.close()


@pytest.fixture
def admin(container: Container, client: TestClient) -> Person:
    return person(container, client, "root", "admin")


@pytest.fixture
def bob(container: Container, client: TestClient) -> Person:
    return person(container, client, "bob")


def set_quota(admin: Person, user: Person, **limits: int | None) -> dict[str, Any]:
    response = admin.put(f"/v1/users/{user.user_id}/quota", json=limits)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def assert_quota_problem(response: Any, status: int, quota: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == QUOTA_EXCEEDED and body["status"] == status
    assert body["quota"] == quota
    return body


def quota_denials(container: Container, user: Person) -> list[dict[str, Any]]:
    return [
        e.after
        for e in container.events.list(security=True)
        if e.action == "denied.quota" and e.actor_id == user.user_id
    ]


def stored_objects(container: Container, prefix: str) -> list[str]:
    return list(container.storage.list(prefix))


def test_uploading_past_the_storage_quota_is_refused_and_leaves_nothing_behind(
    container: Container, admin: Person, bob: Person
) -> None:
    first, second = make_image(64, 64, fmt=".png", seed=1), make_image(64, 64, fmt=".png", seed=2)
    set_quota(admin, bob, stored_bytes=len(first) + len(second) // 2)
    assert bob.post("/v1/images", content=first).status_code == 201

    body = assert_quota_problem(bob.post("/v1/images", content=second), 403, "stored_bytes")

    assert body["used"] == len(first) and body["requested"] == len(second)
    assert bob.get("/v1/images").json()["total"] == 1
    assert len(stored_objects(container, "originals/")) == 1  # no orphan bytes
    assert bob.post("/v1/images", content=first).status_code == 200  # his own: no new bytes
    assert quota_denials(container, bob) == [
        {
            "quota": "stored_bytes",
            "limit": len(first) + len(second) // 2,
            "used": len(first),
            "requested": len(second),
        }
    ]


def test_eight_uploads_at_once_cannot_slip_past_the_storage_quota_together(
    container: Container, client: TestClient, admin: Person, bob: Person
) -> None:
    images = [make_image(64, 64, fmt=".png", seed=10 + i) for i in range(8)]
    limit = sum(sorted(len(i) for i in images)[:3])  # room for about three
    set_quota(admin, bob, stored_bytes=limit)
    answers: list[int] = []

    def upload(data: bytes) -> None:
        answers.append(bob.post("/v1/images", content=data).status_code)

    assert run_concurrently(*[lambda d=d: upload(d) for d in images]) == []

    assert sorted(set(answers)) == [201, 403]
    stored = container.quotas.report(bob.user_id)["usage"]["stored_bytes"]
    assert stored <= limit  # the check runs under his lock, in the insert's transaction
    assert len(stored_objects(container, "originals/")) == answers.count(201)


def test_a_dataset_past_the_storage_quota_is_refused_and_nothing_is_stored(
    container: Container, admin: Person, bob: Person
) -> None:
    archive = nuclei_zip(4)
    set_quota(admin, bob, stored_bytes=len(archive) - 1)

    assert_quota_problem(bob.post("/v1/datasets", content=archive), 403, "stored_bytes")

    assert bob.get("/v1/datasets").json()["items"] == []
    assert stored_objects(container, "datasets/") == []


def test_a_model_version_past_the_storage_quota_is_refused_and_nothing_is_stored(
    container: Container, admin: Person, bob: Person
) -> None:
    pytest.importorskip("onnx")
    from tests.security import attacks

    model = attacks.conv_model(1)
    set_quota(admin, bob, stored_bytes=len(model) - 1)

    response = bob.post(
        "/v1/models/bobs/versions",
        params={"input_spec": '{"task": "segmentation", "channels": 1}'},
        content=model,
    )

    assert_quota_problem(response, 403, "stored_bytes")
    assert bob.get("/v1/models/bobs/versions/1").status_code == 404
    assert stored_objects(container, "models/") == []
    assert [d["quota"] for d in quota_denials(container, bob)] == ["stored_bytes"]


def test_a_study_import_that_cannot_fit_is_refused_before_any_job_exists(
    container: Container, admin: Person, bob: Person
) -> None:
    study = bob.post("/v1/studies", json={"name": "S"}).json()["id"]
    data = make_image(64, 64, fmt=".png", seed=3)
    set_quota(admin, bob, stored_bytes=len(data) - 1)

    response = bob.post(
        f"/v1/studies/{study}/imports", files=[("files", ("a.png", data, "image/png"))]
    )

    assert_quota_problem(response, 403, "stored_bytes")
    assert container.quotas.report(bob.user_id)["usage"]["concurrent_jobs"] == 0
    assert stored_objects(container, "imports/") == []


def test_a_member_at_the_concurrent_jobs_limit_gets_429_with_retry_after(
    container: Container, admin: Person, bob: Person
) -> None:
    image = bob.post("/v1/images", content=make_image(32, 32, fmt=".png")).json()["id"]
    set_quota(admin, bob, concurrent_jobs=2)
    job = {"inputs": [image], "pipeline": [{"op": "grayscale"}]}
    first = bob.post("/v1/jobs", json=job).json()["id"]
    assert bob.post("/v1/jobs", json=job).status_code == 202

    refused = bob.post("/v1/jobs", json=job)

    body = assert_quota_problem(refused, 429, "concurrent_jobs")
    assert body["limit"] == 2 and body["used"] == 2
    assert refused.headers["Retry-After"] == str(container.settings.quota.retry_after_s)
    # when one of his jobs ends, he may submit again; an admin is never held back
    assert bob.post(f"/v1/jobs/{first}/cancel").status_code == 200
    assert bob.post("/v1/jobs", json=job).status_code == 202
    admin_image = admin.post("/v1/images", content=make_image(32, 32, fmt=".png")).json()["id"]
    for _ in range(3):
        assert admin.post("/v1/jobs", json={**job, "inputs": [admin_image]}).status_code == 202


def training_run(user: Person, dataset: str, **spec: Any) -> Any:
    return user.post(
        "/v1/training-runs",
        json={"model": "bobs", "dataset": dataset, "spec": {**TINY_SPEC, **spec}},
    )


def test_a_training_run_asking_more_epochs_than_the_cap_is_refused_at_submit(
    container: Container, admin: Person, bob: Person
) -> None:
    dataset = bob.post("/v1/datasets", content=nuclei_zip(4)).json()["id"]
    set_quota(admin, bob, max_epochs=50)

    body = assert_quota_problem(training_run(bob, dataset, epochs=51), 422, "max_epochs")

    assert body["limit"] == 50 and body["requested"] == 51
    assert container.quotas.report(bob.user_id)["usage"]["concurrent_jobs"] == 0


def test_a_member_whose_training_minutes_are_used_up_cannot_start_a_run(
    container: Container, admin: Person, bob: Person
) -> None:
    dataset = bob.post("/v1/datasets", content=nuclei_zip(4)).json()["id"]
    set_quota(admin, bob, training_minutes=30)
    container.quotas.repo.record_run("earlier-run", bob.user_id, 30 * 60.0)  # this month

    body = assert_quota_problem(training_run(bob, dataset), 403, "training_minutes")

    assert body["limit"] == 30 and body["used"] == 30
    assert container.quotas.report(bob.user_id)["usage"]["training_minutes"] == 30


def test_quotas_and_usage_are_readable_by_their_user_and_admins_only(
    container: Container, client: TestClient, admin: Person, bob: Person
) -> None:
    data = make_image(32, 32, fmt=".png")
    bob.post("/v1/images", content=data)
    set_quota(admin, bob, stored_bytes=10_000_000, training_minutes=0)
    alice = person(container, client, "alice")

    mine = bob.get("/v1/users/me/quota").json()

    defaults = container.settings.quota
    assert mine["limits"] == {
        "stored_bytes": 10_000_000,
        "concurrent_jobs": defaults.concurrent_jobs,
        "training_minutes": None,  # 0: unlimited
        "max_epochs": defaults.max_epochs,
    }
    assert mine["usage"]["stored_bytes"] == len(data) == mine["usage"]["stored"]["images"]
    month = datetime.now(UTC).strftime("%Y-%m-01")
    assert mine["usage"]["training_period"]["start"].startswith(month)
    assert admin.get(f"/v1/users/{bob.user_id}/quota").json() == mine
    assert alice.get(f"/v1/users/{bob.user_id}/quota").status_code == 404
    assert alice.put(f"/v1/users/{alice.user_id}/quota", json={}).status_code == 403
    # site admins are exempt from the defaults
    assert set(admin.get("/v1/users/me/quota").json()["limits"].values()) == {None}
    assert bob.user_id not in client.get("/metrics").text  # no user ids as metric labels


def test_a_running_training_run_is_stopped_when_the_minutes_are_used_up(
    tmp_path: Path,
) -> None:
    pytest.importorskip("torch")
    settings = make_settings(tmp_path, quota={"training_sync_s": 0.05, "cache_s": 0})
    c = build_container(settings)
    try:
        with TestClient(create_app(c), raise_server_exceptions=False) as client:
            admin, bob = person(c, client, "root", "admin"), person(c, client, "bob")
            set_quota(admin, bob, training_minutes=10, max_epochs=0)  # 0: any number
            c.quotas.repo.record_run("earlier-run", bob.user_id, 2 * 60.0)
            dataset = bob.post("/v1/datasets", content=nuclei_zip(6)).json()["id"]
            forever = {"epochs": 10_000, "patience": 1000}
            job_id = training_run(bob, dataset, **forever).json()["job_id"]
            # the run is training: its meter has recorded its first seconds
            seen = wait_for(lambda: c.quotas.repo.run_seconds(job_id), timeout=120)

            # when an admin lowers his minutes to what he has used already
            set_quota(admin, bob, training_minutes=2, max_epochs=0)

            job = wait_for(lambda: _final(bob, job_id), timeout=60)
            assert job["state"] == "failed"
            assert "training minutes" in job["error"]
            assert c.quotas.repo.run_seconds(job_id) > seen  # recorded again as it ended
            assert "training_minutes" in [d["quota"] for d in quota_denials(c, bob)]
    finally:
        c.close()


def _final(user: Person, job_id: str) -> dict[str, Any] | None:
    job: dict[str, Any] = user.get(f"/v1/jobs/{job_id}").json()
    return job if job["state"] in ("succeeded", "failed", "cancelled") else None
