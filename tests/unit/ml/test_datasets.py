"""Dataset validation names every offending file; splits are reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from pixelmill.errors import InvalidDataset
from pixelmill.ml import datasets
from tests.ml_helpers import nuclei_zip, png, zip_of

IMG = np.full((16, 16), 100, np.uint8)
MASK = np.zeros((16, 16), np.uint8)
MASK[4:10, 4:10] = 255


def problems(data: bytes, **kw: object) -> dict[str, str]:
    with pytest.raises(InvalidDataset) as info:
        datasets.parse(data, **kw)  # type: ignore[arg-type]
    assert info.value.status == 422
    return {e["file"]: e["problem"] for e in info.value.extra["files"]}


def test_a_good_segmentation_zip_parses_and_splits() -> None:
    ds = datasets.parse(nuclei_zip(10), val_fraction=0.2, seed=3)
    assert ds.task == "segmentation" and len(ds.items) == 10
    assert len(ds.split["val"]) == 2 and set(ds.split["train"]).isdisjoint(ds.split["val"])
    assert ds.split == datasets.parse(nuclei_zip(10), val_fraction=0.2, seed=3).split
    assert all(set(np.unique(i.mask)) <= {0, 255} for i in ds.items)


def test_missing_and_extra_masks_are_named() -> None:
    data = zip_of(
        {
            "images/a.png": png(IMG),
            "images/b.png": png(IMG),
            "masks/a.png": png(MASK),
            "masks/c.png": png(MASK),
        }
    )
    found = problems(data)
    assert "no mask" in found["images/b.png"]
    assert "no matching image" in found["masks/c.png"]


def test_size_mismatch_and_channels_are_named() -> None:
    labels = MASK.copy()
    labels[0:3, 0:3] = 7  # an instance label image: accepted
    rgb = np.stack([IMG] * 3, axis=-1)
    data = zip_of(
        {
            "images/small.png": png(IMG),
            "masks/small.png": png(np.zeros((8, 8), np.uint8)),
            "images/labels.png": png(IMG),
            "masks/labels.png": png(labels),
            "images/g1.png": png(IMG),
            "masks/g1.png": png(MASK),
            "images/g2.png": png(IMG),
            "masks/g2.png": png(MASK),
            "images/colour.png": png(rgb),
            "masks/colour.png": png(MASK),
        }
    )
    found = problems(data)
    assert "8x8" in found["masks/small.png"] and "16x16" in found["masks/small.png"]
    assert "masks/labels.png" not in found and "labels" not in found
    assert "3 channel" in found["colour"]


def test_empty_dataset_and_not_a_zip() -> None:
    with pytest.raises(InvalidDataset, match="empty"):
        datasets.parse(zip_of({}))
    with pytest.raises(InvalidDataset, match="not a zip"):
        datasets.parse(b"definitely not a zip")


def test_undecodable_and_stray_files_are_named() -> None:
    data = zip_of(
        {
            "images/a.png": b"\x89PNG broken",
            "masks/a.png": png(MASK),
            "notes.txt": b"hello",
        }
    )
    found = problems(data)
    assert "cannot be decoded" in found["images/a.png"]
    assert "not an image" in found["notes.txt"]


def test_classification_needs_two_classes_and_reads_folders() -> None:
    one = zip_of({"images/cat/a.png": png(IMG), "images/cat/b.png": png(IMG)})
    assert "2 classes" in problems(one, task="classification")["images/"]
    two = zip_of({"cat/a.png": png(IMG), "dog/b.png": png(IMG + 50), "dog/c.png": png(IMG)})
    ds = datasets.parse(two, task="classification")
    assert ds.classes == ["cat", "dog"]
    assert sorted(i.label for i in ds.items) == [0, 1, 1]


def test_a_label_image_mask_keeps_its_objects_and_trains_with_a_line_between_them() -> None:
    # given two touching objects labelled 1 and 2 (and 0 around them)
    labels = np.zeros((16, 16), np.uint8)
    labels[4:12, 2:8], labels[4:12, 8:14] = 1, 2
    data = zip_of(
        {
            "images/a.png": png(IMG),
            "masks/a.png": png(labels),
            "images/b.png": png(IMG),
            "masks/b.png": png(MASK),
        }
    )
    items = {i.name: i for i in datasets.parse(data).items}
    # then the labels are kept for evaluation, and the binary mask has a gap between them
    assert items["a"].labels is not None and set(np.unique(items["a"].labels)) == {0, 1, 2}
    assert items["a"].mask is not None and not items["a"].mask[4:12, 8].any()
    assert items["b"].labels is None  # a binary mask stays binary
    # and a two-valued mask without background 0 is still refused
    odd = np.full((16, 16), 3, np.uint8)
    odd[:8] = 5
    found = problems(zip_of({"images/c.png": png(IMG), "masks/c.png": png(odd)}))
    assert "no background 0" in found["masks/c.png"]
