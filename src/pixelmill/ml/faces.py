"""Face detection: the MTCNN cascade (Zhang et al. 2016) on ONNX Runtime, in numpy.

Three small networks ship in the package (``ml/models/faces``, exported by
``tools/export_faces.py`` from facenet-pytorch's MIT-licensed weights; see PROVENANCE
there). The cascade:

1. an image pyramid (scale factor 0.709, smallest face ``min_size`` px) through P-Net,
   a fully convolutional 12x12 window classifier with stride 2 → candidate boxes;
2. non-maximum suppression per scale, then across scales; box regression; squaring;
3. 24x24 crops through R-Net → rejected or refined;
4. 48x48 crops through O-Net → final score, box regression, five landmarks;
   NMS by intersection over the smaller box ("min"), which drops a box inside another.

Boxes are ``(x0, y0, x1, y1)`` in pixels of the input image, x along columns, half-open.
No torch and no I/O here: the networks are package data, read lazily on first use.
"""

from __future__ import annotations

import importlib.resources
import threading
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

#: the per-stage score thresholds of the MTCNN paper's reference implementation
THRESHOLDS = (0.6, 0.7, 0.7)
#: pyramid step: each level is 0.709x the previous (area halves every two levels)
FACTOR = 0.709
_CELL, _STRIDE = 12, 2

Boxes = NDArray[np.float32]


def iou(a: Boxes, b: Boxes) -> NDArray[np.float32]:
    """Intersection over union of every box of ``a`` (N, 4) with every box of ``b``
    (M, 4) → (N, M). Boxes ``(x0, y0, x1, y1)``, half-open; empty boxes give 0.

    Examples
    --------
    >>> float(iou(np.array([[0, 0, 2, 2]]), np.array([[1, 0, 3, 2]]))[0, 0])
    0.3333333432674102
    """
    return _overlap(np.asarray(a, np.float32), np.asarray(b, np.float32), "union")


def _overlap(a: Boxes, b: Boxes, mode: Literal["union", "min"]) -> NDArray[np.float32]:
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    if mode == "min":
        denom = np.minimum(area_a[:, None], area_b[None, :])
    else:
        denom = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(denom > 0, inter / denom, 0.0)
    return out.astype(np.float32)


def nms(
    boxes: Boxes,
    scores: NDArray[np.float32],
    threshold: float,
    *,
    mode: Literal["union", "min"] = "union",
) -> NDArray[np.intp]:
    """Greedy non-maximum suppression: indices of the kept boxes, best score first.

    A box is dropped when its overlap with a better kept box is above ``threshold``;
    overlap is IoU (``mode="union"``) or intersection over the smaller area (``"min"``).
    """
    order = np.argsort(-np.asarray(scores), kind="stable")
    boxes = np.asarray(boxes, np.float32)
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        if not rest.size:
            break
        overlap = _overlap(boxes[best : best + 1], boxes[rest], mode)[0]
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.intp)


def regress(boxes: Boxes, offsets: NDArray[np.float32]) -> Boxes:
    """Move each box's edges by ``offsets`` (N, 4), given as fractions of its width and
    height (the networks' regression output)."""
    size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, axis=1)
    return (boxes[:, :4] + offsets * size).astype(np.float32)


def square(boxes: Boxes) -> Boxes:
    """Each box grown to a square around its centre (side = its longer side)."""
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], 1).astype(
        np.float32
    )


def pyramid_scales(rows: int, cols: int, min_size: float, factor: float = FACTOR) -> list[float]:
    """Scales at which P-Net's 12 px window sees faces from ``min_size`` px up to the
    whole image's shorter side."""
    scale = _CELL / min_size
    side = min(rows, cols) * scale
    scales = []
    while side >= _CELL:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


