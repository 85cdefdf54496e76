"""What users see from the geometric operations: sizes, crops, mirrors, orientation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import pyvips

from pixelmill.errors import InvalidParameter
from pixelmill.imaging import ops
from pixelmill.imaging.pipeline import run


def _run(image: pyvips.Image | bytes, *specs: dict[str, Any]) -> np.ndarray:
    out = run(image, ops.parse_pipeline(list(specs)))
    return np.asarray(out.numpy())


def _marked(width: int = 400, height: int = 200) -> pyvips.Image:
    """Grey image with a white square near the top-left corner (at 10..40, 10..40)."""
    arr = np.full((height, width, 3), 100, dtype=np.uint8)
    arr[10:40, 10:40] = 255
    return pyvips.Image.new_from_array(arr).copy(interpretation="srgb")


@pytest.mark.parametrize(
    ("fit", "expect"),
    [
        ("cover", (100, 100)),
        ("contain", (100, 100)),
        ("fill", (100, 100)),
        ("inside", (100, 50)),
        ("outside", (200, 100)),
    ],
)
def test_fit_modes_give_sharp_compatible_sizes(fit: str, expect: tuple[int, int]) -> None:
    out = _run(_marked(), {"op": "resize", "width": 100, "height": 100, "fit": fit})
    assert (out.shape[1], out.shape[0]) == expect


def test_contain_pads_with_the_background_colour() -> None:
    out = _run(
        _marked(),
        {"op": "resize", "width": 100, "height": 100, "fit": "contain", "background": "ff0000"},
    )
    assert tuple(out[0, 50]) == (255, 0, 0)  # top band is padding
    assert tuple(out[50, 50]) != (255, 0, 0)  # the middle is the picture


def test_width_only_keeps_aspect_ratio() -> None:
    out = _run(_marked(400, 200), {"op": "resize", "width": 100})
    assert out.shape[:2] == (50, 100)


def test_cover_gravity_west_keeps_the_left_edge_and_focal_point_follows_the_mark() -> None:
    west = _run(
        _marked(), {"op": "resize", "width": 100, "height": 100, "fit": "cover", "gravity": "west"}
    )
    assert west[12, 12].mean() > 200  # the white mark (left side) survives the crop
    east = _run(
        _marked(), {"op": "resize", "width": 100, "height": 100, "fit": "cover", "gravity": "east"}
    )
    assert east.max() < 200  # cropped away on the other side
    focal = _run(
        _marked(),
        {"op": "resize", "width": 50, "height": 50, "fit": "cover", "focal": [0.06, 0.12]},
    )
    assert focal.max() > 200


def test_rotate_right_angles_swap_sides_and_any_angle_fills_corners() -> None:
    assert _run(_marked(400, 200), {"op": "rotate", "angle": 90}).shape[:2] == (400, 200)
    tilted = _run(_marked(400, 200), {"op": "rotate", "angle": 30, "background": "00ff00"})
    assert tuple(tilted[0, 0]) == (0, 255, 0)


def test_flip_mirrors_left_right() -> None:
    out = _run(_marked(400, 200), {"op": "flip", "direction": "horizontal"})
    assert out[12, 400 - 12].mean() > 200 and out[12, 12].mean() < 200


def test_crop_box_and_crop_outside_image() -> None:
    out = _run(_marked(), {"op": "crop", "left": 10, "top": 10, "width": 30, "height": 30})
    assert out.shape[:2] == (30, 30) and out.min() == 255
    with pytest.raises(InvalidParameter):
        _run(_marked(), {"op": "crop", "left": 500, "top": 0, "width": 5, "height": 5})


def test_exif_orientation_is_applied_on_load() -> None:
    image = _marked(400, 200).copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)  # rotate 90 cw to view
    data = bytes(image.write_to_buffer(".png"))
    plain = run(data, [], auto_orient=True)
    assert (plain.width, plain.height) == (200, 400)
    resized = run(data, ops.parse_pipeline([{"op": "resize", "width": 100}]))
    assert (resized.width, resized.height) == (100, 200)


def test_unknown_operation_and_bad_parameters_are_422() -> None:
    with pytest.raises(InvalidParameter) as unknown:
        ops.parse_pipeline([{"op": "explode"}])
    assert "explode" in unknown.value.detail
    with pytest.raises(InvalidParameter) as bad:
        ops.parse_pipeline([{"op": "resize", "width": 0}])
    assert bad.value.extra["errors"][0]["loc"].startswith("steps[0]")
    with pytest.raises(InvalidParameter):
        ops.parse_pipeline([])


def _small_sources(width: int, height: int) -> dict[str, pyvips.Image | bytes]:
    """One small image as a decoded image (resize after other steps) and as PNG and
    JPEG bytes (resize fused with decoding)."""
    image = _marked(width, height)
    return {
        "image": image,
        "png": bytes(image.write_to_buffer(".png")),
        "jpeg": bytes(image.write_to_buffer(".jpg")),
    }


@pytest.mark.parametrize("source", ["image", "png", "jpeg"])
@pytest.mark.parametrize(
    ("box", "fit", "kept", "enlarged"),
    [
        ((400, None), "cover", (200, 100), (400, 200)),
        ((400, 400), "cover", (200, 100), (400, 400)),
        ((400, 400), "contain", (400, 400), (400, 400)),
        ((400, 400), "fill", (200, 100), (400, 400)),
        ((400, 400), "inside", (200, 100), (400, 200)),
        ((400, 400), "outside", (200, 100), (800, 400)),
        ((150, 400), "cover", (150, 100), (150, 400)),  # one side only too short
        ((150, 400), "fill", (150, 100), (150, 400)),
    ],
)
def test_no_fit_mode_enlarges_unless_asked(
    source: str,
    box: tuple[int, int | None],
    fit: str,
    kept: tuple[int, int],
    enlarged: tuple[int, int],
) -> None:
    # given a 200x100 image and a box larger than it on at least one side
    src = _small_sources(200, 100)[source]
    spec = {"op": "resize", "width": box[0], "height": box[1], "fit": fit}
    # by default the picture is never scaled up
    out = _run(src, spec)
    assert (out.shape[1], out.shape[0]) == kept
    # enlarge=true scales it up to the box
    big = _run(src, {**spec, "enlarge": True})
    assert (big.shape[1], big.shape[0]) == enlarged


def test_contain_without_enlarge_centres_the_unscaled_picture() -> None:
    out = _run(
        _marked(200, 100),
        {"op": "resize", "width": 400, "height": 400, "fit": "contain", "background": "ff0000"},
    )
    assert tuple(out[10, 10]) == (255, 0, 0)  # padding around it
    assert out[150 + 12, 100 + 12].mean() > 200  # the mark at its own size, 100 px in
    assert out[150 + 45, 100 + 45].mean() < 150  # ... and no bigger (it ends at 40)


def _sixteen_bit_png(width: int = 400, height: int = 200) -> bytes:
    pixels = np.empty((height, width, 3), np.uint16)
    pixels[...] = (50000, 20001, 10003)
    pixels[10:40, 10:40] = 65535
    image = pyvips.Image.new_from_array(pixels).copy(interpretation="rgb16")
    return bytes(image.write_to_buffer(".png"))


@pytest.mark.parametrize(
    "spec",
    [
        {"width": 100},
        {"width": 100, "height": 100, "fit": "cover"},
        {"width": 100, "height": 100, "fit": "cover", "gravity": "attention"},
        {"width": 100, "height": 100, "fit": "cover", "gravity": "west"},
        {"width": 100, "height": 100, "fit": "contain"},
        {"width": 100, "height": 100, "fit": "fill"},
        {"width": 100, "height": 100, "fit": "outside"},
    ],
)
def test_16_bit_sources_resize_in_16_bits(spec: dict[str, Any]) -> None:
    fused = run(_sixteen_bit_png(), ops.parse_pipeline([{"op": "resize", **spec}]))
    after_crop = run(
        _sixteen_bit_png(),
        ops.parse_pipeline(
            [
                {"op": "crop", "left": 0, "top": 0, "width": 400, "height": 200},
                {"op": "resize", **spec},
            ]
        ),
    )
    for out in (fused, after_crop):
        assert str(out.format) == "ushort"
        middle = out(out.width // 2, out.height // 2)[:3]
        assert middle == pytest.approx([50000, 20001, 10003], abs=2)


def test_16_bit_transparent_pixels_leave_no_fringe_when_shrunk() -> None:
    # given a 16-bit image: opaque red on the left, transparent green on the right
    pixels = np.zeros((200, 400, 4), np.uint16)
    pixels[:, :200] = (60000, 1000, 1000, 65535)
    pixels[:, 200:] = (0, 65535, 0, 0)
    image = pyvips.Image.new_from_array(pixels).copy(interpretation="rgb16")
    out = run(
        bytes(image.write_to_buffer(".png")), ops.parse_pipeline([{"op": "resize", "width": 130}])
    )
    # the edge pixel is part-transparent red, not tinted by the invisible green
    red, green, _, alpha = out(64, 20)
    assert str(out.format) == "ushort" and alpha > 30000
    assert red > 58000 and green < 2000
