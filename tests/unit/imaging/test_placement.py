"""Results made on a region of an image, moved back into the image's pixels."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import pyvips
from hypothesis import given
from hypothesis import strategies as st

from pixelmill.errors import ImageTooLarge, InvalidParameter
from pixelmill.imaging import ops, pipeline
from pixelmill.imaging.placement import Box, check_box, crop, place_artifact


def test_an_object_table_moves_by_the_regions_offset_and_keeps_its_types() -> None:
    table = pa.table(
        {
            "label": pa.array([1, 2], pa.int64()),
            "centroid_row": pa.array([5.5, 7.0]),
            "centroid_col": pa.array([2.0, 9.25]),
            "bbox_min_row": pa.array([3, 6], pa.int64()),
            "bbox_min_col": pa.array([1, 8], pa.int64()),
            "bbox_max_row": pa.array([8, 9], pa.int64()),
            "bbox_max_col": pa.array([4, 11], pa.int64()),
            "area_px": pa.array([12, 5], pa.int64()),
        }
    )
    placed = place_artifact("objects", table, Box(left=100, top=2000, width=50, height=50))
    assert placed.column("centroid_row").to_pylist() == [2005.5, 2007.0]
    assert placed.column("centroid_col").to_pylist() == [102.0, 109.25]
    assert placed.column("bbox_min_row").to_pylist() == [2003, 2006]
    assert placed.column("bbox_max_col").to_pylist() == [104, 111]
    assert placed.column("area_px").to_pylist() == [12, 5]  # sizes do not move
    assert placed.schema == table.schema


def test_a_summary_says_which_region_it_describes_and_other_artifacts_pass() -> None:
    box = Box(10, 20, 30, 40)
    summary = place_artifact("summary", {"object_count": 3}, box)
    assert summary == {
        "object_count": 3,
        "region": {"left": 10, "top": 20, "width": 30, "height": 40},
    }
    assert place_artifact("segmentation", {"threshold": 0.4}, box) == {"threshold": 0.4}
    assert place_artifact("labels", b"II*\x00", box) == b"II*\x00"


@given(
    left=st.integers(0, 200),
    top=st.integers(0, 200),
    width=st.integers(1, 200),
    height=st.integers(1, 200),
)
def test_a_region_is_accepted_exactly_when_it_fits_and_is_small_enough(
    left: int, top: int, width: int, height: int
) -> None:
    box = Box(left, top, width, height)
    fits = left + width <= 300 and top + height <= 250 and width * height <= 20_000
    if fits:
        check_box(box, (300, 250), max_pixels=20_000)
    else:
        with pytest.raises(InvalidParameter) as caught:
            check_box(box, (300, 250), max_pixels=20_000)
        assert caught.value.extra["field"] == "region"
        assert caught.value.status == 422


def test_a_pipeline_on_a_region_sees_only_the_region() -> None:
    pixels = np.arange(60 * 80, dtype=np.uint16).reshape(60, 80)
    pixels = (pixels % 251).astype(np.uint8)
    body = pyvips.Image.new_from_array(pixels).write_to_buffer(".png")
    steps = ops.parse_pipeline([{"op": "flip", "direction": "horizontal"}])
    out = pipeline.run(body, steps, region=Box(10, 5, 30, 20)).numpy()
    assert out.shape[:2] == (20, 30)
    assert np.array_equal(np.squeeze(out), pixels[5:25, 10:40][:, ::-1])


def test_a_region_outside_the_file_is_refused_when_read() -> None:
    image = pyvips.Image.black(50, 40)
    with pytest.raises(ImageTooLarge):
        crop(image, Box(30, 0, 30, 10))
