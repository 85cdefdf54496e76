"""Renders that reuse a kept decode of their original look exactly like renders that
decode afresh, for every fit mode and output format, and the reuse really happens."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import pyvips

from pixelmill.imaging.render import RenderParams
from pixelmill.runtime.container import Container, build_container
from pixelmill.services.images import ImageService
from tests.conftest import make_settings

FITS = ("cover", "contain", "fill", "inside", "outside", "fill-down")
FORMATS = ("jpeg", "png", "webp", "avif")


def _picture(width: int, height: int, bands: int = 3) -> pyvips.Image:
    xy = pyvips.Image.xyz(width, height)
    planes = [xy[0] * 255 / width, xy[1] * 255 / height, (xy[0] + xy[1]) % 256]
    if bands == 4:
        planes.append(xy[0] * 0 + 160 + xy[1] % 64)
    noise = pyvips.Image.gaussnoise(width, height, sigma=16, seed=3)
    image = (planes[0].bandjoin(planes[1:]) + noise).cast("uchar")
    return image.copy(interpretation="srgb")


def _sources() -> dict[str, bytes]:
    frames = [_picture(160, 120) for _ in range(3)]
    gif = pyvips.Image.arrayjoin(frames, across=1).copy()
    gif.set_type(pyvips.GValue.gint_type, "page-height", 120)
    deep = (_picture(640, 480).cast("ushort") * 257).cast("ushort").copy(interpretation="rgb16")
    return {
        "jpeg": bytes(_picture(1600, 1200).write_to_buffer(".jpg", Q=90)),
        "rgba-png": bytes(_picture(640, 480, 4).write_to_buffer(".png")),
        "16-bit-tiff": bytes(deep.write_to_buffer(".tif")),
        "animated-gif": bytes(gif.write_to_buffer(".gif")),
    }


SOURCES = _sources()


@pytest.fixture(scope="module")
def services(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ImageService, ImageService]]:
    """Two image services with no result cache: one keeping decodes, one not (built
    once for the module: each test uploads its own originals)."""
    tmp_path = tmp_path_factory.mktemp("intermediates")
    containers: list[Container] = []
    for kept in (0, 64 * 1024 * 1024):
        settings = make_settings(
            tmp_path / str(kept),
            cache={"url": "none://"},
            render={"intermediate_cache_bytes": kept},
        )
        containers.append(build_container(settings))
    yield containers[0].image_service, containers[1].image_service
    for c in containers:
        c.close()


def _pixels(body: bytes) -> np.ndarray:
    animated = body[:4] in (b"RIFF", b"GIF8")
    return np.asarray(pyvips.Image.new_from_buffer(body, "", **({"n": -1} if animated else {})))


@pytest.mark.parametrize("name", list(SOURCES))
def test_a_kept_decode_renders_the_same_pixels(
    services: tuple[ImageService, ImageService], name: str
) -> None:
    afresh, keeping = services
    ids = [s.ingest_bytes(SOURCES[name])[0].id for s in services]
    for fit in FITS:
        for fmt in FORMATS if fit == "cover" else FORMATS[:3]:
            params = RenderParams(w=300, h=200, fit=fit, format=fmt)
            want = afresh.render(ids[0], params).body
            got = keeping.render(ids[1], params).body
            assert np.array_equal(_pixels(got), _pixels(want)), (name, fit, fmt)
    assert keeping.intermediates.nbytes > 0  # the renders did share decodes
    assert afresh.intermediates.nbytes == 0


def test_each_size_of_a_hot_jpeg_decodes_once(
    services: tuple[ImageService, ImageService],
) -> None:
    # given a 1600 px JPEG asked for in three sizes, each in three formats
    _, keeping = services
    original = bytes(_picture(1600, 1200).fliphor().write_to_buffer(".jpg", Q=85))
    image_id = keeping.ingest_bytes(original)[0].id
    before = len(keeping.intermediates)
    for width in (150, 400, 700):
        for fmt in ("jpeg", "webp", "png"):
            keeping.render(image_id, RenderParams(w=width, format=fmt))
    # then one decode is kept per shrink factor (8, 4, 2), not one per request
    assert len(keeping.intermediates) - before == 3