def _normalise(rgb: NDArray[Any]) -> NDArray[np.float32]:
    """(rows, cols, 3) → (1, 3, rows, cols) scaled as the networks were trained."""
    planes = np.transpose(rgb.astype(np.float32), (2, 0, 1))[None]
    return ((planes - 127.5) * 0.0078125).astype(np.float32)


def _resize(rgb: NDArray[np.uint8], rows: int, cols: int) -> NDArray[np.uint8]:
    import cv2

    return np.asarray(cv2.resize(rgb, (cols, rows), interpolation=cv2.INTER_AREA))


def crops(rgb: NDArray[np.uint8], boxes: Boxes, side: int) -> NDArray[np.float32]:
    """Each box cut out of the image (zero outside it) and resized to ``side``²,
    normalised → (N, 3, side, side)."""
    rows, cols = rgb.shape[:2]
    out = np.empty((len(boxes), 3, side, side), np.float32)
    for k, (x0, y0, x1, y1) in enumerate(np.round(boxes[:, :4]).astype(int)):
        patch = np.zeros((max(y1 - y0, 1), max(x1 - x0, 1), 3), np.uint8)
        sy0, sy1, sx0, sx1 = max(y0, 0), min(y1, rows), max(x0, 0), min(x1, cols)
        if sy1 > sy0 and sx1 > sx0:
            patch[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
        out[k] = _normalise(_resize(patch, side, side))[0]
    return out


def _read(name: str) -> bytes:
    return (importlib.resources.files("pixelmill.ml") / "models" / "faces" / name).read_bytes()


@dataclass(frozen=True)
class Face:
    """One detected face: ``box`` (x0, y0, x1, y1) px, ``score`` in [0, 1] (O-Net's face
    probability), ``landmarks`` five (x, y) points: eyes, nose, mouth corners."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "box": [round(v, 1) for v in self.box],
            "score": round(self.score, 4),
            "landmarks": [[round(x, 1), round(y, 1)] for x, y in self.landmarks],
        }


class FaceDetector:
    """The MTCNN cascade. Sessions are built on the first :meth:`detect` (ONNX Runtime
    imported then), from the shipped networks unless ``networks`` gives
    ``(pnet, rnet, onet)`` bytes. Thread-safe.

    ``max_side``: images with a longer side are shrunk to it first (faces smaller than
    ``min_size`` px at that size are not found; it bounds the time on 12 MP photos).
    """

    def __init__(
        self,
        networks: tuple[bytes, bytes, bytes] | None = None,
        *,
        threads: int = 1,
        min_size: float = 20.0,
        max_side: int = 1024,
        thresholds: tuple[float, float, float] = THRESHOLDS,
    ) -> None:
        self._networks = networks
        self.threads = threads
        self.min_size = min_size
        self.max_side = max_side
        self.thresholds = thresholds
        self._sessions: tuple[Any, Any, Any] | None = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[Any, Any, Any]:
        with self._lock:
            if self._sessions is None:
                from pixelmill.ml.onnx_model import session

                nets = self._networks or (
                    _read("pnet.onnx"),
                    _read("rnet.onnx"),
                    _read("onet.onnx"),
                )
                self._sessions = (
                    session(nets[0], threads=self.threads),
                    session(nets[1], threads=self.threads),
                    session(nets[2], threads=self.threads),
                )
            return self._sessions

    def boxes(self, image: NDArray[Any]) -> NDArray[np.float32]:
        """:meth:`detect` as an (N, 5) float32 array ``x0, y0, x1, y1, score``."""
        found = self.detect(image)
        return np.asarray([[*f.box, f.score] for f in found], np.float32).reshape(-1, 5)

    def detect(self, image: NDArray[Any]) -> list[Face]:
        """Faces in ``image``: (rows, cols) grey or (rows, cols, 3|4) RGB(A), uint8
        (other dtypes are rescaled from their range). Best score first."""
        rgb = _as_rgb8(image)
        rows, cols = rgb.shape[:2]
        shrink = min(1.0, self.max_side / max(rows, cols))
        if shrink < 1.0:
            rgb = _resize(rgb, max(1, round(rows * shrink)), max(1, round(cols * shrink)))
        pnet, rnet, onet = self._load()
        boxes = self._propose(pnet, rgb)
        if len(boxes):
            boxes = self._refine(rnet, rgb, boxes)
        faces: list[Face] = []
        if len(boxes):
            boxes, marks = self._output(onet, rgb, boxes)
            for box, mark in zip(boxes, marks, strict=True):
                b = np.clip(box[:4] / shrink, 0, [cols, rows, cols, rows])
                pts = tuple((float(x / shrink), float(y / shrink)) for x, y in mark)
                faces.append(Face(tuple(float(v) for v in b), float(box[4]), pts))  # type: ignore[arg-type]
        return faces

    def _propose(self, pnet: Any, rgb: NDArray[np.uint8]) -> Boxes:
        rows, cols = rgb.shape[:2]
        found = []
        for scale in pyramid_scales(rows, cols, self.min_size):
            level = _resize(rgb, int(rows * scale + 1), int(cols * scale + 1))
            reg, prob = pnet.run(None, {"image": _normalise(level)})
            r, c = np.nonzero(prob[0, 1] >= self.thresholds[0])
            if not r.size:
                continue
            score = prob[0, 1, r, c]
            x0, y0 = _STRIDE * c / scale, _STRIDE * r / scale
            side = _CELL / scale
            cand = np.stack([x0, y0, x0 + side, y0 + side, score], 1).astype(np.float32)
            cand = np.concatenate([cand, reg[0][:, r, c].T], 1)
            found.append(cand[nms(cand[:, :4], cand[:, 4], 0.5)])
        if not found:
            return np.zeros((0, 5), np.float32)
        cand = np.concatenate(found)
        cand = cand[nms(cand[:, :4], cand[:, 4], 0.7)]
        boxes = square(regress(cand[:, :4], cand[:, 5:9]))
        return np.concatenate([boxes, cand[:, 4:5]], 1)

    def _refine(self, rnet: Any, rgb: NDArray[np.uint8], boxes: Boxes) -> Boxes:
        reg, prob = rnet.run(None, {"image": crops(rgb, boxes, 24)})
        ok = prob[:, 1] > self.thresholds[1]
        boxes = np.concatenate([boxes[ok, :4], prob[ok, 1:2]], 1)
        reg = reg[ok]
        keep = nms(boxes[:, :4], boxes[:, 4], 0.7)
        boxes, reg = boxes[keep], reg[keep]
        return np.concatenate([square(regress(boxes[:, :4], reg)), boxes[:, 4:5]], 1)

    def _output(
        self, onet: Any, rgb: NDArray[np.uint8], boxes: Boxes
    ) -> tuple[Boxes, NDArray[np.float32]]:
        reg, marks, prob = onet.run(None, {"image": crops(rgb, boxes, 48)})
        ok = prob[:, 1] > self.thresholds[2]
        boxes, reg, marks = boxes[ok, :4], reg[ok], marks[ok]
        size_x, size_y = boxes[:, 2:3] - boxes[:, 0:1], boxes[:, 3:4] - boxes[:, 1:2]
        points = np.stack(
            [boxes[:, 0:1] + marks[:, :5] * size_x, boxes[:, 1:2] + marks[:, 5:] * size_y], 2
        )
        final = np.concatenate([regress(boxes, reg), prob[ok, 1:2]], 1)
        keep = nms(final[:, :4], final[:, 4], 0.7, mode="min")
        return final[keep], points[keep].astype(np.float32)


def _as_rgb8(image: NDArray[Any]) -> NDArray[np.uint8]:
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        top = np.iinfo(arr.dtype).max if np.issubdtype(arr.dtype, np.integer) else 1.0
        arr = np.clip(arr.astype(np.float32) * (255.0 / top), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr[:, :, :3])
