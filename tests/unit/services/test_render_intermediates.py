"""Renders that reuse a kept decode of their original look exactly like renders that
decode afresh, for every fit mode and output format, and the reuse really happens."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import pyvips

from pixelmill.errors import CorruptImage
from pixelmill.imaging.formats import ImageFormat
from pixelmill.imaging.render import RenderParams, to_steps
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
    before = keeping.intermediates.kinds()
    for width in (150, 400, 700):
        for fmt in ("jpeg", "webp", "png"):
            keeping.render(image_id, RenderParams(w=width, format=fmt))
    # then one decode is kept per shrink factor (8, 4, 2), not one per request, and one
    # resized image per size, which its other formats only encode
    kept = keeping.intermediates.kinds()
    assert kept["dct"] - before["dct"] == 3
    assert kept["rendered"] - before["rendered"] == 3


def test_other_formats_of_a_size_are_encoded_from_the_kept_result(
    services: tuple[ImageService, ImageService],
) -> None:
    # given a JPEG asked for at one size in four formats, as browsers' Accept differ
    afresh, keeping = services
    original = bytes(_picture(1600, 1200).flipver().write_to_buffer(".jpg", Q=88))
    ids = [s.ingest_bytes(original)[0].id for s in services]
    before = keeping.intermediates.kinds()["rendered"]
    for fmt in FORMATS:
        params = RenderParams(w=500, h=400, fit="cover", format=fmt, q=80)
        want = afresh.render(ids[0], params).body
        # then each answer is byte for byte what a render from the original gives
        assert keeping.render(ids[1], params).body == want, fmt
    # and the steps ran once: one result kept, which the other three only encoded
    assert keeping.intermediates.kinds()["rendered"] - before == 1


def test_a_render_that_reads_another_image_is_not_kept(
    services: tuple[ImageService, ImageService],
) -> None:
    # given a render with a watermark (another stored image: not a pure step)
    _, keeping = services
    mark = keeping.ingest_bytes(bytes(_picture(64, 64, 4).write_to_buffer(".png")))[0].id
    image_id = keeping.ingest_bytes(bytes(_picture(800, 600).rot90().write_to_buffer(".jpg")))[0]
    before = keeping.intermediates.kinds()["rendered"]
    for fmt in ("jpeg", "webp"):
        keeping.render(image_id.id, RenderParams(w=300, wm=mark, format=fmt))
    # then nothing of its result is kept (its decode still is)
    assert keeping.intermediates.kinds()["rendered"] == before


def test_a_stopped_render_keeps_nothing_and_the_next_one_renders(
    services: tuple[ImageService, ImageService],
) -> None:
    # given a render abandoned while its steps compute (its deadline passed)
    _, keeping = services
    record = keeping.ingest_bytes(bytes(_picture(1200, 900).rot180().write_to_buffer(".jpg")))[0]
    params = RenderParams(w=640, format="webp")
    steps = to_steps(params)
    before = keeping.intermediates.kinds()["rendered"]
    with pytest.raises(CorruptImage):
        keeping.render_steps(record, steps, ImageFormat.WEBP, 80, params=params, stop=lambda: True)
    # then no half-computed result is kept, and the same render then succeeds
    assert keeping.intermediates.kinds()["rendered"] == before
    body = keeping.render_steps(record, steps, ImageFormat.WEBP, 80, params=params)
    assert pyvips.Image.new_from_buffer(body, "").width == 640
    assert keeping.intermediates.kinds()["rendered"] == before + 1
