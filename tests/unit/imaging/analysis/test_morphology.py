"""Splitting touching objects costs what the pixels cost, whatever the marker distance:
a mask that is one object over the whole image (what a model may predict for noise) has
the image's size as its typical radius, and a dilation with a disc that large took
minutes. Beyond the bound, markers are compared on blocks and split objects as before."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest

from pixelmill.imaging.analysis import morphology
from pixelmill.imaging.analysis.morphology import MAX_EXACT_RADIUS, split_touching, typical_radius


@pytest.fixture
def kernel_sides(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The largest side of every structuring element cv2.dilate is called with."""
    sides: list[int] = []
    dilate = cv2.dilate

    def recording(src: Any, kernel: Any, *args: Any, **kwargs: Any) -> Any:
        sides.append(max(np.shape(kernel)))
        return dilate(src, kernel, *args, **kwargs)

    monkeypatch.setattr(cv2, "dilate", recording)
    return sides


def pinholes(side: int, seed: int = 0) -> np.ndarray:
    """One object over the whole image, with 1% one-pixel holes."""
    return np.asarray(np.random.default_rng(seed).random((side, side)) > 0.01)


def disc_pairs(radius: int) -> np.ndarray:
    """Two pairs of overlapping discs and a small disc alone: five objects, three
    components."""
    mask = np.zeros((9 * radius, 9 * radius), np.uint8)
    r = radius
    for row, col in [(2 * r, 2 * r), (2 * r, 2 * r + 17 * r // 10), (6 * r, 3 * r)]:
        cv2.circle(mask, (col, row), r, 255, -1)
    cv2.circle(mask, (3 * r + r // 2, 6 * r + 16 * r // 10), r, 255, -1)
    cv2.circle(mask, (7 * r, 6 * r - r // 2), r // 2, 255, -1)
    return mask > 0


def test_one_object_over_the_image_never_dilates_beyond_the_bound(
    kernel_sides: list[int],
) -> None:
    # given a mask that is one object over the whole image: a typical radius of 225 px
    mask = pinholes(400)
    min_distance = typical_radius(mask) * 0.6
    assert min_distance > 4 * MAX_EXACT_RADIUS
    # when it is split into objects
    labels = split_touching(mask, min_distance=min_distance)
    # then no dilation used a disc wider than the bound (the old one was 271 px across)
    assert kernel_sides and max(kernel_sides) <= 2 * MAX_EXACT_RADIUS + 1
    # and every pixel of the mask belongs to one of a few objects
    assert np.array_equal(labels > 0, mask)
    assert 1 <= len(np.unique(labels[mask])) <= 10


@pytest.mark.parametrize("radius", [45, 70])
def test_big_touching_discs_split_as_the_exact_comparison_splits_them(
    radius: int, kernel_sides: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given discs big enough for markers to be compared beyond the bound
    mask = disc_pairs(radius)
    min_distance = typical_radius(mask) * 0.6
    assert min_distance > MAX_EXACT_RADIUS
    # when they are split with the bound, and pixel by pixel without it
    bounded = split_touching(mask, min_distance=min_distance)
    assert max(kernel_sides) <= 2 * MAX_EXACT_RADIUS + 1
    monkeypatch.setattr(morphology, "MAX_EXACT_RADIUS", 10**6)
    exact = split_touching(mask, min_distance=min_distance)
    # then both find the five discs, with the same pixels
    assert len(np.unique(bounded[mask])) == len(np.unique(exact[mask])) == 5
    pairs = np.unique(np.stack([bounded.ravel(), exact.ravel()]), axis=1)
    assert pairs.shape[1] == 6  # one exact object for each bounded one, and background
