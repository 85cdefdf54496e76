"""``pixelmill admin foreign-links``: the operator's remediation of links made before
only an image's owner (or a site admin) could add it to a study.

Bob, a viewer of Alice's study, once linked her image into a study of his own, where
Mallory reads it. The command lists that link, ``--remove`` unlinks it (as the API's
unlink does, the event saying why) and Mallory's reads end; the owner's links, an
admin's, a study import's and a job result's linked by its owner all stay."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from fastapi.testclient import TestClient

from pixelmill.backends.metadata import tables_workspace as tw
from pixelmill.backends.metadata._time import now
from pixelmill.runtime.cli import main
from pixelmill.runtime.container import Container
from tests.helpers import make_image
from tests.jobs_helpers import finished_job
from tests.security.people import Person, person


def _study(who: Person, name: str, members: dict[str, str] | None = None) -> str:
    resp = who.post("/v1/studies", json={"name": name})
    assert resp.status_code == 201, resp.text
    sid = str(resp.json()["id"])
    for user_id, role in (members or {}).items():
        assert (
            who.put(f"/v1/studies/{sid}/members/{user_id}", json={"role": role}).status_code == 200
        )
    return sid


def _upload(who: Person, seed: int) -> str:
    resp = who.post("/v1/images", content=make_image(40, 30, seed=seed))
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _link(who: Person, sid: str, image: str) -> None:
    resp = who.post(f"/v1/studies/{sid}/images", json={"image_id": image})
    assert resp.status_code == 201, resp.text


def _world(container: Container, client: TestClient) -> dict[str, Any]:
    alice, bob, mallory = (person(container, client, n) for n in ("alice", "bob", "mallory"))
    root = person(container, client, "root", role="admin")
    s = _study(alice, "Alice's", {bob.user_id: "viewer"})
    b = _study(bob, "Bob's", {mallory.user_id: "viewer"})
    r = _study(root, "Root's")
    x, y = _upload(alice, 1), _upload(bob, 2)
    _link(alice, s, x)
    _link(bob, b, y)
    _link(root, r, x)  # a site admin may share anything
    # a study import: the job's owner (bob) owns and links what it brings in
    files = [("files", ("scan.jpg", make_image(48, 36, seed=3), "image/jpeg"))]
    imported = bob.post(f"/v1/studies/{b}/imports", files=files)
    assert imported.status_code == 202, imported.text
    assert finished_job(client, imported.json()["job_id"], bob.auth)["state"] == "succeeded"
    # a job's result belongs to the job's owner, who links it
    job = bob.post("/v1/jobs", json={"inputs": [y], "pipeline": [{"op": "flip"}]})
    assert job.status_code == 202, job.text
    done = finished_job(client, job.json()["id"], bob.auth)
    assert done["state"] == "succeeded", done
    result = done["tasks"][0]["result_image"]
    _link(bob, b, result)
    # the laundered link, as the API wrote it before the owner-only rule
    with container.db.begin() as conn:
        conn.execute(
            tw.study_images.insert().values(
                study_id=b, image_id=x, added_by=bob.user_id, added_at=now() - timedelta(days=9)
            )
        )
    return {"alice": alice, "bob": bob, "mallory": mallory, "s": s, "b": b, "r": r, "x": x}


def _links(person: Person, sid: str) -> int:
    return int(person.get(f"/v1/studies/{sid}/images").json()["total"])


def test_the_operator_finds_and_removes_a_laundered_link_and_its_reader_loses_the_image(
    container: Container, client: TestClient
) -> None:
    w = _world(container, client)
    mallory, x, b = w["mallory"], w["x"], w["b"]
    data = ["--data-dir", str(container.settings.data_dir)]
    runner = CliRunner()
    assert mallory.get(f"/v1/images/{x}/original").status_code == 200  # the leak

    listed = runner.invoke(main, ["admin", "foreign-links", "--json", *data])

    assert listed.exit_code == 0, listed.output
    report = json.loads(listed.output)
    assert (report["found"], report["removed"]) == (1, 0)
    (link,) = report["links"]
    assert (link["study_id"], link["study_name"], link["image_id"]) == (b, "Bob's", x)
    assert (link["owner"], link["added_by"], link["removed"]) == ("alice", "bob", False)
    lines = runner.invoke(main, ["admin", "foreign-links", *data]).output.splitlines()
    assert lines[0].split("\t")[:6] == [b, "Bob's", x, "", "alice", "bob"]
    assert lines[-1] == "1 foreign link(s); --remove unlinks them"
    assert mallory.get(f"/v1/images/{x}/original").status_code == 200  # listing changes nothing

    removed = runner.invoke(main, ["admin", "foreign-links", "--remove", *data])

    assert removed.exit_code == 0, removed.output
    assert f"unlinked image {x} from study {b} (added by bob, reason foreign-link)" in (
        removed.output
    )
    assert removed.output.splitlines()[-1] == "removed 1 of 1 foreign link(s)"
    assert mallory.get(f"/v1/images/{x}/original").status_code == 404
    assert w["bob"].get(f"/v1/images/{x}/original").status_code == 200  # still a viewer of S
    # everything legitimate stays: the owner's, the admin's, bob's own, import and result
    assert _links(w["alice"], w["s"]) == 1
    assert container.study_images.study_image(w["r"], x) is not None
    assert _links(w["bob"], b) == 3
    events = container.events.list(study_id=b, action="image.remove")
    assert [(e.target_id, e.actor_id, e.after["reason"]) for e in events] == [
        (x, None, "foreign-link")
    ]
    again = runner.invoke(main, ["admin", "foreign-links", "--remove", *data])
    assert again.exit_code == 0 and again.output.splitlines()[-1] == (
        "removed 0 of 0 foreign link(s)"
    )


def test_with_none_found_the_listing_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["admin", "foreign-links", "--data-dir", str(tmp_path / "data")]
    )
    assert result.exit_code == 0, result.output
    assert result.output == "0 foreign link(s); --remove unlinks them\n"
