"""The distance head: its training targets and the seeded watershed that turns its output
into objects; one-channel models keep the classical splitter."""

from __future__ import annotations

import numpy as np

from pixelmill.ml.instance_head import distance_target, seeded_instances, targets
from pixelmill.ml.scores import instance_f1
from pixelmill.ml.spec import InputSpec


def _two_touching_discs(radius: int = 12) -> np.ndarray:
    """Two discs whose centres are 1.6 radii apart: they overlap in a wide neck."""
    yy, xx = np.mgrid[0:64, 0:96]
    labels = np.zeros((64, 96), np.int32)
    labels[(yy - 32) ** 2 + (xx - 30) ** 2 <= radius**2] = 1
    second = (yy - 32) ** 2 + (xx - 30 - int(1.6 * radius)) ** 2 <= radius**2
    labels[second & (labels == 0)] = 2
    return labels


def test_the_distance_target_peaks_in_each_object_and_falls_where_they_touch() -> None:
    labels = _two_touching_discs()
    dist = distance_target(labels)
    assert dist.dtype == np.float32 and dist[labels == 0].max() == 0
    for k in (1, 2):
        assert dist[labels == k].max() == 1.0
    # along the line between the contacts, both objects are at their outline
    contact = (labels == 1) & np.roll(labels == 2, -1, axis=1)
    assert dist[contact].max() < 0.3
    stacked = targets(labels)
    assert stacked.shape == (2, 64, 96)
    assert np.array_equal(stacked[0] > 0, labels > 0)


def test_seeded_watershed_splits_two_touching_discs_into_two_objects() -> None:
    labels = _two_touching_discs()
    found = seeded_instances(labels > 0, distance_target(labels))
    assert found.max() == 2
    assert instance_f1(found, labels, iou=0.75)["f1"] == 1.0


def test_foreground_without_a_seed_stays_an_object() -> None:
    mask = np.zeros((20, 20), bool)
    mask[2:4, 2:4] = True  # no pixel above the seed threshold
    assert seeded_instances(mask, np.zeros((20, 20), np.float32)).max() == 1


def test_the_spec_picks_the_post_processing_by_head() -> None:
    labels = _two_touching_discs(radius=10)
    mask, dist = labels > 0, distance_target(labels)
    # a one-channel model ignores a distance map, as before (classical splitter)
    old = InputSpec()
    assert np.array_equal(old.objects(mask, dist), old.objects(mask))
    new = InputSpec(head="distance")
    assert new.objects(mask, dist).max() == 2
    # no distance map (an old caller): the classical splitter still serves
    assert np.array_equal(new.objects(mask), old.objects(mask))


def test_a_capped_distance_target_counts_pixels_to_the_border() -> None:
    labels = np.zeros((20, 20), np.int32)
    labels[2:18, 2:18] = 1
    row = distance_target(labels, cap=4.0)[10]
    assert row[2:7].tolist() == [0.25, 0.5, 0.75, 1.0, 1.0]  # 1 px in: 1/4; capped at 1
