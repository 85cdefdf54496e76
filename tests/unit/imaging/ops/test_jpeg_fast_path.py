"""The JPEG thumbnail fast path (OpenCV reduced decode + area resize, OpenCV encode of
small JPEGs) gives what the libvips path gives: the same sizes, the same orientation,
pixels within a small distance of a full-resolution reference, and it steps aside where
it would be wrong."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest
import pyvips
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.metrics import structural_similarity

from pixelmill.imaging import encode, ops
from pixelmill.imaging.formats import ImageFormat
from pixelmill.imaging.ops import resize as resize_op
from pixelmill.imaging.pipeline import run


def _photo(width: int, height: int, *, seed: int = 7) -> pyvips.Image:
    """A smooth, photo-like sRGB picture: soft terrain, cells and hard-edged shapes."""
    scale = max(width, height) / 1000
    bands = [
        pyvips.Image.perlin(width, height, cell_size=int(300 * scale), seed=seed + b) * 0.7
        + pyvips.Image.perlin(width, height, cell_size=int(60 * scale), seed=seed + 10 + b) * 0.3
        for b in range(3)
    ]
    image = bands[0].bandjoin(bands[1:]) * 80 + 128
    cells = pyvips.Image.worley(width, height, cell_size=int(80 * scale), seed=seed + 20)
    image = image * (0.7 + 0.3 * (1 - cells / int(80 * scale)))
    shapes = pyvips.Image.perlin(width, height, cell_size=int(120 * scale), seed=seed + 30)
    image = (shapes > 0.2).ifthenelse([200, 180, 60], image)
    return image.cast("uchar").copy(interpretation="srgb")


def _jpeg(image: pyvips.Image, *, orientation: int = 1, **save: Any) -> bytes:
    image = image.copy()
    if orientation != 1:
        image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    return bytes(image.write_to_buffer(".jpg", Q=92, **save))


def _steps(**spec: Any) -> list[ops.Step]:
    return ops.parse_pipeline([{"op": "resize", **spec}])


def _params(**spec: Any) -> resize_op.ResizeParams:
    return resize_op.ResizeParams(**spec)


def _reference(data: bytes, steps: list[ops.Step]) -> np.ndarray:
    """The same steps on the fully decoded, upright image (libvips Lanczos, no shrink-on-load)."""
    full = pyvips.Image.new_from_buffer(data, "").autorot()
    return np.asarray(run(full, steps).numpy())


@pytest.fixture(scope="module")
def photo_jpeg() -> bytes:
    return _jpeg(_photo(2400, 1600))


@pytest.mark.parametrize(
    "spec",
    [
        {"width": 300},
        {"width": 300, "height": 200},  # cover, centre crop
        {"width": 240, "height": 240, "fit": "inside"},
        {"width": 250, "height": 250, "fit": "fill"},
        {"width": 500, "height": 200, "fit": "cover", "gravity": "north"},
        {"width": 800},  # decodes at 1/2
    ],
)
def test_thumbnail_matches_a_full_resolution_reference(photo_jpeg: bytes, spec: dict) -> None:
    # given a big photo-like JPEG and a thumbnail request
    steps = _steps(**spec)
    assert resize_op._reduced_jpeg(photo_jpeg, steps[0].params) is not None  # fast path taken
    # when it renders through the fast path and, for reference, from full resolution
    fast = np.asarray(run(photo_jpeg, steps).numpy())
    reference = _reference(photo_jpeg, steps)
    # then the size is identical and the pixels are the same picture
    assert fast.shape == reference.shape
    diff = np.abs(fast.astype(np.int16) - reference.astype(np.int16))
    # (measured: mean 0.3-0.8, 99th percentile 4-8, max 10-20 at the hard edges, where
    # an area average and libvips' Lanczos place an edge a fraction of a pixel apart)
    assert diff.mean() <= 1.0, f"mean abs diff {diff.mean():.2f}"
    assert np.percentile(diff, 99) <= 10
    assert diff.max() <= 24, f"max abs diff {diff.max()}"
    ssim = structural_similarity(fast, reference, channel_axis=-1, data_range=255)
    assert ssim >= 0.99, f"SSIM {ssim:.4f}"


@pytest.mark.parametrize(
    "spec",
    [{"width": 300}, {"width": 300, "height": 200}, {"width": 150, "height": 150, "fit": "fill"}],
)
def test_smooth_picture_is_within_a_few_grey_levels_of_the_reference(spec: dict) -> None:
    # given a picture without hard edges (sky, skin, out-of-focus background)
    w, h = 2400, 1600
    bands = [
        pyvips.Image.perlin(w, h, cell_size=400, seed=5 + b) * 0.7
        + pyvips.Image.perlin(w, h, cell_size=90, seed=15 + b) * 0.3
        for b in range(3)
    ]
    data = _jpeg((bands[0].bandjoin(bands[1:]) * 90 + 128).cast("uchar"))
    steps = _steps(**spec)
    # when thumbnailed by the fast path, then no pixel is more than 3 levels off (measured 2)
    fast = np.asarray(run(data, steps).numpy()).astype(np.int16)
    diff = np.abs(fast - _reference(data, steps).astype(np.int16))
    assert diff.max() <= 3, f"max abs diff {diff.max()}"


def test_a_12_mp_jpeg_decodes_at_one_eighth_straight_to_rgb() -> None:
    # given a 4000x3000 JPEG whose left half is red
    arr = np.zeros((3000, 4000, 3), np.uint8)
    arr[:, :2000, 0] = 255
    arr[:, 2000:, 2] = 255
    data = _jpeg(pyvips.Image.new_from_array(arr).copy(interpretation="srgb"))
    # when a 300 px thumbnail needs it
    reduced = resize_op._reduced_jpeg(data, _params(width=300))
    # then OpenCV decoded 500x375 pixels, in RGB order (not OpenCV's usual BGR)
    assert reduced is not None
    assert reduced.pixels.shape == (375, 500, 3)
    assert tuple(reduced.pixels[100, 50]) == pytest.approx((255, 0, 0), abs=4)
    assert tuple(reduced.pixels[100, 450]) == pytest.approx((0, 0, 255), abs=4)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_libvips(orientation: int) -> None:
    # given a JPEG with a bright mark near its stored top-left corner and an orientation
    image = _photo(1200, 800, seed=3)
    image = image.draw_rect([255, 255, 255], 40, 40, 200, 120, fill=True)
    data = _jpeg(image, orientation=orientation)
    steps = _steps(width=150)
    # when the fast path renders it
    fast = np.asarray(run(data, steps).numpy())
    reference = _reference(data, steps)
    # then it is turned exactly as libvips' autorot turns it
    assert fast.shape == reference.shape
    assert np.abs(fast.astype(np.int16) - reference.astype(np.int16)).mean() <= 1.5


def test_greyscale_jpeg_stays_one_band() -> None:
    grey = _photo(1600, 1200).colourspace("b-w")
    data = _jpeg(grey)
    steps = _steps(width=200)
    assert resize_op._reduced_jpeg(data, steps[0].params) is not None
    out = run(data, steps)
    assert (out.width, out.height, out.bands) == (200, 150, 1)
    assert np.abs(out.numpy().astype(int) - _reference(data, steps).astype(int)).mean() <= 1.0


def test_metadata_and_srgb_profile_are_carried_over() -> None:
    # given a JPEG with EXIF, XMP and an sRGB ICC profile
    image = _photo(1600, 1200).copy()
    image.set_type(pyvips.GValue.gstr_type, "exif-ifd0-Artist", "Dr. Secret")
    data = _jpeg(image.icc_transform("srgb"), keep="all")
    steps = _steps(width=200)
    assert resize_op._reduced_jpeg(data, steps[0].params) is not None
    # when rendered, then the profile and EXIF are there for encoders that keep them
    out = run(data, steps)
    assert "icc-profile-data" in out.get_fields()
    assert b"Dr. Secret" in bytes(out.get("exif-data"))


def test_display_p3_jpeg_takes_the_fast_path_and_comes_out_in_srgb() -> None:
    # given a Display-P3 photo (an iPhone's)
    data = _jpeg(_photo(1600, 1200).icc_transform("p3"), keep="all")
    steps = _steps(width=200)
    assert resize_op._reduced_jpeg(data, steps[0].params) is not None
    # when rendered, the reduced pixels are converted as libvips converts the whole image
    out = run(data, steps)
    reference = _reference(data, steps)  # decoded in full, then resized, no conversion
    srgb = pyvips.Image.new_from_array(reference).copy(interpretation="srgb")
    srgb.set_type(
        pyvips.GValue.blob_type,
        "icc-profile-data",
        pyvips.Image.new_from_buffer(data, "").get("icc-profile-data"),
    )
    expected = srgb.icc_transform("srgb", embedded=True).numpy().astype(int)
    assert np.abs(out.numpy().astype(int) - expected).mean() <= 1.5


@pytest.mark.parametrize(
    ("case", "spec"),
    [
        ("cmyk", {"width": 200}),
        ("png", {"width": 200}),
        ("shrink under 2x", {"width": 1000}),
        ("enlarge", {"width": 3000, "enlarge": True}),
        ("corrupt", {"width": 200}),
    ],
)
def test_fast_path_steps_aside_where_libvips_must_decode(case: str, spec: dict) -> None:
    photo = _photo(1600, 1200)
    data = {
        "cmyk": lambda: _jpeg(photo.icc_transform("cmyk"), keep="all"),
        "png": lambda: bytes(photo.write_to_buffer(".png")),
        "shrink under 2x": lambda: _jpeg(photo),
        "enlarge": lambda: _jpeg(photo),
        "corrupt": lambda: b"\xff\xd8\xff\xe0" + b"\x00" * 200,
    }[case]()
    assert resize_op._reduced_jpeg(data, _params(**spec)) is None
    if case != "corrupt":  # libvips still renders it, at the asked size
        out = run(data, _steps(**spec))
        assert out.width == spec["width"]


@functools.cache
def _odd_jpeg(orientation: int) -> bytes:
    # odd sizes on purpose: DCT scaling rounds up, sizes must come from the original
    return _jpeg(_photo(1203, 917, seed=11), orientation=orientation)


@settings(max_examples=60, deadline=None)
@given(
    width=st.integers(1, 700),
    height=st.one_of(st.none(), st.integers(1, 700)),
    fit=st.sampled_from(["cover", "contain", "fill", "inside", "outside"]),
    orientation=st.sampled_from([1, 6]),
)
def test_sizes_are_identical_to_the_libvips_path(
    width: int, height: int | None, fit: str, orientation: int
) -> None:
    data = _odd_jpeg(orientation)
    steps = _steps(width=width, height=height, fit=fit)
    full = pyvips.Image.new_from_buffer(data, "").autorot()
    fast, slow = run(data, steps), run(full, steps)
    assert (fast.width, fast.height) == (slow.width, slow.height)


@pytest.mark.parametrize(("quality", "chroma"), [(82, "4:2:0"), (95, "4:4:4")])
@pytest.mark.parametrize("bands", [3, 1])
def test_small_jpegs_encoded_by_opencv_decode_to_libvips_pixels(
    quality: int, chroma: str, bands: int
) -> None:
    # given a small thumbnail (encoded by OpenCV) and the same pixels through libvips
    image = _photo(300, 200)
    if bands == 1:
        image = image.colourspace("b-w")
    ours = encode.encode(image, ImageFormat.JPEG, quality=quality)
    theirs = bytes(
        image.jpegsave_buffer(Q=quality, keep="none", optimize_coding=False, subsample_mode="auto")
    )
    # then both decode to the same pixels, with the same chroma subsampling
    a, b = pyvips.Image.new_from_buffer(ours, ""), pyvips.Image.new_from_buffer(theirs, "")
    assert (a.width, a.height, a.bands) == (300, 200, bands)
    assert np.abs(a.numpy().astype(int) - b.numpy().astype(int)).max() <= 1
    if bands == 3:
        assert a.get("jpeg-chroma-subsample") == b.get("jpeg-chroma-subsample") == chroma
    assert abs(len(ours) - len(theirs)) < 0.02 * len(theirs)
