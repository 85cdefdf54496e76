"""Another stored image that a render or a job names (a watermark's ``wm`` / ``image``,
stain_normalize's ``reference``) is read with the caller's access, like the rendered
image itself: someone else's image answers the 404 of an unknown id, whether the caller
is a member (render, remote source, job) or anonymous (a study's public renders)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pyvips
from fastapi.testclient import TestClient

from pixelmill.runtime.container import Container
from pixelmill.settings import Settings
from tests.conftest import make_settings
from tests.helpers import make_image
from tests.security.people import Person, person

MARK = "&wm_scale=1&wm_opacity=1&wm_pos=northwest&format=png&w=64"
UNKNOWN = "img_doesnotexist0000000000"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, security={"thumbor_allow_unsafe": True})


@pytest.fixture
def people(container: Container, client: TestClient) -> tuple[Person, Person]:
    return person(container, client, "alice"), person(container, client, "bob")


def _upload(who: Person, seed: int) -> str:
    resp = who.post("/v1/images", content=make_image(64, 48, seed=seed, fmt=".png"))
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _refused_like_unknown(answer: Any, unknown: Any) -> None:
    assert answer.status_code == 404, answer.text
    assert unknown.status_code == 404, unknown.text
    # the same problem, bar the id: nothing tells "someone else's" from "no such image"
    assert answer.json()["type"] == unknown.json()["type"]
    assert answer.json()["detail"].split("'")[0] == unknown.json()["detail"].split("'")[0]


def test_a_member_cannot_watermark_with_someone_elses_image(
    people: tuple[Person, Person],
) -> None:
    alice, bob = people
    secret, own, mark = _upload(alice, 1), _upload(bob, 2), _upload(bob, 3)
    stolen = bob.get(f"/v1/images/{own}/render?wm={secret}{MARK}")
    unknown = bob.get(f"/v1/images/{own}/render?wm={UNKNOWN}{MARK}")
    _refused_like_unknown(stolen, unknown)
    # his own watermark image still works, and so does alice's on her image
    assert bob.get(f"/v1/images/{own}/render?wm={mark}{MARK}").status_code == 200
    assert alice.get(f"/v1/images/{secret}/render?wm={secret}{MARK}").status_code == 200


def test_a_cached_render_with_a_watermark_is_not_served_to_others(
    people: tuple[Person, Person],
) -> None:
    alice, bob = people
    secret, shared = _upload(alice, 1), _upload(bob, 2)
    study = bob.post("/v1/studies", json={"name": "shared"}).json()["id"]
    assert bob.post(f"/v1/studies/{study}/images", json={"image_id": shared}).status_code == 201
    joined = bob.put(f"/v1/studies/{study}/members/{alice.user_id}", json={"role": "viewer"})
    assert joined.status_code == 200, joined.text
    # alice may render bob's shared image with her own watermark (now in the cache) ...
    mine = alice.get(f"/v1/images/{shared}/render?wm={secret}{MARK}")
    assert mine.status_code == 200, mine.text
    # ... bob asking for the very same render gets no cache hit, a 404
    assert bob.get(f"/v1/images/{shared}/render?wm={secret}{MARK}").status_code == 404


def test_a_job_cannot_name_someone_elses_image(people: tuple[Person, Person]) -> None:
    alice, bob = people
    secret, own, mark = _upload(alice, 1), _upload(bob, 2), _upload(bob, 3)
    steps: list[dict[str, Any]] = [
        {"op": "watermark", "image": secret, "scale": 1, "opacity": 1},
        {"op": "stain_normalize", "method": "reinhard", "reference": secret},
    ]
    for step in steps:
        stolen = bob.post("/v1/jobs", json={"inputs": [own], "pipeline": [step]})
        unknown_step = {**step, ("image" if "image" in step else "reference"): UNKNOWN}
        unknown = bob.post("/v1/jobs", json={"inputs": [own], "pipeline": [unknown_step]})
        _refused_like_unknown(stolen, unknown)
    assert bob.get("/v1/jobs").json()["items"] == []
    ok = bob.post(
        "/v1/jobs",
        json={"inputs": [own], "pipeline": [{"op": "watermark", "image": mark, "scale": 1}]},
    )
    assert ok.status_code in (200, 201, 202), ok.text


def test_an_unsafe_thumbor_url_has_no_watermark_filter(people: tuple[Person, Person]) -> None:
    alice, bob = people
    secret, own = _upload(alice, 1), _upload(bob, 2)
    refused = bob.get(f"/unsafe/64x48/filters:watermark({secret},0,0,0)/{own}")
    assert refused.status_code == 422, refused.text


def _public_study(bob: Person, image_id: str) -> None:
    study = bob.post("/v1/studies", json={"name": "open", "options": {"public_renders": True}})
    assert study.status_code == 201, study.text
    sid = study.json()["id"]
    assert bob.post(f"/v1/studies/{sid}/images", json={"image_id": image_id}).status_code == 201


def test_an_anonymous_public_render_cannot_watermark_with_a_private_image(
    people: tuple[Person, Person], client: TestClient
) -> None:
    alice, bob = people
    secret, public, mark = _upload(alice, 1), _upload(bob, 2), _upload(bob, 3)
    _public_study(bob, public)
    plain = client.get(f"/v1/images/{public}/render?w=64&format=png")
    assert plain.status_code == 200, plain.text  # the study's renders are public
    stolen = client.get(f"/v1/images/{public}/render?wm={secret}{MARK}")
    unknown = client.get(f"/v1/images/{public}/render?wm={UNKNOWN}{MARK}")
    _refused_like_unknown(stolen, unknown)
    # bob's own image, private: refused too; once public itself, it may be a watermark
    assert client.get(f"/v1/images/{public}/render?wm={mark}{MARK}").status_code == 404
    _public_study(bob, mark)
    marked = client.get(f"/v1/images/{public}/render?wm={mark}{MARK}")
    assert marked.status_code == 200, marked.text
    assert marked.headers["cache-control"].startswith("public")
    drawn = pyvips.Image.new_from_buffer(marked.content, "").numpy()
    assert not np.array_equal(drawn, pyvips.Image.new_from_buffer(plain.content, "").numpy())
