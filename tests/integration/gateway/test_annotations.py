"""/v1/studies/{sid}/images/{iid}/annotations through HTTP: versions with ETag and
If-Match, history, diff and revert, the viewport query, QuPath import and export, and
who may do what (viewer, annotator, analyst, non-member, a locked study)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pixelmill.imaging.annotations import parse_geojson
from pixelmill.runtime.container import Container
from pixelmill.settings import Settings
from tests.conftest import make_settings
from tests.helpers import make_image, make_key

QUPATH = Path(__file__).parents[2] / "unit/imaging/annotations/data"


JSON_CAP = 16_384
IMPORT_CAP = 65_536


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        server={"max_json_bytes": JSON_CAP},
        workspace={"annotation_import_max_bytes": IMPORT_CAP},
    )


@dataclass
class Study:
    id: str
    image_id: str
    url: str
    keys: dict[str, dict[str, str]]  # role -> headers

    def as_(self, who: str, **extra: str) -> dict[str, str]:
        return {**self.keys[who], **extra}


def _headers(container: Container, username: str) -> tuple[str, dict[str, str]]:
    record, secret = make_key(container, username, "write", username=username)
    return record.user_id, {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def study(client: TestClient, container: Container) -> Study:
    keys: dict[str, dict[str, str]] = {}
    users: dict[str, str] = {}
    for who in ("owner", "viewer", "annotator", "annotator2", "analyst", "outsider"):
        users[who], keys[who] = _headers(container, who)
    sid = client.post("/v1/studies", json={"name": "Liver"}, headers=keys["owner"]).json()["id"]
    upload = client.post("/v1/images", content=make_image(1000, 1000), headers=keys["owner"])
    iid = upload.json()["id"]
    linked = client.post(
        f"/v1/studies/{sid}/images",
        json={"image_id": iid, "pixel_size_um": 0.5},
        headers=keys["owner"],
    )
    assert linked.status_code == 201, linked.text
    for who, role in [
        ("viewer", "viewer"),
        ("annotator", "annotator"),
        ("annotator2", "annotator"),
        ("analyst", "analyst"),
    ]:
        put = client.put(
            f"/v1/studies/{sid}/members/{users[who]}", json={"role": role}, headers=keys["owner"]
        )
        assert put.status_code == 200, put.text
    return Study(sid, iid, f"/v1/studies/{sid}/images/{iid}/annotations", keys)


def feature(x: float, y: float, size: float = 10, **props: Any) -> dict[str, Any]:
    ring = [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"objectType": "annotation", **props},
    }


def create(client: TestClient, study: Study, who: str = "annotator", **props: Any) -> Any:
    resp = client.post(study.url, json=feature(10, 20, **props), headers=study.as_(who))
    assert resp.status_code == 201, resp.text
    return resp


def test_create_then_read_with_its_etag_and_measurements_in_microns(
    client: TestClient, study: Study
) -> None:
    made = create(client, study, name="gland", classification={"name": "Tumor"})
    assert made.headers["etag"] == '"v1"'
    body = made.json()
    assert body["properties"]["name"] == "gland"
    assert body["pixelmill"]["measurements"]["area_um2"] == pytest.approx(25.0)
    got = client.get(made.headers["location"], headers=study.as_("viewer"))
    assert got.status_code == 200
    assert got.headers["etag"] == '"v1"'
    assert got.json()["geometry"] == body["geometry"]


def test_microns_follow_the_study_images_pixel_size_when_it_changes(
    client: TestClient, study: Study
) -> None:
    # given a 10 x 10 px square measured at 0.5 um per pixel (25 um2)
    made = create(client, study)
    url = made.headers["location"]
    # when the study corrects the image's pixel size to 1 um, then takes it away
    for size, area, perimeter in ((1.0, 100.0, 40.0), (None, None, None)):
        patched = client.patch(
            f"/v1/studies/{study.id}/images/{study.image_id}",
            json={"pixel_size_um": size},
            headers=study.as_("owner"),
        )
        assert patched.status_code == 200, patched.text
        # then the annotation's um measurements are those of the size the study shows,
        # as a newly drawn one's are, in the annotation and in the viewport listing
        one = client.get(url, headers=study.as_("viewer"))
        listed = client.get(study.url, headers=study.as_("viewer")).json()["features"]
        again = create(client, study).json()["pixelmill"]["measurements"]
        for measured in (
            one.json()["pixelmill"]["measurements"],
            listed[0]["pixelmill"]["measurements"],
        ):
            assert measured["area_um2"] == (area and pytest.approx(area))
            assert measured["perimeter_um"] == (perimeter and pytest.approx(perimeter))
            assert measured["area_um2"] == again["area_um2"]
        # and no new version was made: measurements are not content
        assert one.headers["etag"] == '"v1"'


def test_a_stale_if_match_gets_412_and_both_edits_survive(client: TestClient, study: Study) -> None:
    url = create(client, study).headers["location"]
    v1 = client.get(url, headers=study.as_("analyst")).headers["etag"]
    # the author renames it
    first = client.patch(
        url,
        json={"properties": {"name": "renamed"}},
        headers=study.as_("annotator", **{"If-Match": v1}),
    )
    assert first.status_code == 200 and first.headers["etag"] == '"v2"'
    # the analyst, still holding v1, reclassifies: refused, nothing overwritten
    stale = client.patch(
        url,
        json={"properties": {"classification": {"name": "Stroma"}}},
        headers=study.as_("analyst", **{"If-Match": v1}),
    )
    assert stale.status_code == 412
    assert stale.json()["current_version"] == 2
    assert client.get(url, headers=study.as_("viewer")).json()["properties"]["name"] == "renamed"
    # re-applied on the current version, both changes are there
    again = client.patch(
        url,
        json={"properties": {"classification": {"name": "Stroma"}}},
        headers=study.as_("analyst", **{"If-Match": '"v2"'}),
    )
    assert again.status_code == 200 and again.headers["etag"] == '"v3"'
    props = again.json()["properties"]
    assert props["name"] == "renamed" and props["classification"]["name"] == "Stroma"


def test_writes_without_if_match_get_428(client: TestClient, study: Study) -> None:
    url = create(client, study).headers["location"]
    assert client.put(url, json=feature(0, 0), headers=study.as_("annotator")).status_code == 428
    assert client.delete(url, headers=study.as_("annotator")).status_code == 428
    bad = client.delete(url, headers=study.as_("annotator", **{"If-Match": "yesterday"}))
    assert bad.status_code == 422
    assert client.get(url, headers=study.as_("viewer")).headers["etag"] == '"v1"'


def test_history_diff_revert_and_delete(client: TestClient, study: Study) -> None:
    url = create(client, study, name="first").headers["location"]
    moved = client.put(
        url,
        json=feature(300, 300, name="second"),
        headers=study.as_("annotator", **{"If-Match": '"v1"'}),
    )
    assert moved.status_code == 200
    diff = client.get(f"{url}/diff", params={"from": 1, "to": 2}, headers=study.as_("viewer"))
    paths = {c["path"]: c for c in diff.json()["changes"]}
    assert set(paths) == {"/geometry", "/properties/name"}
    assert (paths["/properties/name"]["old"], paths["/properties/name"]["new"]) == (
        "first",
        "second",
    )
    gone = client.delete(url, headers=study.as_("annotator", **{"If-Match": '"v2"'}))
    assert gone.status_code == 204
    assert client.get(url, headers=study.as_("viewer")).status_code == 404
    back = client.post(f"{url}/revert", json={"version": 1}, headers=study.as_("annotator"))
    assert back.status_code == 200, back.text
    assert back.headers["etag"] == '"v4"'
    assert back.json()["properties"]["name"] == "first"
    assert back.json()["geometry"] == feature(10, 20)["geometry"]
    history = client.get(f"{url}/history", headers=study.as_("viewer")).json()
    assert [v["op"] for v in history["items"]] == ["create", "update", "delete", "revert"]
    assert history["items"][3]["snapshot"] == history["items"][0]["snapshot"]


def test_viewport_returns_only_intersecting_features_and_respects_limit(
    client: TestClient, study: Study
) -> None:
    grid = [feature(x * 100, y * 100, 50) for x in range(8) for y in range(8)]
    made = client.post(
        study.url,
        json={"type": "FeatureCollection", "features": grid},
        headers=study.as_("annotator"),
    )
    assert made.status_code == 201 and len(made.json()["features"]) == 64
    view = client.get(
        study.url, params={"x": 120, "y": 120, "w": 200, "h": 90}, headers=study.as_("viewer")
    ).json()
    corners = sorted(tuple(f["pixelmill"]["bbox"][:2]) for f in view["features"])
    assert corners == [(x, y) for x in (100, 200, 300) for y in (100, 200)]
    assert view["truncated"] is False
    # the same region at level 1 (coordinates halved)
    half = client.get(
        study.url,
        params={"x": 60, "y": 60, "w": 100, "h": 45, "level": 1},
        headers=study.as_("viewer"),
    ).json()
    assert sorted(tuple(f["pixelmill"]["bbox"][:2]) for f in half["features"]) == corners
    few = client.get(
        study.url,
        params={"x": 0, "y": 0, "w": 1000, "h": 800, "limit": 5},
        headers=study.as_("viewer"),
    ).json()
    assert len(few["features"]) == 5 and few["truncated"] is True
    too_many = client.get(
        study.url,
        params={"x": 0, "y": 0, "w": 9, "h": 9, "limit": 5001},
        headers=study.as_("viewer"),
    )
    assert too_many.status_code == 422
    partial = client.get(study.url, params={"x": 0, "y": 0}, headers=study.as_("viewer"))
    assert partial.status_code == 422


def test_qupath_file_round_trips_through_the_api(client: TestClient, study: Study) -> None:
    source = (QUPATH / "qupath_annotations_handwritten.geojson").read_bytes()
    imported = client.post(
        f"{study.url}/import",
        content=source,
        headers=study.as_("annotator", **{"Content-Type": "application/geo+json"}),
    )
    assert imported.status_code == 201, imported.text
    expected = parse_geojson(source)
    assert imported.json()["imported"] == len(expected)
    exported = client.get(f"{study.url}/export", headers=study.as_("viewer"))
    assert exported.status_code == 200
    assert exported.headers["content-disposition"].startswith("attachment;")
    doc = json.loads(exported.content)
    assert doc["type"] == "FeatureCollection"
    for f in doc["features"]:
        assert f["properties"]["objectType"]  # what QuPath needs to import it
    again = parse_geojson(exported.content)

    def key(a: Any) -> str:
        return json.dumps(a.geometry, sort_keys=True)

    assert len(again) == len(expected)
    for was, now in zip(sorted(expected, key=key), sorted(again, key=key), strict=True):
        assert (now.geometry, now.shape, now.class_name, now.color, now.name) == (
            was.geometry,
            was.shape,
            was.class_name,
            was.color,
            was.name,
        )
        assert (now.is_locked, now.measurements, now.properties, now.extra) == (
            was.is_locked,
            was.measurements,
            was.properties,
            was.extra,
        )


def test_import_refuses_bad_geojson_and_writes_nothing(client: TestClient, study: Study) -> None:
    outside = feature(990, 790, 50)  # crosses the 1000 x 1000 image's edge
    bad = client.post(
        f"{study.url}/import",
        content=json.dumps({"type": "FeatureCollection", "features": [feature(0, 0), outside]}),
        headers=study.as_("annotator"),
    )
    assert bad.status_code == 422
    assert bad.json()["problem"] == "out-of-bounds" and bad.json()["feature"] == 1
    assert client.get(study.url, headers=study.as_("viewer")).json()["features"] == []


def test_imports_have_their_own_body_cap(client: TestClient, study: Study) -> None:
    def collection(n: int) -> bytes:
        features = [feature(i % 900, i // 900, 5) for i in range(n)]
        return json.dumps({"type": "FeatureCollection", "features": features}).encode()

    medium, large = collection(250), collection(600)
    assert JSON_CAP < len(medium) < IMPORT_CAP < len(large)
    # over the JSON cap: a plain POST is refused, an import is not
    assert client.post(study.url, content=medium, headers=study.as_("annotator")).status_code == 413
    ok = client.post(f"{study.url}/import", content=medium, headers=study.as_("annotator"))
    assert ok.status_code == 201 and ok.json()["imported"] == 250
    too_big = client.post(f"{study.url}/import", content=large, headers=study.as_("annotator"))
    assert too_big.status_code == 413
    listed = client.get(study.url, params={"limit": 1000}, headers=study.as_("viewer")).json()
    assert len(listed["features"]) == 250


def test_roles(client: TestClient, study: Study) -> None:
    viewer = client.post(study.url, json=feature(0, 0), headers=study.as_("viewer"))
    assert viewer.status_code == 403
    url = create(client, study, who="annotator").headers["location"]
    other = client.patch(
        url,
        json={"properties": {"name": "mine now"}},
        headers=study.as_("annotator2", **{"If-Match": '"v1"'}),
    )
    assert other.status_code == 403
    analyst = client.patch(
        url,
        json={"properties": {"name": "reviewed"}},
        headers=study.as_("analyst", **{"If-Match": '"v1"'}),
    )
    assert analyst.status_code == 200
    assert client.get(url, headers=study.as_("outsider")).status_code == 404
    assert client.get(study.url, headers=study.as_("outsider")).status_code == 404


def test_an_image_not_in_the_study_is_404(
    client: TestClient, study: Study, container: Container
) -> None:
    other = client.post("/v1/images", content=make_image(64, 64), headers=study.as_("owner"))
    url = f"/v1/studies/{study.id}/images/{other.json()['id']}/annotations"
    assert client.get(url, headers=study.as_("owner")).status_code == 404
    assert client.post(url, json=feature(0, 0), headers=study.as_("owner")).status_code == 404


def test_a_locked_study_is_read_only(client: TestClient, study: Study) -> None:
    url = create(client, study).headers["location"]
    locked = client.post(
        f"/v1/studies/{study.id}/status", json={"status": "locked"}, headers=study.as_("owner")
    )
    assert locked.status_code == 200
    assert client.get(url, headers=study.as_("viewer")).status_code == 200
    refused = [
        client.post(study.url, json=feature(0, 0), headers=study.as_("owner")),
        client.put(url, json=feature(0, 0), headers=study.as_("owner", **{"If-Match": '"v1"'})),
        client.delete(url, headers=study.as_("owner", **{"If-Match": '"v1"'})),
        client.post(f"{url}/revert", json={"version": 1}, headers=study.as_("owner")),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403, 403]
    assert client.get(url, headers=study.as_("viewer")).headers["etag"] == '"v1"'


def test_analysis_output_is_read_only_over_http(
    client: TestClient, study: Study, container: Container
) -> None:
    from pixelmill.backends.metadata.events import Actor
    from pixelmill.imaging.annotations import parse_geojson as parse

    owner = container.users.find("owner")
    assert owner is not None
    (aid,) = container.annotations.create_many(
        Actor(owner.id), study.id, study.image_id, parse(feature(1, 1)),
        source="analysis", analysis_id="an1",
    )  # fmt: skip
    url = f"{study.url}/{aid}"
    assert client.get(url, headers=study.as_("viewer")).json()["pixelmill"]["source"] == "analysis"
    edit = client.put(url, json=feature(2, 2), headers=study.as_("owner", **{"If-Match": '"v1"'}))
    assert edit.status_code == 403
    assert client.get(url, headers=study.as_("viewer")).headers["etag"] == '"v1"'


def test_an_annotation_id_does_not_leak_through_another_study(
    client: TestClient, study: Study
) -> None:
    aid = create(client, study).json()["pixelmill"]["id"]
    # the outsider has a study and an image of their own, and knows the id
    theirs = client.post("/v1/studies", json={"name": "Mine"}, headers=study.as_("outsider"))
    image = client.post("/v1/images", content=make_image(64, 64), headers=study.as_("outsider"))
    sid, iid = theirs.json()["id"], image.json()["id"]
    link = {"image_id": iid}
    assert client.post(
        f"/v1/studies/{sid}/images", json=link, headers=study.as_("outsider")
    ).is_success
    base = f"/v1/studies/{sid}/images/{iid}/annotations/{aid}"
    assert client.get(base, headers=study.as_("outsider")).status_code == 404
    assert client.get(f"{base}/history", headers=study.as_("outsider")).status_code == 404
    revert = client.post(f"{base}/revert", json={"version": 1}, headers=study.as_("outsider"))
    assert revert.status_code == 404
    assert client.get(f"{study.url}/{aid}", headers=study.as_("owner")).headers["etag"] == '"v1"'


def test_merge_patch_content_type_and_openapi(client: TestClient, study: Study) -> None:
    url = create(client, study, name="a").headers["location"]
    patched = client.patch(
        url,
        content=json.dumps({"properties": {"name": None, "classification": {"name": "Immune"}}}),
        headers=study.as_(
            "annotator", **{"If-Match": '"v1"', "Content-Type": "application/merge-patch+json"}
        ),
    )
    assert patched.status_code == 200, patched.text
    props = patched.json()["properties"]
    assert "name" not in props and props["classification"] == {"name": "Immune"}
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/studies/{study_id}/images/{image_id}/annotations/{annotation_id}/revert" in paths
