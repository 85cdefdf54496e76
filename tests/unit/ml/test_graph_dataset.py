"""The graph dataset layout: label images plus cells.csv."""

from __future__ import annotations

import numpy as np
import pytest

from pixelmill.errors import InvalidDataset
from pixelmill.ml import datasets
from tests.ml_helpers import png, zip_of


def _labels() -> np.ndarray:
    lab = np.zeros((32, 32), np.uint16)
    lab[2:8, 2:8], lab[2:8, 20:26], lab[20:26, 10:16] = 1, 2, 3
    return lab


def test_cells_csv_makes_a_graph_dataset_and_unlisted_cells_have_no_class() -> None:
    image = (_labels() * 60).astype(np.uint8)
    table = b"image,label,class\nimages/a.png,1,tumour\na,3,stroma\n"
    data = zip_of({"images/a.png": png(image), "masks/a.png": png(_labels()), "cells.csv": table})
    ds = datasets.parse(data)
    assert ds.task == "graph" and ds.classes == ["stroma", "tumour"]
    item = ds.items[0]
    assert item.labels is not None and item.cell_classes is not None
    assert item.cell_classes.tolist() == [-1, 1, -1, 0]  # label 2 is not listed


def test_a_bad_table_is_reported_with_every_problem() -> None:
    image = (_labels() * 60).astype(np.uint8)
    table = b"image,cell,kind\na,1,tumour\n"
    data = zip_of({"images/a.png": png(image), "masks/a.png": png(_labels()), "cells.csv": table})
    with pytest.raises(InvalidDataset, match="header must be image,label,class"):
        datasets.parse(data)
    one_class = b"image,label,class\na,1,tumour\na,x,tumour\n"
    data = zip_of(
        {"images/a.png": png(image), "masks/a.png": png(_labels()), "cells.csv": one_class}
    )
    with pytest.raises(InvalidDataset) as info:
        datasets.parse(data)
    problems = {f["file"]: f["problem"] for f in info.value.extra["files"]}
    assert "not an integer" in problems["cells.csv:3"]
    assert "at least 2 classes" in problems["cells.csv"]


def test_a_wrapping_folder_is_fine() -> None:
    image = (_labels() * 60).astype(np.uint8)
    table = b"image,label,class\na,1,tumour\na,2,stroma\n"
    data = zip_of(
        {
            "mine/images/a.png": png(image),
            "mine/masks/a.png": png(_labels()),
            "mine/cells.csv": table,
        }
    )
    ds = datasets.parse(data)
    assert ds.task == "graph" and ds.items[0].name == "a"
