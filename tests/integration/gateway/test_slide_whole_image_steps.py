"""trim, blur_faces and pixelate_faces in a render of a whole slide run on a reduced
level sized for the output, never on all of level 0 (which would hold a render slot
for seconds to minutes); with a level-0 crop they are refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pyvips
from fastapi.testclient import TestClient

from pixelmill.imaging.ops.blur_faces import BlurFaces
from pixelmill.imaging.ops.trim import Trim
from pixelmill.runtime.container import build_container
from pixelmill.services.gateway.app import create_app
from tests.conftest import make_settings
from tests.helpers import make_key

SIDE, BORDER, LIMIT = 6000, 600, 1_000_000
SLIDE_LEVEL_FACTOR = 4  # image_pages.SLIDE_LEVEL_FACTOR: at most 4x the output


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("slide-trim")
    container = build_container(make_settings(tmp, render={"max_pixels": LIMIT}))
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        _, key = make_key(container, "slide", role="admin")
        auth = {"Authorization": f"Bearer {key}"}
        # a white slide with a grey square inside a 600 px white border
        inner = SIDE - 2 * BORDER
        grey = (pyvips.Image.black(inner, inner) + 128).cast("uchar")
        slide = grey.embed(BORDER, BORDER, SIDE, SIDE, extend="white")
        slide = slide.colourspace("srgb")
        path = tmp / "slide.tif"
        slide.tiffsave(str(path), tile=True, pyramid=True, compression="deflate")
        r = client.post("/v1/images", content=path.read_bytes(), headers=auth)
        assert r.status_code == 201, r.text
        yield {"client": client, "auth": auth, "slide": r.json()["id"]}
    container.close()


def seen_by(monkeypatch: pytest.MonkeyPatch, op: type[Any]) -> list[tuple[int, int]]:
    sizes: list[tuple[int, int]] = []
    original = op.apply

    def spy(self: Any, image: pyvips.Image, params: Any, ctx: Any) -> pyvips.Image:
        sizes.append((image.width, image.height))
        return original(self, image, params, ctx)

    monkeypatch.setattr(op, "apply", spy)
    return sizes


def test_trim_on_a_slide_sees_a_reduced_level_and_still_trims(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = seen_by(monkeypatch, Trim)
    r = world["client"].get(
        f"/v1/images/{world['slide']}/render?w=300&trim=10&format=png", headers=world["auth"]
    )
    assert r.status_code == 200, r.text
    [(w, h)] = sizes
    assert w * h <= (SLIDE_LEVEL_FACTOR * 300) ** 2  # not 6000 x 6000
    out = pyvips.Image.new_from_buffer(r.content, "")
    assert out.width == 300
    centre = np.asarray(out.numpy())
    assert abs(int(centre[0, 0, 0]) - 128) < 8  # the white border is gone


def test_blur_faces_on_a_slide_sees_a_reduced_level(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = seen_by(monkeypatch, BlurFaces)
    r = world["client"].get(
        f"/v1/images/{world['slide']}/render?h=200&blur_faces=true&format=png",
        headers=world["auth"],
    )
    assert r.status_code in (200, 503), r.text  # 503: no face detector in this install
    assert sizes, "blur_faces did not run"
    assert all(w * h <= (SLIDE_LEVEL_FACTOR * 200) ** 2 for w, h in sizes)


def test_trim_with_a_level_0_crop_on_a_slide_is_refused(world: dict[str, Any]) -> None:
    r = world["client"].get(
        f"/v1/images/{world['slide']}/render?w=300&trim=10&crop=0,0,2000,2000",
        headers=world["auth"],
    )
    assert r.status_code == 413, r.text
    assert "crop" in r.json()["detail"]


def test_a_small_image_is_trimmed_at_full_resolution(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sizes = seen_by(monkeypatch, Trim)
    small = (
        (pyvips.Image.black(400, 300) + 128).cast("uchar").embed(20, 20, 440, 340, extend="white")
    )
    body = small.write_to_buffer(".png")
    r = world["client"].post("/v1/images", content=body, headers=world["auth"])
    assert r.status_code == 201, r.text
    got = world["client"].get(
        f"/v1/images/{r.json()['id']}/render?w=100&trim=10", headers=world["auth"]
    )
    assert got.status_code == 200, got.text
    assert sizes == [(440, 340)]
