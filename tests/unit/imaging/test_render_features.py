"""Render parameters from imgproxy and thumbor, as a user sees them: sizes (dpr, zoom,
min sizes, fill-down), crops (fractions, gravity with offsets, trim, smart), padding.

Visual results are compared with goldens in tests/golden/render by SSIM."""

from __future__ import annotations

import numpy as np
import pytest
import pyvips

from pixelmill.imaging import pipeline
from pixelmill.imaging.ops import OpContext
from pixelmill.imaging.render import parse_render, to_steps
from tests.helpers import assert_golden


def scene(width: int = 240, height: int = 160) -> pyvips.Image:
    """A soft gradient with a red square (x 160..200, y 40..80) and a blue bar at the
    bottom (y 140..160): easy to see where a crop went."""
    yy, xx = np.mgrid[0:height, 0:width]
    arr = np.stack([60 + xx * 0.3, 90 + yy * 0.4, np.full_like(xx, 120)], axis=-1)
    arr = arr.astype(np.uint8)
    arr[40:80, 160:200] = (230, 20, 20)
    arr[height - 20 :, :] = (20, 20, 200)
    return pyvips.Image.new_from_array(arr).copy(interpretation="srgb")


def render(query: dict[str, str], source: pyvips.Image | None = None, **kw: int) -> np.ndarray:
    params = parse_render(query, max_side=kw.get("max_side", 8192))
    steps = to_steps(params, max_side=kw.get("max_side", 8192))
    image = pipeline.run(source if source is not None else scene(), steps, OpContext())
    return np.asarray(image.numpy())


def size(out: np.ndarray) -> tuple[int, int]:
    return out.shape[1], out.shape[0]


# -- resizing ----------------------------------------------------------------------------


def test_dpr_multiplies_the_asked_size() -> None:
    assert size(render({"w": "60", "h": "40"})) == (60, 40)
    assert size(render({"w": "60", "h": "40", "dpr": "2"})) == (120, 80)


def test_dpr_is_capped_by_the_largest_output_side_keeping_the_box_shape() -> None:
    out = render({"w": "120", "h": "80", "dpr": "4", "enlarge": "true"}, max_side=200)
    assert size(out) == (200, 133)


def test_dpr_does_not_enlarge_without_enlarge() -> None:
    assert size(render({"w": "200", "dpr": "3"})) == (240, 160)


def test_zoom_alone_scales_the_image() -> None:
    assert size(render({"zoom": "0.5"})) == (120, 80)
    assert size(render({"w": "100", "zoom": "0.5"})) == (50, 33)


def test_min_width_keeps_a_thin_result_wide_enough_then_crops_to_the_box() -> None:
    # inside 100x100 would be 100x67; min-h 80 scales to 120x80, cropped to width 100
    out = render({"w": "100", "h": "100", "fit": "inside", "min-h": "80"})
    assert size(out) == (100, 80)


def test_fill_down_keeps_the_box_shape_when_the_image_is_too_small() -> None:
    # a 240x160 image asked for 480x120 without enlarge: cover gives 240x120 ...
    assert size(render({"w": "480", "h": "120"})) == (240, 120)
    # ... fill-down the largest 4:1 window, 240x60
    assert size(render({"w": "480", "h": "120", "fit": "fill-down"})) == (240, 60)
    # and a large enough image fills the box exactly, like cover
    assert size(render({"w": "120", "h": "30", "fit": "fill-down"})) == (120, 30)


# -- cropping ----------------------------------------------------------------------------


def test_relative_crop_takes_fractions_of_the_image() -> None:
    out = render({"crop": "0.5,0.25,0.25,0.5"})
    assert size(out) == (60, 80)
    assert tuple(out[20, 45]) == (230, 20, 20)  # the red square starts at x 160 = 120 + 40


def test_crop_by_size_is_placed_by_gravity_and_offset() -> None:
    out = render({"crop": "40,40", "gravity": "northeast", "offset": "40,40"})
    assert size(out) == (40, 40)
    assert (out == (230, 20, 20)).all()  # exactly the red square
    assert_golden("render", "crop_gravity_offset", render({"crop": "120,90", "gravity": "east"}))


def test_gravity_offset_moves_the_cover_window_inward() -> None:
    plain = render({"w": "80", "h": "160", "gravity": "east"})
    moved = render({"w": "80", "h": "160", "gravity": "east", "offset": "40,0"})
    assert tuple(plain[60, 30]) == (230, 20, 20)  # x 190 of the source
    assert tuple(moved[60, 70]) == (230, 20, 20)  # 40 px further right in the window
    assert_golden("render", "cover_east_offset", moved)


def red_pixels(out: np.ndarray) -> int:
    return int(((out[..., 0] > 200) & (out[..., 1] < 60)).sum())


