"""GET /v1/audit: admins download the event log as JSON Lines or CSV, with login
failures and permission denials in it; nobody else may."""

from __future__ import annotations

import csv
import io

import orjson
import pytest
from fastapi.testclient import TestClient

from pixelmill.runtime.container import Container
from tests.helpers import make_key
from tests.integration.gateway.study_world import StudyWorld, make_world


@pytest.fixture
def world(client: TestClient, container: Container) -> StudyWorld:
    w = make_world(client, container)
    # a failed login and a denied request: two security events
    bad = client.post("/v1/auth/login", json={"username": "vic", "password": "not his password"})
    assert bad.status_code == 401
    denied = client.post(
        f"/v1/studies/{w.study_id}/status", json={"status": "locked"}, headers=w.as_("vic")
    )
    assert denied.status_code == 403
    w.new_thread(body="an ordinary change")
    return w


def test_admins_export_jsonl_with_login_failures_and_denials(world: StudyWorld) -> None:
    w = world
    resp = w.client.get("/v1/audit", headers=w.as_("root"))
    assert resp.status_code == 200
    assert resp.headers["content-disposition"].startswith("attachment;")
    assert resp.headers["content-disposition"].endswith('.jsonl"')
    rows = [orjson.loads(line) for line in resp.text.splitlines()]
    by_action = {r["action"]: r for r in rows}
    failed = by_action["login.failed"]
    assert failed["security"] is True and failed["after"] == {"username": "vic"}
    denial = by_action["denied.study.set_status"]
    assert (denial["actor_username"], denial["study_id"]) == ("vic", w.study_id)
    assert by_action["message.post"]["after"]["body"] == "an ordinary change"
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)  # oldest first
    # the export itself is logged
    assert rows[-1]["action"] == "audit.export" and rows[-1]["actor_username"] == "root"


def test_the_csv_export_parses_and_filters(world: StudyWorld) -> None:
    w = world
    resp = w.client.get("/v1/audit?format=csv&security=true", headers=w.as_("root"))
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert rows and {r["security"] for r in rows} == {"True"}
    actions = [r["action"] for r in rows]
    assert "login.failed" in actions and "denied.study.set_status" in actions
    assert "message.post" not in actions
    denial = rows[actions.index("denied.study.set_status")]
    assert orjson.loads(denial["after"]) == {"role": "viewer", "status": "active"}
    # nothing happened after the year 2100
    later = w.client.get("/v1/audit?format=csv&since=2100-01-01T00:00:00Z", headers=w.as_("root"))
    assert later.text.splitlines() == [",".join(next(csv.reader(io.StringIO(resp.text))))]


def test_only_site_admins_may_export(world: StudyWorld, container: Container) -> None:
    w = world
    assert w.client.get("/v1/audit", headers=w.as_("olga")).status_code == 403
    # a member's admin-role key acts with write scope: still no
    _, secret = make_key(container, "olga's admin key", "admin", username="olga")
    member_admin_key = {"Authorization": f"Bearer {secret}"}
    assert w.client.get("/v1/audit", headers=member_admin_key).status_code == 403
    assert w.client.get("/v1/audit").status_code == 401
    assert w.client.get("/v1/audit?format=xml", headers=w.as_("root")).status_code == 422


def test_admins_page_through_the_log_newest_first_with_filters(world: StudyWorld) -> None:
    w = world
    first = w.client.get("/v1/audit/events?limit=2", headers=w.as_("root")).json()
    assert first["items"][0]["action"] == "message.post"  # newest first
    assert len(first["items"]) == 2 and first["next_before_id"] == first["items"][-1]["id"]
    older = w.client.get(
        f"/v1/audit/events?limit=2&before_id={first['next_before_id']}", headers=w.as_("root")
    ).json()
    assert max(e["id"] for e in older["items"]) < first["next_before_id"]
    security = w.client.get("/v1/audit/events?security=true", headers=w.as_("root")).json()
    actions = [e["action"] for e in security["items"]]
    assert "login.failed" in actions and "denied.study.set_status" in actions
    assert "message.post" not in actions
    # opening the log was itself logged, after the page it answered
    assert actions[0] == "audit.read" and security["items"][0]["actor_username"] == "root"
    vics = w.client.get("/v1/audit/events?actor=vic", headers=w.as_("root")).json()["items"]
    assert {e["actor_username"] for e in vics} == {"vic"}
    assert "denied.study.set_status" in [e["action"] for e in vics]
    denied = w.client.get("/v1/audit/events?action=denied.", headers=w.as_("root")).json()
    assert {e["action"] for e in denied["items"]} == {"denied.study.set_status"}
    nobody = w.client.get("/v1/audit/events?actor=nobody-here", headers=w.as_("root")).json()
    assert nobody == {"items": [], "next_before_id": None}


def test_only_site_admins_may_read_the_log_in_pages(world: StudyWorld) -> None:
    w = world
    assert w.client.get("/v1/audit/events", headers=w.as_("olga")).status_code == 403
    assert w.client.get("/v1/audit/events").status_code == 401
    assert w.client.get("/v1/audit/events?limit=0", headers=w.as_("root")).status_code == 422
