"""The synthetic nuclei generator is reproducible and produces usable masks."""

from __future__ import annotations

import numpy as np

from pixelmill.ml import synthetic


def test_same_seed_same_sample_different_seed_different_sample() -> None:
    cfg = synthetic.NucleiConfig(size=(96, 80))
    a, ma = synthetic.nuclei_sample(5, 1, cfg)
    b, mb = synthetic.nuclei_sample(5, 1, cfg)
    c, _ = synthetic.nuclei_sample(6, 1, cfg)
    assert np.array_equal(a, b) and np.array_equal(ma, mb)
    assert not np.array_equal(a, c)
    assert a.shape == ma.shape == (96, 80) and ma.dtype == np.uint8


def test_nuclei_are_brighter_than_background_and_masks_binary() -> None:
    for i in range(6):
        image, mask = synthetic.nuclei_sample(0, i)
        assert set(np.unique(mask)) <= {0, 255}
        assert 0.01 < (mask > 0).mean() < 0.9
        assert image[mask > 0].mean() > image[mask == 0].mean()


def test_gap_masks_separate_touching_nuclei_and_labelling_gives_them_back() -> None:
    from scipy import ndimage

    from pixelmill.ml.scores import instance_f1, instances, segmentation_scores

    cfg = synthetic.NucleiConfig(size=(192, 192), coverage=(0.5, 0.55), clustering=(0.6, 0.6))
    _, truth = synthetic.nuclei_labelled(7, 0, cfg)
    _, plain = synthetic.nuclei_sample(7, 0, cfg)
    _, gapped = synthetic.nuclei_sample(7, 0, cfg, gaps=True)
    # only contact pixels are dropped: the gapped mask is the plain one minus a thin line
    removed = (plain > 0) & (gapped == 0)
    assert not ((gapped > 0) & (plain == 0)).any()
    assert 0 < removed.sum() < 0.1 * (plain > 0).sum()
    # touching nuclei merge in the plain mask but are apart in the gapped one
    assert ndimage.label(gapped > 0)[1] > ndimage.label(plain > 0)[1]
    # labelling the gapped mask and growing back by one pixel recovers the objects and
    # the foreground, far better than labelling the plain (merged) mask
    back = instances(gapped > 0, grow=1)
    assert segmentation_scores(back > 0, truth > 0)["dice"] > 0.99
    assert instance_f1(back, truth)["f1"] > 0.8  # hidden, partly covered nuclei miss
    assert instance_f1(back, truth)["f1"] > instance_f1(instances(plain > 0), truth)["f1"] + 0.05


def test_growing_fills_only_the_line_between_objects() -> None:
    from pixelmill.ml.scores import instances

    mask = np.zeros((20, 30), bool)
    mask[5:15, 2:10] = True  # a lone square: its outline must not grow
    mask[5:15, 14:20] = True  # two blocks one pixel apart: the line is given back
    mask[5:15, 21:27] = True
    labels = instances(mask, grow=1)
    assert labels.max() == 3
    # the 10-pixel line, plus at most its two diagonal end pixels; the square unchanged
    assert mask.sum() + 10 <= (labels > 0).sum() <= mask.sum() + 12
    assert (labels[5:15, 20] > 0).all()
    assert np.array_equal(labels[:, :12] > 0, mask[:, :12])


def test_fragments_far_below_the_typical_object_size_are_dropped() -> None:
    from pixelmill.ml.scores import instances

    mask = np.zeros((40, 60), bool)
    mask[2:12, 2:12] = mask[2:12, 20:30] = mask[20:30, 2:12] = True  # three 100-px nuclei
    mask[30:34, 40:44] = True  # a 16-px fragment
    assert instances(mask).max() == 4
    kept = instances(mask, min_fraction=0.25)
    assert kept.max() == 3 and not kept[30:34, 40:44].any()


