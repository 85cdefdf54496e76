"""The time-lapse dataset layout: multi-page TIFF frames with mask stacks, validated
completely (every problem named) and sized from the TIFF headers before decoding."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile

from pixelmill.errors import ImageTooLarge, InvalidDataset
from pixelmill.ml import datasets
from pixelmill.ml.dataset_limits import DatasetLimits
from pixelmill.ml.sequence_dataset import build_archive
from pixelmill.ml.synthetic_timelapse import TimelapseConfig, nuclei_timelapse
from tests.ml_helpers import zip_of

CFG = TimelapseConfig(size=(24, 32), frames=4)


def _tiff(stack: np.ndarray) -> bytes:
    sink = io.BytesIO()
    tifffile.imwrite(sink, stack, photometric="minisblack")
    return sink.getvalue()


def test_label_stacks_train_as_foreground_and_are_kept_as_labels() -> None:
    frames, labels = nuclei_timelapse(0, 0, CFG)
    binary = (labels > 0).astype(np.uint8)
    data = build_archive([("a", frames, labels.astype(np.uint16)), ("b", frames, binary)])
    ds = datasets.parse(data, task="timelapse", val_fraction=0.5)
    a, b = ds.items
    assert a.image.shape == (4, 24, 32) and a.mask is not None and a.mask.shape == (4, 24, 32)
    assert a.labels is not None and np.array_equal(a.labels, labels)
    # touching nuclei get a line between them: the mask is at most the labels' foreground
    assert set(np.unique(a.mask)) <= {0, 255} and (a.mask > 0).sum() <= (labels > 0).sum()
    assert b.labels is None and np.array_equal(b.mask, binary * 255)
    summary = ds.summary()
    assert summary["task"] == "timelapse" and summary["frames"] == [4]
    assert summary["shapes"] == [[24, 32]] and summary["channels"] == [1]
    assert ds.split == {"train": ["b"], "val": ["a"]} or ds.split == {"train": ["a"], "val": ["b"]}


def test_every_problem_is_named_together() -> None:
    frames, labels = nuclei_timelapse(0, 0, CFG)
    files = {
        "images/a.tif": _tiff(frames),
        "masks/a.tif": _tiff(labels[:, :20].astype(np.uint16)),  # another frame size
        "images/b.tif": b"not a tiff at all",
        "masks/b.tif": _tiff(labels.astype(np.uint16)),
        "masks/c.tif": _tiff(labels.astype(np.uint16)),  # no image
        "notes.txt": b"hello",
    }
    with pytest.raises(InvalidDataset) as err:
        datasets.parse(zip_of(files), task="timelapse")
    problems = {(f["file"], f["problem"]) for f in err.value.extra["files"]}
    text = " | ".join(f"{f}: {p}" for f, p in sorted(problems))
    assert "masks/a.tif: frames are 32x20 but the image's are 32x24" in text
    assert "images/b.tif: is not a TIFF" in text
    assert "masks/c.tif: has no matching image" in text
    assert "notes.txt" in text


def test_sizes_come_from_the_headers_before_decoding() -> None:
    frames, labels = nuclei_timelapse(0, 0, CFG)
    data = build_archive([("a", frames, labels.astype(np.uint16))])
    with pytest.raises(ImageTooLarge, match="frames of 768 pixels"):
        datasets.parse(data, task="timelapse", limits=DatasetLimits(max_image_pixels=700))
    with pytest.raises(ImageTooLarge, match="in total"):
        datasets.parse(data, task="timelapse", limits=DatasetLimits(max_total_pixels=3000))


def test_the_same_sequences_give_the_same_archive() -> None:
    frames, labels = nuclei_timelapse(0, 1, CFG)
    one = build_archive([("a", frames, labels.astype(np.uint16))])
    assert one == build_archive([("a", frames, labels.astype(np.uint16))])
