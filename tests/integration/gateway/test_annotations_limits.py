"""The annotation API's edges through HTTP: a feature nested too deep is refused before
anything is written (create, import, replace, merge patch); the server's ``pixelmill``
member is never taken from a client; a feature's dashed UUID works in URLs; a
non-member learns nothing about which ids exist; odd viewports, nuclei and bodies get
``422``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pixelmill.imaging.annotations import MAX_DEPTH
from tests.integration.gateway import test_annotations as base
from tests.integration.gateway.test_annotations import Study, create, feature

#: the fixtures of the annotation API's tests: a study, its image and members by role
settings = base.settings
study = base.study

JSON = {"Content-Type": "application/json"}


def deep_text(levels: int) -> str:
    """A feature whose ``properties.x`` nests ``levels`` arrays, as JSON text (too deep
    for ``json.dumps``)."""
    head = json.dumps(feature(10, 20))[:-2]  # without the closing "}}" of properties
    return head + ', "x": ' + "[" * levels + "]" * levels + "}}"


def member_text(levels: int) -> str:
    """A feature with a foreign top-level member nesting ``levels`` arrays."""
    return json.dumps(feature(10, 20))[:-1] + ', "x": ' + "[" * levels + "]" * levels + "}"


def too_deep(resp: Any) -> None:
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["type"].endswith("/invalid-annotation")
    assert body["problem"] == "too-deep" and body["max_depth"] == MAX_DEPTH
    assert f"{MAX_DEPTH} levels" in body["detail"]


def nothing_stored(client: TestClient, study: Study, count: int = 0) -> None:
    listed = client.get(study.url, headers=study.as_("viewer"))
    assert listed.status_code == 200 and len(listed.json()["features"]) == count
    export = client.get(f"{study.url}/export", headers=study.as_("viewer"))
    assert export.status_code == 200 and len(export.json()["features"]) == count


@pytest.mark.parametrize("text", [deep_text, member_text], ids=["properties", "member"])
@pytest.mark.parametrize("levels", [MAX_DEPTH, 350, 600])
def test_a_deep_feature_is_refused_on_create_and_import_and_nothing_is_stored(
    client: TestClient, study: Study, text: Any, levels: int
) -> None:
    made = client.post(study.url, content=text(levels), headers=study.as_("annotator", **JSON))
    too_deep(made)
    collection = '{"type": "FeatureCollection", "features": [' + text(levels) + "]}"
    imported = client.post(
        f"{study.url}/import", content=collection, headers=study.as_("annotator")
    )
    too_deep(imported)
    assert imported.json()["feature"] == 0
    nothing_stored(client, study)


@pytest.mark.parametrize("levels", [350, 600])
def test_a_deep_replace_or_merge_patch_is_refused_and_changes_nothing(
    client: TestClient, study: Study, levels: int
) -> None:
    url = create(client, study, name="a").headers["location"]
    v1 = study.as_("annotator", **JSON, **{"If-Match": '"v1"'})
    too_deep(client.put(url, content=deep_text(levels), headers=v1))
    patch = '{"properties": {"x": ' + "[" * levels + "]" * levels + "}}"
    too_deep(client.patch(url, content=patch, headers=v1))
    dict_patch = '{"properties": ' + '{"x": ' * levels + "1" + "}" * levels + "}"
    too_deep(client.patch(url, content=dict_patch, headers=v1))
    got = client.get(url, headers=study.as_("viewer"))
    assert got.status_code == 200 and got.headers["etag"] == '"v1"'
    assert client.get(f"{url}/history", headers=study.as_("viewer")).status_code == 200
    nothing_stored(client, study, count=1)


def test_a_client_pixelmill_member_is_ignored_and_a_read_written_back_is_no_change(
    client: TestClient, study: Study
) -> None:
    forged = {"source": "analysis", "author_id": "someone-else", "measurements": {"a": 1}}
    body = {**feature(10, 20, name="gland"), "pixelmill": forged}
    made = client.post(study.url, json=body, headers=study.as_("annotator"))
    assert made.status_code == 201, made.text
    url = made.headers["location"]
    assert made.json()["pixelmill"]["source"] != "analysis"
    export = client.get(f"{study.url}/export", headers=study.as_("viewer")).json()
    assert "pixelmill" not in export["features"][0]
    history = client.get(f"{url}/history", headers=study.as_("viewer")).json()
    assert "pixelmill" not in history["items"][0]["snapshot"]
    # GET -> PUT of exactly what was read: the same content, no new version
    read = client.get(url, headers=study.as_("annotator"))
    for _ in range(2):
        again = client.put(url, json=read.json(), headers=study.as_("annotator", **{"If-Match": '"v1"'}))  # fmt: skip
        assert again.status_code == 200, again.text
        assert again.headers["etag"] == '"v1"'
    assert len(client.get(f"{url}/history", headers=study.as_("viewer")).json()["items"]) == 1


def test_the_dashed_uuid_of_a_feature_id_works_in_urls(client: TestClient, study: Study) -> None:
    made = create(client, study, name="a").json()
    dashed, plain = made["id"], made["pixelmill"]["id"]
    assert "-" in dashed and dashed.replace("-", "") == plain
    for form in (dashed, dashed.upper(), plain):
        got = client.get(f"{study.url}/{form}", headers=study.as_("viewer"))
        assert got.status_code == 200, (form, got.text)
        assert got.json()["pixelmill"]["id"] == plain
    assert client.get(f"{study.url}/{dashed}/history", headers=study.as_("viewer")).is_success
    patched = client.patch(
        f"{study.url}/{dashed}",
        json={"properties": {"name": "b"}},
        headers=study.as_("annotator", **{"If-Match": '"v1"'}),
    )
    assert patched.status_code == 200 and patched.headers["etag"] == '"v2"'


def test_a_non_member_cannot_tell_real_annotation_ids_from_made_up_ones(
    client: TestClient, study: Study
) -> None:
    real = create(client, study).json()["pixelmill"]["id"]
    made_up = "0" * 32
    for suffix in ("", "/history", "/diff"):
        answers = [
            client.get(f"{study.url}/{aid}{suffix}", headers=study.as_("outsider"))
            for aid in (real, made_up)
        ]
        assert [a.status_code for a in answers] == [404, 404]
        assert answers[0].json()["detail"] == answers[1].json()["detail"]
    stale = study.as_("outsider", **{"If-Match": '"v1"'})
    writes = [
        client.put(f"{study.url}/{aid}", json=feature(1, 1), headers=stale)
        for aid in (real, made_up)
    ]
    assert [w.status_code for w in writes] == [404, 404]
    assert writes[0].json()["detail"] == writes[1].json()["detail"]


@pytest.mark.parametrize("bad", [{"x": "nan"}, {"y": "inf"}, {"w": "inf"}, {"h": "-inf"}])
def test_a_viewport_must_be_finite(client: TestClient, study: Study, bad: dict[str, str]) -> None:
    params = {"x": "0", "y": "0", "w": "100", "h": "100", **bad}
    assert client.get(study.url, params=params, headers=study.as_("viewer")).status_code == 422
    ok = {"x": "0", "y": "0", "w": "100", "h": "100"}
    assert client.get(study.url, params=ok, headers=study.as_("viewer")).status_code == 200


def test_a_cell_nucleus_must_be_an_area(client: TestClient, study: Study) -> None:
    cell = {**feature(10, 20, objectType="cell")}
    point = {**cell, "nucleusGeometry": {"type": "Point", "coordinates": [15, 25]}}
    refused = client.post(study.url, json=point, headers=study.as_("annotator"))
    assert refused.status_code == 422, refused.text
    assert refused.json()["problem"] == "bad-nucleus-geometry"
    nucleus = feature(12, 22, 4)["geometry"]
    kept = client.post(study.url, json={**cell, "nucleusGeometry": nucleus}, headers=study.as_("annotator"))  # fmt: skip
    assert kept.status_code == 201 and kept.json()["nucleusGeometry"] == nucleus


@pytest.mark.parametrize("body", ['"hello"', "42", "true"])
def test_a_body_that_is_json_but_not_an_object_is_named_as_such(
    client: TestClient, study: Study, body: str
) -> None:
    resp = client.post(study.url, content=body, headers=study.as_("annotator", **JSON))
    assert resp.status_code == 422, resp.text
    assert "not valid JSON" not in resp.json()["detail"]
    assert "GeoJSON object" in resp.json()["detail"]


def test_a_feature_at_the_depth_limit_reads_everywhere(client: TestClient, study: Study) -> None:
    # feature (1) > properties (2) > "x": MAX_DEPTH - 2 arrays
    made = client.post(
        study.url, content=deep_text(MAX_DEPTH - 2), headers=study.as_("annotator", **JSON)
    )
    assert made.status_code == 201, made.text
    url = made.headers["location"]
    viewport = {"x": "0", "y": "0", "w": "1000", "h": "1000"}
    for path, params in [
        (url, {}),
        (f"{url}/history", {}),
        (study.url, {}),
        (study.url, viewport),
        (f"{study.url}/export", {}),
    ]:
        got = client.get(path, params=params, headers=study.as_("viewer"))
        assert got.status_code == 200, (path, got.text)


def test_json_too_deep_to_parse_is_a_client_error(client: TestClient, study: Study) -> None:
    made = client.post(study.url, content=deep_text(5000), headers=study.as_("annotator", **JSON))
    assert made.status_code in (400, 422), made.text
    assert made.headers["content-type"].startswith("application/problem+json")
    collection = '{"type": "FeatureCollection", "features": [' + deep_text(5000) + "]}"
    imported = client.post(
        f"{study.url}/import", content=collection, headers=study.as_("annotator")
    )
    assert imported.status_code == 422, imported.text
    nothing_stored(client, study)