def test_smart_crop_keeps_the_salient_square() -> None:
    # the image scales to 120x80; a centre 40 px window (x 40..80) misses the square
    assert red_pixels(render({"w": "40", "h": "80"})) == 0
    out = render({"w": "40", "h": "80", "gravity": "attention"})
    assert red_pixels(out) >= 0.9 * 20 * 20
    assert_golden("render", "smart_attention", out)


def test_focal_point_centres_the_window_on_it() -> None:
    out = render({"w": "40", "h": "80", "fp": "0.75,0.375"})  # the red square's centre
    assert (out[22:38, 12:28] == (230, 20, 20)).all()


def bordered(colour: tuple[int, int, int], width: int = 30) -> pyvips.Image:
    inner = scene(120, 80)
    return inner.embed(
        width, width // 2, 120 + 2 * width, 80 + width, extend="background", background=list(colour)
    )


def test_trim_cuts_uniform_borders() -> None:
    out = render({"trim": "10"}, bordered((255, 255, 255)))
    assert size(out) == (120, 80)
    assert_golden("render", "trim", out)


def test_trim_of_a_named_colour_leaves_other_borders() -> None:
    image = bordered((0, 0, 0))
    assert size(render({"trim": "10", "trim_colour": "ffffff"}, image)) == (180, 110)
    assert size(render({"trim": "10", "trim_colour": "000000"}, image)) == (120, 80)


def test_trim_of_a_uniform_image_keeps_it() -> None:
    flat = pyvips.Image.black(50, 40, bands=3).copy(interpretation="srgb") + 128
    assert size(render({"trim": "10"}, flat.cast("uchar"))) == (50, 40)


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (1, 40), (40, 2)])
@pytest.mark.parametrize(
    "query",
    [{"trim": "10"}, {"trim": "0", "trim_colour": "000000"}, {"trim": "10", "w": "20"}],
)
def test_trim_of_an_image_too_small_for_a_border_keeps_it(
    shape: tuple[int, int], query: dict[str, str]
) -> None:
    # libvips' find_trim smooths with a 3x3 median and refused these as "window too
    # large": a 1x1 image with trim was answered 422 corrupt-image. As with a uniform
    # image, trim finds nothing to cut and the image goes on to the other steps as it is
    width, height = shape
    pixels = np.arange(width * height * 3, dtype=np.uint8).reshape(height, width, 3)
    source = pyvips.Image.new_from_array(pixels).copy(interpretation="srgb")
    out = render(query, source)
    if "w" not in query:
        assert np.array_equal(out, pixels)
    assert size(out) == size(render({k: v for k, v in query.items() if "trim" not in k}, source))


# -- padding -----------------------------------------------------------------------------


def test_pad_adds_margins_of_the_background_colour_scaled_by_dpr() -> None:
    out = render({"w": "60", "pad": "5,10", "bg": "ff00ff", "dpr": "2"})
    assert size(out) == (120 + 40, 80 + 20)
    assert tuple(out[2, 50]) == (255, 0, 255) and tuple(out[50, 5]) == (255, 0, 255)
    assert tuple(out[50, 80]) != (255, 0, 255)


def test_extend_puts_a_small_result_in_the_asked_box_by_gravity() -> None:
    out = render(
        {"w": "300", "h": "200", "fit": "inside", "extend": "1", "gravity": "south", "bg": "ffffff"}
    )
    assert size(out) == (300, 200)
    assert (out[:40] == 255).all()  # the image sits at the bottom
    assert_golden("render", "extend_south", out)


@pytest.mark.parametrize("query", [{"dpr": "2", "w": "10"}, {"trim": "5"}, {"pad": "3"}])
def test_every_new_parameter_changes_the_cache_key(query: dict[str, str]) -> None:
    from pixelmill.imaging.formats import ImageFormat
    from pixelmill.imaging.render import cache_key

    base = {"w": "10"} if "w" in query else {}
    key = cache_key("id", parse_render(query, max_side=8192), ImageFormat.PNG, 80)
    assert key != cache_key("id", parse_render(base, max_side=8192), ImageFormat.PNG, 80)


def test_trim_can_take_its_colour_from_the_bottom_right_corner() -> None:
    # a white band on top of a black-bordered picture: each corner trims its own colour
    image = bordered((0, 0, 0)).embed(0, 10, 180, 120, extend="white")
    bottom_right = render({"trim": "10", "trim_corner": "bottom-right"}, image)
    assert size(bottom_right) == (180, 105)  # the 15 black rows at the bottom go
    assert size(render({"trim": "10"}, image)) == (180, 110)  # the 10 white rows go


def test_fill_down_and_pad_goldens() -> None:
    small = scene(120, 80)
    assert_golden("render", "fill_down", render({"w": "240", "h": "60", "fit": "fill-down"}, small))
    assert_golden("render", "pad", render({"w": "100", "pad": "4,8,12,16", "bg": "ffcc00"}))
