"""The shipped face detector (built once per process: its sessions take ~1 s) and the
hand-labelled public-domain portrait the face tests use (tests/golden/faces)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from pixelmill.ml.faces import FaceDetector

LABELS = Path(__file__).parent / "golden" / "faces" / "labels.json"


@functools.cache
def detector() -> FaceDetector:
    return FaceDetector(threads=1)


def astronaut() -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
    """skimage's astronaut (NASA, public domain) and its hand-labelled face box (1, 4)."""
    from skimage import data

    item = next(i for i in json.loads(LABELS.read_text())["images"] if i["name"] == "astronaut")
    return np.asarray(data.astronaut()), np.asarray(item["faces"], np.float32)
