"""The jobs API in embedded mode (SQLite, local folder, in-process broker): submit,
watch, read results, cancel, and every up-front refusal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import pyvips

from tests.helpers import make_key
from tests.integration.jobs.conftest import Gateway, job_settings, open_gateway
from tests.jobs_helpers import sse_events, wait_for


def test_submit_a_batch_pipeline_and_get_one_result_image_per_input(gateway: Gateway) -> None:
    # given three uploaded images
    ids = [gateway.upload(80, 60, seed=i) for i in range(3)]
    # when a resize + grayscale pipeline job is submitted
    resp = gateway.client.post(
        "/v1/jobs",
        json={
            "inputs": ids,
            "pipeline": [{"op": "resize", "width": 40}, {"op": "grayscale"}],
            "output": {"format": "png"},
        },
        headers=gateway.auth,
    )
    # then it is accepted with a Location, and succeeds
    assert resp.status_code == 202
    job = resp.json()
    assert resp.headers["location"] == f"/v1/jobs/{job['id']}"
    assert (job["state"], job["queue"], job["progress"]["total"]) == ("queued", "transform", 3)
    done = gateway.wait(job["id"])
    assert done["state"] == "succeeded"
    assert done["progress"] == {
        "total": 3,
        "succeeded": 3,
        "failed": 0,
        "cancelled": 0,
        "running": 0,
        "queued": 0,
        "fraction": 1.0,
    }
    # and each input has its own result: a stored image, served and renderable like uploads
    assert [t["input"] for t in done["tasks"]] == ids
    images = done["results"]["images"]
    assert len(set(images)) == 3
    for image in images:
        body = gateway.client.get(f"/v1/images/{image}/original", headers=gateway.auth).content
        out = pyvips.Image.new_from_buffer(body, "")
        assert (out.width, out.height, out.bands) == (40, 30, 1)
        render = f"/v1/images/{image}/render?w=20"
        assert gateway.client.get(render, headers=gateway.auth).status_code == 200
        assert gateway.client.get(render).status_code == 401  # results are the job owner's
    listed = gateway.client.get(f"/v1/jobs/{job['id']}/results", headers=gateway.auth).json()
    assert [i["image"] for i in listed["images"]] == images


def test_a_pipeline_whose_later_step_reads_bottom_up_succeeds(gateway: Gateway) -> None:
    # given an image big enough that libvips decodes it in several strips
    image = gateway.upload(800, 600)
    # when a job blurs it, then flips it upside down (a step that reads rows in reverse;
    # the job decoded for a top-to-bottom read, as if the blur were the whole pipeline)
    body = {
        "inputs": [image],
        "pipeline": [{"op": "blur", "sigma": 1}, {"op": "flip", "direction": "vertical"}],
        "output": {"format": "png"},
    }
    done = gateway.wait(gateway.submit(**body)["id"])
    # then it succeeds with a result of the input's size
    assert done["state"] == "succeeded", done["error"]
    [result] = done["results"]["images"]
    out = gateway.client.get(f"/v1/images/{result}", headers=gateway.auth).json()
    assert (out["width"], out["height"]) == (800, 600)


def test_the_same_pipeline_twice_yields_the_same_content_addressed_result(gateway: Gateway) -> None:
    image = gateway.upload()
    body = {"inputs": [image], "pipeline": [{"op": "rotate", "angle": 90}]}
    first = gateway.wait(gateway.submit(**body)["id"])
    second = gateway.wait(gateway.submit(**body)["id"])
    assert first["results"]["images"] == second["results"]["images"]


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"inputs": ["IMG"], "pipeline": [{"op": "nope"}]}, 422, "unknown operation"),
        ({"inputs": ["IMG"], "pipeline": [{"op": "blur", "sigma": -1}]}, 422, "invalid parameters"),
        ({"inputs": ["IMG"], "pipeline": []}, 422, "empty"),
        ({"inputs": ["IMG"]}, 422, "needs 'pipeline'"),
        ({"inputs": [], "pipeline": [{"op": "flip"}]}, 422, "at least 1 input"),
        ({"inputs": ["IMG", "IMG"], "pipeline": [{"op": "flip"}]}, 422, "more than once"),
        ({"inputs": ["missing"], "pipeline": [{"op": "flip"}]}, 422, "do not exist"),
        ({"inputs": ["IMG"], "pipeline": [{"op": "flip"}], "priority": 12}, 422, "schema"),
        ({"kind": "nope", "params": {}}, 422, "unknown job kind"),
        ({"inputs": ["IMG"], "pipeline": [{"op": "flip"}], "output": {"format": "bmp"}}, 422, ""),
        ({"kind": "test.checked", "params": {"name": "bad"}}, 422, "must be 'ok'"),
        ({"kind": "test.sleep", "pipeline": [{"op": "flip"}]}, 422, "belong to pipeline jobs"),
        ({"inputs": ["IMG"], "pipeline": [{"op": "flip"}], "extra": 1}, 422, "schema"),
        ({"inputs": ["IMG"], "pipeline": [{"op": "overlay"}]}, 422, "needs a segmentation"),
    ],
)
def test_bad_submissions_are_refused_up_front_with_a_problem(
    gateway: Gateway, body: dict[str, object], status: int, detail: str
) -> None:
    # given an existing image, and a submission with one thing wrong
    image = gateway.upload()
    payload = orjson.loads(orjson.dumps(body).replace(b'"IMG"', f'"{image}"'.encode()))
    # when it is submitted
    resp = gateway.client.post("/v1/jobs", json=payload, headers=gateway.auth)
    # then it is refused with problem+json, and no job exists
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert detail in resp.json()["detail"]
    assert gateway.jobs.repo.count() == 0


def test_an_oversized_batch_is_refused(tmp_path: Path) -> None:
    for gw in open_gateway(job_settings(tmp_path, jobs={"max_inputs": 2})):
        ids = [gw.upload(seed=i) for i in range(3)]
        resp = gw.client.post(
            "/v1/jobs", json={"inputs": ids, "pipeline": [{"op": "flip"}]}, headers=gw.auth
        )
        assert resp.status_code == 422
        assert resp.json()["max_inputs"] == 2


def test_submitting_needs_a_write_key(gateway: Gateway) -> None:
    body = {"kind": "test.sleep", "params": {"seconds": 0}}
    assert gateway.client.post("/v1/jobs", json=body).status_code == 401
    _, read_key = make_key(gateway.container, "reader", role="read")
    read = {"Authorization": f"Bearer {read_key}"}
    assert gateway.client.post("/v1/jobs", json=body, headers=read).status_code == 403
    job = gateway.submit(**body)
    # a read key reads only its own jobs (none: it cannot submit; see test_job_owners.py)
    assert gateway.client.get(f"/v1/jobs/{job['id']}", headers=read).status_code == 404
    assert gateway.client.post(f"/v1/jobs/{job['id']}/cancel", headers=read).status_code == 403


def test_an_idempotent_resubmit_returns_the_same_job(gateway: Gateway) -> None:
    body = {"kind": "test.sleep", "params": {"seconds": 0}, "idempotency_key": "order-17"}
    first = gateway.client.post("/v1/jobs", json=body, headers=gateway.auth)
    again = gateway.client.post("/v1/jobs", json=body, headers=gateway.auth)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["id"] == again.json()["id"]
    # the header works the same, and a different request under a used key is a conflict
    other = {"kind": "test.sleep", "params": {"seconds": 0.01}}
    header = {**gateway.auth, "Idempotency-Key": "order-17"}
    conflict = gateway.client.post("/v1/jobs", json=other, headers=header)
    assert conflict.status_code == 409
    assert conflict.json()["job"] == first.json()["id"]
    assert gateway.jobs.repo.count() == 1


def test_a_job_with_many_missing_inputs_says_how_many_it_did_not_list(
    gateway: Gateway,
) -> None:
    # given a batch of 76 inputs of which 75 do not exist (a typo in a listing script)
    image = gateway.upload()
    gone = [f"{i:032x}" for i in range(75)]
    body = {"kind": "test.artifacts", "inputs": [image, *gone]}
    resp = gateway.client.post("/v1/jobs", json=body, headers=gateway.auth)
    # then the problem lists 50 of them and tells the rest by number, not by silence
    assert resp.status_code == 422, resp.text
    problem = resp.json()
    assert (len(problem["missing"]), problem["missing_count"]) == (50, 75)
    assert set(problem["missing"]) <= set(gone)
    assert "75 input image(s) do not exist" in problem["detail"]
    assert "and 25 more" in problem["detail"]


def test_an_idempotency_key_in_header_and_body_must_agree(gateway: Gateway) -> None:
    body = {"kind": "test.sleep", "params": {"seconds": 0}, "idempotency_key": "order-1"}
    # when the header and the body name different keys, neither is picked silently
    header = {**gateway.auth, "Idempotency-Key": "order-2"}
    refused = gateway.client.post("/v1/jobs", json=body, headers=header)
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert (problem["idempotency_key_header"], problem["idempotency_key_body"]) == (
        "order-2",
        "order-1",
    )
    assert "Idempotency-Key" in problem["detail"] and "idempotency_key" in problem["detail"]
    assert gateway.jobs.repo.count() == 0
    # and the same key in both is one key: the resubmit returns the job
    same = {**gateway.auth, "Idempotency-Key": "order-1"}
    first = gateway.client.post("/v1/jobs", json=body, headers=same)
    again = gateway.client.post("/v1/jobs", json=body, headers=gateway.auth)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["idempotency_key"] == "order-1" == again.json()["idempotency_key"]
    assert first.json()["id"] == again.json()["id"]


@pytest.fixture
def idle_gateway(tmp_path: Path) -> Iterator[Gateway]:
    """A gateway whose jobs stay queued: no job threads run."""
    yield from open_gateway(
        job_settings(tmp_path, jobs={"embedded_threads": 0, "max_queued_tasks": 3})
    )


def test_cancel_a_queued_job(idle_gateway: Gateway) -> None:
    gw = idle_gateway
    job = gw.submit(kind="test.sleep", params={"seconds": 0})
    resp = gw.client.post(f"/v1/jobs/{job['id']}/cancel", headers=gw.auth)
    assert resp.status_code == 200
    assert resp.json()["state"] == "cancelled"
    assert resp.json()["tasks"][0]["state"] == "cancelled"
    # cancelling again is harmless
    assert gw.client.post(f"/v1/jobs/{job['id']}/cancel", headers=gw.auth).status_code == 200


def test_cancel_a_running_job_stops_it_and_a_finished_job_cannot_be_cancelled(
    gateway: Gateway,
) -> None:
    job = gateway.submit(kind="test.sleep", params={"seconds": 20})
    wait_for(lambda: gateway.job(job["id"])["state"] == "running")
    resp = gateway.client.post(f"/v1/jobs/{job['id']}/cancel", headers=gateway.auth)
    assert resp.json()["state"] == "cancelled"
    # the handler notices at its next check and the task ends cancelled, long before 20 s
    wait_for(lambda: gateway.job(job["id"])["tasks"][0]["state"] == "cancelled", timeout=5)
    quick = gateway.wait(gateway.submit(kind="test.sleep", params={"seconds": 0})["id"])
    refused = gateway.client.post(f"/v1/jobs/{quick['id']}/cancel", headers=gateway.auth)
    assert refused.status_code == 409


def test_a_job_larger_than_the_queue_limit_is_refused_for_good_not_retry_later(
    idle_gateway: Gateway,
) -> None:
    # the queue is empty and holds at most 3 tasks: 4 inputs can never fit, so the
    # answer says so (a client retrying a 503 would retry forever)
    gw = idle_gateway
    ids = [gw.upload(40, 30, seed=i) for i in range(4)]
    body = {"inputs": ids, "pipeline": [{"op": "flip"}]}
    resp = gw.client.post("/v1/jobs", json=body, headers=gw.auth)
    assert resp.status_code == 422, resp.text
    assert "retry-after" not in resp.headers
    problem = resp.json()
    assert problem["max_queued_tasks"] == 3 and problem["queue"] == "transform"
    assert "at most 3 inputs" in problem["detail"]
    assert gw.jobs.repo.count() == 0
    # the same work as smaller jobs is accepted
    accepted = gw.client.post("/v1/jobs", json={**body, "inputs": ids[:3]}, headers=gw.auth)
    assert accepted.status_code == 202, accepted.text


def test_backpressure_answers_503_with_retry_after(idle_gateway: Gateway) -> None:
    gw = idle_gateway
    for _ in range(3):
        gw.submit(kind="test.sleep", params={"seconds": 0})
    resp = gw.client.post(
        "/v1/jobs", json={"kind": "test.sleep", "params": {"seconds": 0}}, headers=gw.auth
    )
    assert resp.status_code == 503
    assert resp.headers["retry-after"] == "5"
    assert resp.json()["queue"] == "transform"
    # other queues are not affected
    ok = gw.client.post(
        "/v1/jobs",
        json={"kind": "test.sleep", "params": {"seconds": 0, "queue": "analyse"}},
        headers=gw.auth,
    )
    assert ok.status_code == 202


def test_list_jobs_filters_by_state_and_pages(idle_gateway: Gateway) -> None:
    gw = idle_gateway
    ids = [
        gw.submit(kind="test.sleep", params={"seconds": 0, "queue": "train"})["id"]
        for _ in range(3)
    ]
    gw.client.post(f"/v1/jobs/{ids[0]}/cancel", headers=gw.auth)
    page = gw.client.get("/v1/jobs?limit=2", headers=gw.auth).json()
    assert [j["id"] for j in page["items"]] == ids[::-1][:2]
    rest = gw.client.get(page["next"], headers=gw.auth).json()
    assert [j["id"] for j in rest["items"]] == [ids[0]]
    cancelled = gw.client.get("/v1/jobs?state=cancelled", headers=gw.auth).json()
    assert [j["id"] for j in cancelled["items"]] == [ids[0]]
    assert gw.client.get("/v1/jobs?state=bogus", headers=gw.auth).status_code == 422


def test_unknown_job_is_404(gateway: Gateway) -> None:
    for path in ("/v1/jobs/nope", "/v1/jobs/nope/events", "/v1/jobs/nope/results/x"):
        assert gateway.client.get(path, headers=gateway.auth).status_code == 404
    assert gateway.client.post("/v1/jobs/nope/cancel", headers=gateway.auth).status_code == 404


def test_events_stream_progress_and_end_with_the_final_state(gateway: Gateway) -> None:
    job = gateway.submit(kind="test.sleep", params={"seconds": 1.2})
    events: list[tuple[str, dict[str, object]]] = []
    with gateway.client.stream("GET", f"/v1/jobs/{job['id']}/events", headers=gateway.auth) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        events.extend(sse_events(resp.iter_lines()))
    kinds = [k for k, _ in events]
    assert kinds[0] == "snapshot"
    assert "progress" in kinds
    states = [d["state"] for k, d in events if k == "state"]
    assert states == ["queued", "running", "succeeded"]
    assert events[-1] == ("state", {"state": "succeeded", "at": events[-1][1]["at"]})
    # resuming after the last event id ends at once (the job is over)
    with gateway.client.stream(
        "GET", f"/v1/jobs/{job['id']}/events?after=100000", headers=gateway.auth
    ) as resp:
        assert [ln for ln in resp.iter_lines() if ln.startswith("event:")] == ["event: snapshot"]


def test_a_failing_step_fails_the_job_with_the_reason_and_keeps_other_results(
    gateway: Gateway,
) -> None:
    # given a big and a small image, and a crop that only fits the big one
    big, small = gateway.upload(200, 200, seed=1), gateway.upload(40, 40, seed=2)
    job = gateway.submit(
        inputs=[big, small],
        pipeline=[{"op": "crop", "left": 100, "top": 100, "width": 50, "height": 50}],
    )
    done = gateway.wait(job["id"])
    # then the job failed, says which input and why, and the good result is still there
    assert done["state"] == "failed"
    assert f"input {small}" in done["error"]
    tasks = {t["input"]: t for t in done["tasks"]}
    assert tasks[big]["state"] == "succeeded" and tasks[big]["result_image"]
    assert tasks[small]["state"] == "failed" and tasks[small]["attempts"] == 1
    assert done["results"]["images"] == [tasks[big]["result_image"]]


def test_a_transient_failure_is_retried_and_the_job_succeeds(gateway: Gateway) -> None:
    job = gateway.submit(kind="test.sleep", params={"seconds": 0, "fail_first": 1})
    done = gateway.wait(job["id"])
    assert done["state"] == "succeeded"
    task = done["tasks"][0]
    assert task["attempts"] == 2
    assert "transient failure" in task["last_error"]
    assert done["result"]["attempt"] == 2


def test_a_task_that_always_fails_is_dead_lettered_and_the_job_fails(gateway: Gateway) -> None:
    job = gateway.submit(kind="test.fail")
    done = gateway.wait(job["id"])
    assert done["state"] == "failed"
    assert "dead-lettered: gave up after 3 attempts" in done["error"]
    assert "this task always fails" in done["error"]
    assert done["tasks"][0]["attempts"] == 3
    # and its history says "retrying" only before the attempts that followed: the last
    # attempt's failure is the task's final "failed", with no promise of a retry first
    path = f"/v1/jobs/{job['id']}/events"
    with gateway.client.stream("GET", path, headers=gateway.auth) as resp:
        tasks = [d["state"] for k, d in sse_events(resp.iter_lines()) if k == "task"]
    assert tasks == ["retrying", "running", "retrying", "running", "failed"]


def test_a_step_over_its_time_limit_fails_the_task(gateway: Gateway) -> None:
    job = gateway.submit(kind="test.slowstep", params={"limit_s": 0.2, "seconds": 5})
    done = gateway.wait(job["id"], timeout=5)
    assert done["state"] == "failed"
    assert "busy loop exceeded its time limit of 0.2 s" in done["error"]
    assert done["tasks"][0]["attempts"] == 1


def test_artifacts_are_served_per_task_and_aggregated_as_json_csv_and_arrow(
    gateway: Gateway,
) -> None:
    import pyarrow as pa

    ids = [gateway.upload(seed=i) for i in range(2)]
    job = gateway.wait(gateway.submit(kind="test.artifacts", inputs=ids)["id"])
    assert job["state"] == "succeeded"
    base = f"/v1/jobs/{job['id']}"
    listed = gateway.client.get(f"{base}/results", headers=gateway.auth).json()
    assert [a["name"] for a in listed["artifacts"]] == ["cells", "summary", "table", "raw"]
    # records of all tasks in one table, each row tagged with its image
    cells = gateway.client.get(f"{base}/results/cells", headers=gateway.auth).json()
    assert [(c["image_id"], c["label"]) for c in cells] == [
        (ids[0], 1),
        (ids[0], 2),
        (ids[1], 1),
        (ids[1], 2),
    ]
    summary = gateway.client.get(f"{base}/results/summary", headers=gateway.auth).json()
    assert [s["count"] for s in summary] == [2, 2]
    csv = gateway.client.get(f"{base}/results/cells?format=csv", headers=gateway.auth)
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0] == "image_id,label,area"
    arrow = gateway.client.get(f"{base}/results/table?format=arrow", headers=gateway.auth)
    table = pa.ipc.open_file(pa.BufferReader(arrow.content)).read_all()
    assert table.num_rows == 6 and table.column_names == ["label", "area", "image_id"]
    one = gateway.client.get(f"{base}/tasks/1/results/table", headers=gateway.auth).json()
    assert [r["area"] for r in one] == [1.0, 2.0, 3.5]
    raw = gateway.client.get(f"{base}/tasks/0/results/raw", headers=gateway.auth)
    assert raw.content == b"\x00\x01binary"
    assert gateway.client.get(f"{base}/results/raw", headers=gateway.auth).status_code == 409
    assert gateway.client.get(f"{base}/results/nope", headers=gateway.auth).status_code == 404
    assert gateway.client.get(f"{base}/results/..%2Fx", headers=gateway.auth).status_code in (
        404,
        422,
    )


def test_job_kinds_are_listed_with_their_schemas(gateway: Gateway) -> None:
    kinds = {k["name"]: k for k in gateway.client.get("/v1/job-kinds").json()["items"]}
    assert kinds["pipeline"]["fan_out"] == "per_input"
    assert "pipeline" in kinds["pipeline"]["params"]["properties"]


def test_a_quiet_event_stream_sends_keep_alives(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pixelmill.backends.metadata.jobs import Finish
    from pixelmill.services.gateway.routes import jobs as routes
    from tests.jobs_helpers import make_job

    monkeypatch.setattr(routes, "KEEPALIVE_S", 0.3)
    # a job made in the DB and never published: nothing happens to it until the stream
    # has sent two keep-alives, then it is run to its end straight through the
    # repository, which ends the stream (conditions, not timers: a slow machine only
    # makes the test slower)
    (owner,) = [k.user_id for k in gateway.container.keys.list() if k.name == "jobs test"]
    repo = gateway.jobs.repo
    job_id = make_job(repo, owner=owner)
    lines: list[str] = []
    with gateway.client.stream("GET", f"/v1/jobs/{job_id}/events", headers=gateway.auth) as resp:
        for line in resp.iter_lines():
            lines.append(line)
            if line == ": keepalive" and lines.count(": keepalive") == 2:
                repo.start_task(job_id, 0)
                repo.finish_task(job_id, 0, Finish("succeeded"), aggregate=lambda _j, _ts: None)
    # comments kept the idle stream alive (proxies close silent ones) before the end
    first_state = lines.index("event: state")
    last_state = len(lines) - 1 - lines[::-1].index("event: state")
    assert lines[first_state:last_state].count(": keepalive") >= 2
    assert '"state":"succeeded"' in lines[last_state + 1]
