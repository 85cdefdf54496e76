from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvips

from pixelmill.errors import CorruptImage, EmptyInput, ImageTooLarge, UnsupportedFormat
from pixelmill.imaging.formats import ImageFormat
from pixelmill.imaging.probe import probe
from tests.helpers import animation, make_image


def test_probe_reports_size_bands_depth_and_format() -> None:
    info = probe(make_image(320, 200, fmt=".png"), max_pixels=10**8)
    assert (info.format, info.width, info.height, info.bands, info.bit_depth) == (
        ImageFormat.PNG,
        320,
        200,
        3,
        8,
    )


def test_sixteen_bit_png_reports_sixteen_bits() -> None:
    arr = (np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 20).astype(np.uint16)
    data = pyvips.Image.new_from_array(arr).copy(interpretation="grey16").write_to_buffer(".png")
    info = probe(data, max_pixels=10**8)
    assert (info.bit_depth, info.bands) == (16, 1)


def test_multipage_tiff_counts_pages(tmp_path: Path) -> None:
    page = pyvips.Image.new_from_buffer(make_image(40, 30, fmt=".png"), "")
    stack = pyvips.Image.arrayjoin([page] * 3, across=1).copy()
    stack.set_type(pyvips.GValue.gint_type, "page-height", 30)
    path = tmp_path / "stack.tif"
    stack.write_to_file(str(path))
    info = probe(path, max_pixels=10**8)
    assert (info.pages, info.width, info.height) == (3, 40, 30)


def test_exif_orientation_is_read() -> None:
    image = pyvips.Image.new_from_buffer(make_image(40, 30), "").copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)
    info = probe(bytes(image.write_to_buffer(".jpg")), max_pixels=10**8)
    assert info.orientation == 6


def test_decompression_bomb_is_refused_from_the_header() -> None:
    # a 20000x20000 PNG of one colour compresses to a few hundred KB
    bomb = pyvips.Image.black(20000, 20000).write_to_buffer(".png", compression=9)
    with pytest.raises(ImageTooLarge) as err:
        probe(bomb, max_pixels=100_000_000)
    assert err.value.status == 413


def test_truncated_jpeg_is_corrupt() -> None:
    data = make_image(400, 300)
    with pytest.raises(CorruptImage):
        probe(data[: len(data) // 2], max_pixels=10**8)


def test_empty_and_non_image_bytes_are_refused() -> None:
    with pytest.raises(EmptyInput):
        probe(b"", max_pixels=10**8)
    with pytest.raises(UnsupportedFormat) as err:
        probe(b"GIF-ish but not really, just text" * 4, max_pixels=10**8)
    assert err.value.status == 415


def test_png_signature_with_garbage_body_is_corrupt() -> None:
    with pytest.raises(CorruptImage):
        probe(b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, max_pixels=10**8)


def test_a_whole_slide_over_the_pixel_limit_is_taken_up_to_the_slide_limit(
    tmp_path: Path,
) -> None:
    image = pyvips.Image.new_from_buffer(make_image(1200, 800), "")
    slide, flat = tmp_path / "slide.tif", tmp_path / "flat.tif"
    image.tiffsave(str(slide), tile=True, pyramid=True, compression="jpeg")
    image.tiffsave(str(flat), tile=True, compression="jpeg")
    info = probe(slide, max_pixels=500_000, max_slide_pixels=10**8)
    assert (info.width, info.height) == (1200, 800)
    with pytest.raises(ImageTooLarge):
        probe(slide, max_pixels=500_000, max_slide_pixels=900_000)  # over the slide limit
    with pytest.raises(ImageTooLarge):
        probe(flat, max_pixels=500_000, max_slide_pixels=10**8)  # no reduced levels
    with pytest.raises(ImageTooLarge):
        probe(slide.read_bytes(), max_pixels=500_000)  # slides not allowed


@pytest.mark.parametrize("size", [(1, 1), (3, 40), (7, 7), (40, 5)])
def test_jpeg_smaller_than_the_verify_shrink_is_accepted(size: tuple[int, int]) -> None:
    # libvips refuses a shrink-on-load that leaves a side of 0 pixels ("bad
    # dimensions"): a 1x1 JPEG was refused as corrupt at upload
    width, height = size
    info = probe(make_image(width, height), max_pixels=10**8)
    assert (info.format, info.width, info.height) == (ImageFormat.JPEG, width, height)


def test_truncated_tiny_jpeg_is_still_corrupt() -> None:
    data = make_image(5, 5)
    with pytest.raises(CorruptImage):
        probe(data[: len(data) // 2], max_pixels=10**8)


def _rendered_frames(data: bytes) -> int:
    """How many frames a render of every page gives, as the gateway renders a GIF."""
    from pixelmill.imaging import pipeline
    from pixelmill.imaging.encode import encode
    from pixelmill.imaging.ops import OpContext

    image = pipeline.run(data, [], OpContext(), pages="all")
    body = encode(image, ImageFormat.GIF, quality=82)
    return int(pyvips.Image.new_from_buffer(body, "", n=-1).get("n-pages"))


@pytest.mark.parametrize("cut", [3, 20, 60], ids=lambda n: f"last-{n}-bytes")
def test_an_animated_gif_cut_inside_its_last_frame_is_corrupt(cut: int) -> None:
    # libvips decodes the cut frame without an error (whatever fail_on says) and counts
    # it: the upload was stored with pages=3 and its renders showed 2 frames
    data = animation(3)
    cut_short = data[:-cut]
    assert pyvips.Image.new_from_buffer(cut_short, "").get("n-pages") == 3
    with pytest.raises(CorruptImage) as err:
        probe(cut_short, max_pixels=10**8)
    assert "truncated" in err.value.detail


def test_a_cut_gif_in_a_file_is_corrupt_too(tmp_path: Path) -> None:
    path = tmp_path / "cut.gif"
    path.write_bytes(animation(3)[:-3])
    with pytest.raises(CorruptImage):
        probe(path, max_pixels=10**8)


def test_an_animated_gif_upload_and_its_render_agree_on_the_frames() -> None:
    # every way of cutting the file short: refused at upload, or stored with the frame
    # count a render of every frame shows (a GIF missing only its trailer byte, or cut
    # between two whole frames, has every pixel of the frames it has)
    data = animation(3)
    assert probe(data, max_pixels=10**8).pages == _rendered_frames(data) == 3
    assert probe(data[:-1], max_pixels=10**8).pages == 3  # no trailer: accepted
    accepted: dict[int, int] = {}
    for end in range(len(data) - 1, 13, -1):
        try:
            accepted[end] = probe(data[:end], max_pixels=10**8).pages
        except CorruptImage:
            continue
    animations = {end: pages for end, pages in accepted.items() if pages > 1}
    assert sorted(set(animations.values())) == [2, 3]  # cut between frames 2 and 3 too
    for end, pages in animations.items():  # (one frame renders as a still)
        assert _rendered_frames(data[:end]) == pages, end