def test_a_ring_with_a_dark_nucleolus_is_one_object_when_holes_are_filled() -> None:
    from pixelmill.ml.scores import instances

    yy, xx = np.mgrid[0:60, 0:90]
    # two 14-px nuclei; the left one has an off-centre dark nucleolus the model left out
    left = np.hypot(yy - 30, xx - 25) <= 14
    right = np.hypot(yy - 30, xx - 64) <= 14
    mask = (left & (np.hypot(yy - 30, xx - 30) > 8)) | right
    split = instances(mask)
    assert split.max() > 2  # the ring is cut into pieces
    filled = instances(mask, fill=True)
    assert filled.max() == 2
    assert (filled[left] > 0).all()


def test_filling_holes_keeps_the_one_pixel_lines_between_touching_nuclei() -> None:
    from pixelmill.imaging.analysis.morphology import fill_holes
    from pixelmill.ml.scores import fill_object_holes, instances

    # a nucleus lying on a bigger one: the gap mask rings it with a one-pixel line that
    # the bigger nucleus encloses (a hole, as far as a plain hole filler can tell)
    yy, xx = np.mgrid[0:60, 0:60]
    labels = np.zeros((60, 60), np.int32)
    labels[np.hypot(yy - 30, xx - 30) <= 20] = 1
    labels[np.hypot(yy - 30, xx - 33) <= 9] = 2
    mask = synthetic.separate_touching(labels)
    assert (fill_holes(mask) & ~mask).any()  # a plain filler closes the line ...
    assert instances(fill_holes(mask), grow=1).max() == 1  # ... and merges the two
    # the line is too thin to be a nucleolus' hole: it stays, and both nuclei come back
    assert not (fill_object_holes(mask) & ~mask).any()
    assert instances(mask, grow=1, fill=True).max() == 2


def test_widefield_conditions_add_bright_cell_bodies_and_saturation() -> None:
    """The harder preset: more images with cytoplasm brighter than the background,
    more over-exposed images, the default datasets unchanged."""
    from dataclasses import replace

    from skimage.measure import regionprops

    default, wide = synthetic.NucleiConfig(), synthetic.NucleiConfig.widefield()
    assert (wide.over_exposed, wide.cytoplasm) > (default.over_exposed, default.cytoplasm)

    def saturated(cfg: synthetic.NucleiConfig) -> int:
        count = 0
        for i in range(40):  # 128² images: the exposure is drawn per image, not per pixel
            image, _ = synthetic.nuclei_sample(3, i, replace(cfg, size=(128, 128)))
            count += bool((image == np.iinfo(image.dtype).max).mean() > 0.002)
        return count

    assert saturated(wide) > 2 * saturated(default)  # 15 against 5
    # a kidney-shaped nucleus has a bite out of its outline: less convex than an ellipse

    def solidity(cfg: synthetic.NucleiConfig) -> float:
        sparse = replace(cfg, coverage=(0.03, 0.04), clustering=(0.0, 0.0))
        values = []
        for i in range(30):
            _, labels = synthetic.nuclei_labelled(5, i, sparse)
            values += [p.solidity for p in regionprops(labels) if p.area > 60]
        return float(np.percentile(values, 5))

    assert solidity(wide) < solidity(default) - 0.03


def test_crowded_nuclei_touch_without_hiding_each_other() -> None:
    """The crowded preset packs nuclei: more of them touch than in the widefield preset,
    and every labelled nucleus is one piece (none lies partly under another, so each
    outline is where the image shows it)."""
    import cv2

    def contacts(cfg: synthetic.NucleiConfig) -> tuple[int, bool]:
        touching, whole = 0, True
        for i in range(8):
            _, lab = synthetic.nuclei_labelled(4, i, cfg)
            touching += int(
                ((lab[:, 1:] != lab[:, :-1]) & (lab[:, 1:] > 0) & (lab[:, :-1] > 0)).sum()
            )
            for value in np.unique(lab[lab > 0]):
                pieces = cv2.connectedComponents((lab == value).astype(np.uint8), connectivity=8)[0]
                whole &= pieces == 2
        return touching, whole

    crowded, wide = (
        contacts(synthetic.NucleiConfig.crowded()),
        contacts(synthetic.NucleiConfig.widefield()),
    )
    assert crowded[0] > wide[0] and crowded[1]
    assert not wide[1]  # the widefield preset lets later nuclei cut earlier ones in pieces
