"""Tiled segmentation: seams must not show — tiled results equal whole-image ones."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.analysis.measure import measure_objects
from pixelmill.imaging.analysis.segment import segment_nuclei
from pixelmill.imaging.analysis.tiles import Tile, process_tiles, same_objects, stitch, tile_grid
from tests.unit.imaging.analysis import synthetic as syn


@settings(max_examples=60, deadline=None)
@given(
    height=st.integers(1, 300),
    width=st.integers(1, 300),
    tile=st.integers(16, 128),
    overlap=st.integers(0, 40),
)
def test_cores_partition_the_image_and_windows_hold_them(
    height: int, width: int, tile: int, overlap: int
) -> None:
    grid = tile_grid(height, width, tile=tile, overlap=overlap)
    cover = np.zeros((height, width), np.int32)
    for t in grid:
        r0, c0, r1, c1 = t.core
        cover[r0:r1, c0:c1] += 1
        w0, w1, w2, w3 = t.window
        assert 0 <= w0 <= r0 < r1 <= w2 <= height and 0 <= w1 <= c0 < c1 <= w3 <= width
        assert r0 - w0 == min(overlap, r0) and w3 - c1 == min(overlap, width - c1)
    assert (cover == 1).all()


def crowded(shape: tuple[int, int] = (420, 520), seed: int = 3) -> np.ndarray:
    """Randomly placed disks, many touching, some across every tile seam."""
    from skimage import draw

    rng = np.random.default_rng(seed)
    image = np.zeros(shape, np.float32)
    for _ in range(260):
        rr, cc = draw.disk(
            (rng.uniform(0, shape[0]), rng.uniform(0, shape[1])), rng.uniform(5, 10), shape=shape
        )
        image[rr, cc] = rng.uniform(0.5, 0.9)
    return syn.as_uint8(syn.degrade(image + 0.1, blur=1.0, noise=0.03, seed=seed))


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_tiled_segmentation_equals_the_whole_image(workers: int) -> None:
    # given a crowded image, and its whole-image segmentation
    image = crowded()
    whole = segment_nuclei(image, min_area=30, max_area=600)

    def segment(pixels: np.ndarray) -> np.ndarray:
        return segment_nuclei(
            pixels,
            min_area=30,
            max_area=600,
            fixed_threshold=whole.threshold,
            min_distance=whole.min_distance,
        ).labels

    def measure(labels: np.ndarray, pixels: np.ndarray, t: Tile) -> tuple[pa.Table, None]:
        return measure_objects(labels, pixels, offset=t.window[:2]), None

    # when it is segmented in 96-px tiles (many seams) with a 64-px overlap
    results = list(
        process_tiles(
            lambda r0, c0, r1, c1: image[r0:r1, c0:c1],
            image.shape,
            segment=segment,
            measure=measure,
            tile=96,
            overlap=64,
            halo=14,
            workers=workers,
        )
    )
    tiled = stitch(results, image.shape)
    # then the same objects come out, with unique labels, each measured once
    assert same_objects(tiled, whole.labels)
    objects = pa.concat_tables([r.objects for r in results if r.objects is not None])
    reference = measure_objects(whole.labels, image)
    assert objects.num_rows == reference.num_rows == whole.count
    assert len(set(objects.column("label").to_pylist())) == objects.num_rows
    np.testing.assert_allclose(
        np.sort(objects.column("area_px").to_numpy()),
        np.sort(reference.column("area_px").to_numpy()),
    )
    np.testing.assert_allclose(
        np.sort(objects.column("centroid_row").to_numpy()),
        np.sort(reference.column("centroid_row").to_numpy()),
    )


def test_an_image_smaller_than_a_tile_is_one_tile() -> None:
    image = crowded((60, 80), seed=4)
    whole = segment_nuclei(image, min_area=20)
    results = list(
        process_tiles(
            lambda r0, c0, r1, c1: image[r0:r1, c0:c1],
            image.shape,
            segment=lambda px: (
                segment_nuclei(
                    px,
                    min_area=20,
                    fixed_threshold=whole.threshold,
                    min_distance=whole.min_distance,
                ).labels
            ),
            tile=2048,
            overlap=64,
        )
    )
    assert len(results) == 1
    assert same_objects(stitch(results, image.shape), whole.labels)


def test_skipped_tiles_are_empty_and_not_read() -> None:
    image = crowded((200, 200))
    read: list[tuple[int, int, int, int]] = []

    def reader(r0: int, c0: int, r1: int, c1: int) -> np.ndarray:
        read.append((r0, c0, r1, c1))
        return image[r0:r1, c0:c1]

    results = list(
        process_tiles(
            reader,
            image.shape,
            segment=lambda px: segment_nuclei(px, fixed_threshold=0.4, min_distance=4).labels,
            tile=100,
            overlap=40,
            skip=lambda t: t.col == 1,
        )
    )
    assert len(read) == 2
    assert all(not r.labels.any() for r in results if r.tile.col == 1)


def test_bad_tiling_parameters() -> None:
    with pytest.raises(InvalidParameter):
        tile_grid(0, 10, tile=64, overlap=0)
    with pytest.raises(InvalidParameter):
        list(
            process_tiles(
                lambda *a: np.zeros((1, 1)), (10, 10), segment=lambda p: p, overlap=5, halo=5
            )
        )
