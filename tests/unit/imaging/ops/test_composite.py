"""composite: a fluorescence view of chosen channels, each in its colour, added up."""

from __future__ import annotations

import numpy as np
import pytest
import pyvips

from pixelmill.errors import InvalidParameter
from pixelmill.imaging import ops
from pixelmill.imaging.pipeline import run
from pixelmill.imaging.render import parse_render, to_steps


def _stack() -> pyvips.Image:
    """A 4-channel 16-bit stack: channel k is full on in column block k, off elsewhere."""
    arr = np.zeros((8, 32, 4), dtype=np.uint16)
    for k in range(4):
        arr[:, 8 * k : 8 * (k + 1), k] = 65535
    return pyvips.Image.new_from_array(arr).copy(interpretation="multiband")


def _render(query: str) -> np.ndarray:
    steps = to_steps(parse_render(dict([query.split("=", 1)]), max_side=4096))
    return np.asarray(run(_stack(), steps).numpy())


def test_shown_channels_take_their_colours_and_hidden_ones_are_black() -> None:
    out = _render("channels=0:0000ff,2:00ff00")
    assert out.shape == (8, 32, 3) and out.dtype == np.uint8
    assert out[0, 0].tolist() == [0, 0, 255]  # channel 0 in blue
    assert out[0, 8].tolist() == [0, 0, 0]  # channel 1 hidden
    assert out[0, 16].tolist() == [0, 255, 0]  # channel 2 in green
    assert out[0, 24].tolist() == [0, 0, 0]


def test_overlapping_channels_add_up_and_clip() -> None:
    image = pyvips.Image.new_from_array(np.full((2, 2, 5), 128, dtype=np.uint8))
    image = image.copy(interpretation="multiband")
    steps = ops.parse_pipeline(
        [{"op": "composite", "channels": [0, 1, 4], "colours": ["ff0000", "ff0000", "00ff00"]}]
    )
    out = np.asarray(run(image, steps).numpy())
    assert out[0, 0].tolist() == [255, 128, 0]  # 128 + 128 red clips at 255


def test_no_channel_shown_is_black() -> None:
    assert int(_render("channels=none").max()) == 0


def test_a_channel_the_image_lacks_is_a_clear_error() -> None:
    with pytest.raises(InvalidParameter, match="channel 7 is not in this image"):
        _render("channels=7:ff0000")


@pytest.mark.parametrize("bad", ["x", "0:nocolour", "0:ff0000,-1:00ff00", ",".join(["0"] * 17)])
def test_bad_channel_lists_are_refused(bad: str) -> None:
    with pytest.raises(InvalidParameter):
        parse_render({"channels": bad}, max_side=4096)
