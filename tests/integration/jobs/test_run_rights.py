"""A job runs only while its owner may run it: a worker checks, as each task starts,
that the owner is still an active user who may read the task's images. Rights lost
while the job waited in its queue (a study membership removed, the account disabled)
fail the task with the reason, with no result written. Submissions, and admins' reads
of other users' jobs, are in the audit log. Over SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import make_image
from tests.integration.gateway.workspace_helpers import study, user, user_id
from tests.integration.jobs.conftest import Gateway, job_settings_on, open_gateway
from tests.jobs_helpers import wait_for

gateway_at = contextmanager(open_gateway)


@dataclass
class World:
    """One job thread; Olga owns an image shared in her study, where Ana is an analyst."""

    gw: Gateway
    people: dict[str, dict[str, str]]
    study_id: str
    image_id: str
    gate: Path

    def submit(self, who: str, **body: Any) -> dict[str, Any]:
        resp = self.gw.client.post("/v1/jobs", json=body, headers=self.people[who])
        assert resp.status_code == 202, resp.text
        return resp.json()  # type: ignore[no-any-return]

    def hold_the_worker(self) -> dict[str, Any]:
        """A job that keeps the only job thread busy until :meth:`release`."""
        job = self.submit("olga", kind="test.gate", params={"path": str(self.gate)})
        wait_for(lambda: self.read(job["id"])["state"] == "running", timeout=20, interval=0.05)
        return job

    def release(self) -> None:
        self.gate.touch()

    def read(self, job_id: str, who: str = "root") -> dict[str, Any]:
        resp = self.gw.client.get(f"/v1/jobs/{job_id}", headers=self.people[who])
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    def finished(self, job_id: str) -> dict[str, Any]:
        done = ("succeeded", "failed", "cancelled")
        return wait_for(  # type: ignore[no-any-return]
            lambda: (j := self.read(job_id))["state"] in done and j, timeout=20, interval=0.05
        )

    def audit(self, action: str) -> list[dict[str, Any]]:
        resp = self.gw.client.get(f"/v1/audit/events?action={action}", headers=self.people["root"])
        assert resp.status_code == 200, resp.text
        return resp.json()["items"]  # type: ignore[no-any-return]


def _world(gw: Gateway, tmp_path: Path) -> World:
    c = gw.container
    people = {name: user(c, name) for name in ("olga", "ana")}
    people["root"] = user(c, "root", "admin")
    image = gw.client.post("/v1/images", content=make_image(32, 24), headers=people["olga"])
    assert image.status_code == 201, image.text
    sid = study(gw.client, people["olga"], {"ana": "analyst"}, container=c)
    image_id = image.json()["id"]
    link = gw.client.post(
        f"/v1/studies/{sid}/images", json={"image_id": image_id}, headers=people["olga"]
    )
    assert link.status_code == 201, link.text
    return World(gw, people, sid, image_id, tmp_path / "gate")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.server)])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    settings = job_settings_on(request.param, request, tmp_path, jobs={"embedded_threads": 1})
    with gateway_at(settings) as gw:
        yield _world(gw, tmp_path)


def test_a_job_queued_before_its_owner_left_the_study_does_not_read_the_image(
    world: World,
) -> None:
    # given Ana's job on Olga's shared image, and Olga's own, waiting behind a busy worker
    w = world
    held = w.hold_the_worker()
    anas = w.submit("ana", kind="test.artifacts", inputs=[w.image_id])
    olgas = w.submit("olga", kind="test.artifacts", inputs=[w.image_id])
    # when Olga removes Ana from the study before the jobs run
    ana_id = user_id(w.gw.container, "ana")
    gone = w.gw.client.delete(
        f"/v1/studies/{w.study_id}/members/{ana_id}", headers=w.people["olga"]
    )
    assert gone.status_code == 204
    w.release()
    # then Ana's job fails with the reason and wrote nothing
    job = w.finished(anas["id"])
    assert job["state"] == "failed"
    (task,) = job["tasks"]
    assert "may no longer read image" in task["error"] and w.image_id in task["error"]
    assert task["artifacts"] == [] and task["result_image"] is None
    results = w.gw.client.get(f"/v1/jobs/{anas['id']}/results", headers=w.people["ana"]).json()
    assert results["artifacts"] == [] and results["images"] == []
    # while Olga's job, and the one that held the worker, ran as before
    assert w.finished(olgas["id"])["state"] == "succeeded"
    assert w.finished(held["id"])["state"] == "succeeded"
    # and the refusal is in the audit log, naming Ana and her job
    (denial,) = w.audit("denied.job.run")
    assert (denial["actor_username"], denial["target_id"]) == ("ana", anas["id"])
    assert denial["after"]["image_id"] == w.image_id


def test_a_job_of_an_owner_disabled_while_it_waited_does_not_run(world: World) -> None:
    w = world
    w.hold_the_worker()
    image = w.gw.client.post("/v1/images", content=make_image(16, 16), headers=w.people["ana"])
    job = w.submit("ana", kind="test.artifacts", inputs=[image.json()["id"]])
    ana_id = user_id(w.gw.container, "ana")
    off = w.gw.client.patch(
        f"/v1/users/{ana_id}", json={"disabled": True}, headers=w.people["root"]
    )
    assert off.status_code == 200, off.text
    w.release()
    failed = w.finished(job["id"])
    assert failed["state"] == "failed"
    assert "'ana' is disabled" in failed["tasks"][0]["error"]
    assert failed["tasks"][0]["artifacts"] == []


def test_submissions_and_admins_reads_of_others_jobs_are_audited(world: World) -> None:
    w = world
    # a submission is recorded with who, what and the request (an idempotent repeat,
    # which submits nothing, is not)
    resp = w.gw.client.post(
        "/v1/jobs",
        json={"kind": "test.sleep", "params": {"seconds": 0}},
        headers={**w.people["ana"], "X-Request-ID": "req-submit-1"},
    )
    assert resp.status_code == 202
    job_id = resp.json()["id"]
    again = w.gw.client.post(
        "/v1/jobs",
        json={"kind": "test.sleep", "params": {"seconds": 0}, "idempotency_key": "k1"},
        headers=w.people["ana"],
    )
    repeat = w.gw.client.post(
        "/v1/jobs",
        json={"kind": "test.sleep", "params": {"seconds": 0}, "idempotency_key": "k1"},
        headers=w.people["ana"],
    )
    assert (again.status_code, repeat.status_code) == (202, 200)
    submits = w.audit("job.submit")
    assert [e["target_id"] for e in submits] == [again.json()["id"], job_id]  # not the repeat
    first = submits[1]
    assert first["actor_username"] == "ana" and first["request_id"] == "req-submit-1"
    assert first["after"]["kind"] == "test.sleep"
    # Ana reading her own job is no admin read; the admin reading it twice is one
    w.finished(job_id)
    w.read(job_id, "ana")
    w.read(job_id, "root")
    w.read(job_id, "root")
    reads = [e for e in w.audit("admin.read") if e["target_type"] == "job"]
    assert [(e["actor_username"], e["target_id"]) for e in reads] == [("root", job_id)]
    # listing Ana's jobs is one too
    listed = w.gw.client.get(
        f"/v1/jobs?owner={user_id(w.gw.container, 'ana')}", headers=w.people["root"]
    )
    assert listed.status_code == 200
    assert [e["target_type"] for e in w.audit("admin.read")].count("jobs") == 1
