"""Dataset limits are checked from the zip and image headers, before decoding."""

from __future__ import annotations

import numpy as np
import pytest

from pixelmill.errors import ImageTooLarge
from pixelmill.ml import datasets
from pixelmill.ml.dataset_limits import DatasetLimits
from tests.ml_helpers import png, zip_of

IMG = np.full((16, 16), 100, np.uint8)
MASK = np.zeros((16, 16), np.uint8)


def refused(data: bytes, limits: DatasetLimits) -> ImageTooLarge:
    with pytest.raises(ImageTooLarge) as info:
        datasets.parse(data, limits=limits)
    assert info.value.status == 413
    return info.value


def test_a_zip_directory_too_large_for_its_file_limit_is_refused_before_it_is_parsed() -> None:
    # three entries with 2000-character names: a directory over 2 x 1 KiB
    data = zip_of({f"images/{c * 2000}.png": b"" for c in "abc"})
    err = refused(data, DatasetLimits(max_files=2))
    assert "zip directory" in err.detail


def test_the_pixels_of_all_images_together_are_limited_from_their_headers() -> None:
    data = zip_of(
        {
            f"{f}/{n}.png": png(IMG if f == "images" else MASK)
            for f in ("images", "masks")
            for n in "abc"
        }
    )
    err = refused(data, DatasetLimits(max_total_pixels=5 * 16 * 16))
    assert "pixels in total" in err.detail
    assert len(datasets.parse(data, limits=DatasetLimits(max_total_pixels=6 * 16 * 16)).items) == 3


def test_the_uncompressed_bytes_of_all_members_together_are_limited() -> None:
    data = zip_of({"images/a.png": png(IMG), "masks/a.png": png(MASK)})
    total = len(png(IMG)) + len(png(MASK))
    err = refused(data, DatasetLimits(max_total_bytes=total - 1))
    assert f"{total} bytes uncompressed" in err.detail
    assert err.extra["max_bytes"] == total - 1
