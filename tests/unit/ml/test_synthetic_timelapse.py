"""Synthetic time-lapses: reproducible, nuclei keep their id and move, blinks dim a
nucleus without taking it out of the truth."""

from __future__ import annotations

import numpy as np

from pixelmill.imaging.tracking import frame_objects
from pixelmill.ml.synthetic_timelapse import (
    TimelapseConfig,
    nuclei_timelapse,
    timelapse_masks,
)

SMALL = TimelapseConfig(size=(96, 96), frames=6, count=(6, 8))


def test_the_same_seed_and_index_give_the_same_sequence():
    a, la = nuclei_timelapse(3, 1, SMALL)
    b, lb = nuclei_timelapse(3, 1, SMALL)
    c, _ = nuclei_timelapse(3, 2, SMALL)
    assert np.array_equal(a, b) and np.array_equal(la, lb)
    assert not np.array_equal(a, c)


def test_each_nucleus_keeps_its_id_and_moves_at_most_its_top_speed():
    cfg = TimelapseConfig(size=(128, 128), frames=6, count=(8, 8), speed=(2.0, 3.0))
    _, labels = nuclei_timelapse(0, 0, cfg)

    objs = frame_objects(labels)
    steps = []
    for n in np.unique(objs.label):
        mine = objs.label == n
        frames = objs.frame[mine]
        whole = objs.area[mine] >= 0.9 * objs.area[mine].max()  # not cut by the border
        if whole.all() and len(frames) == 6:
            steps += list(np.hypot(np.diff(objs.row[mine]), np.diff(objs.col[mine])))
    assert steps, "no nucleus stayed in the field"
    assert max(steps) <= 3.0 + 1.5  # top speed, plus rounding to whole pixels
    assert np.median(steps) >= 1.0  # they do move


def test_a_blinking_nucleus_stays_in_the_truth_but_goes_dim():
    cfg = TimelapseConfig(
        size=(96, 96),
        frames=4,
        count=(1, 1),
        speed=(0.0, 0.0),
        blink=0.5,
        flicker=0.0,
        cytoplasm=0.0,
        photons=(5000.0, 5000.0),
        over_exposed=0.0,
    )
    frames, labels = nuclei_timelapse(1, 0, cfg)

    inside = labels > 0
    assert all(inside[t].sum() == inside[0].sum() > 0 for t in range(4))
    brightness = [float(frames[t][inside[t]].mean()) for t in range(4)]
    assert min(brightness) < 0.6 * max(brightness)


def test_training_masks_keep_a_line_between_touching_nuclei():
    labels = np.zeros((1, 8, 8), np.int32)
    labels[0, :, :4], labels[0, :, 4:] = 1, 2
    masks = timelapse_masks(labels)
    assert masks.dtype == np.uint8 and set(np.unique(masks)) == {0, 1}
    assert (masks[0, :, 4] == 0).all()


def test_a_dividing_nucleus_ends_and_two_smaller_daughters_start_beside_it():
    from pixelmill.ml.synthetic_timelapse import nuclei_lineage

    cfg = TimelapseConfig(size=(128, 128), frames=8, count=(6, 6), divisions=0.15)
    _, labels, lineage = nuclei_lineage(0, 0, cfg)

    assert lineage, "no division drawn"
    objs = frame_objects(labels)
    for mother in set(lineage.values()):
        daughters = [d for d, m in lineage.items() if m == mother]
        assert len(daughters) == 2
        last = objs.frame[objs.label == mother].max()
        for d in daughters:
            assert objs.frame[objs.label == d].min() == last + 1
        born = [objs.area[(objs.label == d) & (objs.frame == last + 1)].sum() for d in daughters]
        before = objs.area[(objs.label == mother) & (objs.frame == last)].sum()
        if before and all(born):  # not cut by the border
            assert 0.6 <= sum(born) / before <= 1.6
