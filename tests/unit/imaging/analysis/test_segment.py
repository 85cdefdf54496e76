"""Classical segmentation against synthetic scenes whose truth is known exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.analysis.measure import measure_objects
from pixelmill.imaging.analysis.preprocess import subtract_background
from pixelmill.imaging.analysis.segment import pick_channel, segment_nuclei
from tests.unit.imaging.analysis import synthetic as syn

CONVERT = {
    "uint8": syn.as_uint8,
    "uint16": syn.as_uint16,
    "float32": lambda a: a.astype(np.float32),
}


@pytest.mark.parametrize("dtype", sorted(CONVERT))
@pytest.mark.parametrize("ellipses", [False, True])
def test_noisy_blurred_objects_are_found_with_their_areas(dtype: str, ellipses: bool) -> None:
    # given disks or ellipses with blur and noise, in 8-bit, 16-bit or float
    scene = syn.blobs((320, 320), ellipses=ellipses, seed=3)
    image = CONVERT[dtype](syn.degrade(scene.image, blur=1.0, noise=0.03))
    # when nuclei are segmented
    result = segment_nuclei(image, min_area=30)
    # then the count is within 5%, every object's area within 5%, and Dice >= 0.9
    assert abs(result.count - scene.count) <= 0.05 * scene.count
    for truth_area, found_area in syn.matched_areas(result.labels, scene.truth):
        assert abs(found_area - truth_area) <= 0.05 * truth_area
    assert syn.dice(result.labels, scene.truth) >= 0.9
    assert result.labels.dtype == np.uint16


def test_touching_pairs_are_split() -> None:
    # given pairs of overlapping disks
    scene = syn.touching_pairs()
    image = syn.as_uint8(syn.degrade(scene.image, blur=0.8, noise=0.02))
    # when segmented with watershed splitting (and without)
    split = segment_nuclei(image, min_area=30)
    merged = segment_nuclei(image, min_area=30, split=False)
    # then every pair becomes two objects of about the right size, and without splitting one
    assert split.count == scene.count
    assert merged.count == scene.count // 2
    for truth_area, found_area in syn.matched_areas(split.labels, scene.truth):
        assert abs(found_area - truth_area) <= 0.1 * truth_area
    assert syn.dice(split.labels, scene.truth) >= 0.9


def test_uneven_background_is_handled_after_background_subtraction() -> None:
    # given objects on a strong left-to-right illumination ramp
    scene = syn.blobs((256, 320), seed=5)
    image = syn.as_uint16(syn.degrade(scene.image, gradient=0.5, noise=0.02))
    # when the background is rolled away before segmenting
    flat = subtract_background(image, radius=30)
    result = segment_nuclei(flat, min_area=30)
    # then the objects are found as on an even background
    assert abs(result.count - scene.count) <= 0.05 * scene.count
    assert syn.dice(result.labels, scene.truth) >= 0.9


def test_local_threshold_copes_with_a_ramp() -> None:
    scene = syn.blobs((256, 320), seed=6)
    image = syn.degrade(scene.image, gradient=0.6, noise=0.01)
    result = segment_nuclei(image, method="local", block_size=61, offset=0.05, min_area=30)
    assert abs(result.count - scene.count) <= 0.05 * scene.count
    assert syn.dice(result.labels, scene.truth) >= 0.9


def test_dark_objects_on_light_background() -> None:
    scene = syn.blobs((200, 200), seed=7, foreground=0.2, background=0.9)
    image = syn.as_uint8(syn.degrade(scene.image))
    result = segment_nuclei(image, foreground="dark", min_area=30)
    assert result.count == scene.count


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((64, 64), np.uint8),
        np.full((64, 64), 65535, np.uint16),
        syn.as_uint8(np.clip(0.3 + np.random.default_rng(0).normal(0, 0.05, (128, 128)), 0, 1)),
        np.zeros((1, 1), np.float32),
    ],
    ids=["black", "white16", "noise-only", "one-pixel"],
)
def test_empty_and_all_background_images_give_no_objects(image: np.ndarray) -> None:
    result = segment_nuclei(image)
    assert result.count == 0
    assert result.labels.shape == image.shape[:2]
    assert measure_objects(result.labels, image).num_rows == 0


def test_size_limits_and_border_exclusion() -> None:
    scene = syn.blobs((200, 200), seed=8, radius=(6, 14))
    image = syn.as_uint8(syn.degrade(scene.image))
    areas = np.sort(scene.areas())
    cut = int(areas[len(areas) // 2])
    big_only = segment_nuclei(image, min_area=cut)
    small_only = segment_nuclei(image, min_area=10, max_area=cut)
    assert big_only.count + small_only.count == pytest.approx(scene.count, abs=2)
    edge = segment_nuclei(np.pad(image, ((0, 0), (0, 0)))[5:, 5:], exclude_border=True)
    assert edge.count <= scene.count


def test_wrong_channel_count_is_a_clear_error() -> None:
    rgb = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(InvalidParameter, match="1 channel"):
        segment_nuclei(rgb)
    with pytest.raises(InvalidParameter, match="channel 5 does not exist"):
        pick_channel(rgb, 5)
    with pytest.raises(InvalidParameter, match="3 channel"):
        pick_channel(np.zeros((8, 8), np.uint8), "hematoxylin")


TRANSFORMS = {
    "rot90": lambda a: np.rot90(a, 1),
    "rot180": lambda a: np.rot90(a, 2),
    "rot270": lambda a: np.rot90(a, 3),
    "fliplr": np.fliplr,
    "flipud": np.flipud,
}


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), name=st.sampled_from(sorted(TRANSFORMS)))
# scenes whose float32 smoothing differed in the last bit when turned, moving Otsu's
# threshold by one bin (about 1 % of draws: a flaky test, and a real difference)
@example(seed=3584, name="rot90")
@example(seed=9164, name="fliplr")
def test_measurements_are_invariant_under_rotation_and_flips(seed: int, name: str) -> None:
    # given a noisy scene and the same scene rotated or flipped
    scene = syn.blobs((160, 160), ellipses=True, seed=seed)
    image = syn.as_uint8(syn.degrade(scene.image, seed=seed))
    turned = np.ascontiguousarray(TRANSFORMS[name](image))
    # when both are segmented and measured
    a = measure_objects(segment_nuclei(image, min_area=30).labels, image)
    b = measure_objects(segment_nuclei(turned, min_area=30).labels, turned)
    # then the same objects come out with the same size and shape
    assert a.num_rows == b.num_rows
    for column in ("area_px", "perimeter_px", "eccentricity", "solidity", "major_axis_px"):
        np.testing.assert_allclose(
            np.sort(a.column(column).to_numpy()), np.sort(b.column(column).to_numpy()), rtol=1e-6
        )
    np.testing.assert_allclose(
        np.sort(a.column("integrated_intensity").to_numpy()),
        np.sort(b.column("integrated_intensity").to_numpy()),
    )
