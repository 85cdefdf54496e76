"""Graph-model predictions: where an image's cells come from, and the answer.

A graph model classifies the cells of an image given their instance segmentation: a
label image the caller names (``labels_image_id``: a stored image, one integer channel,
the image's size), or, without one, the objects a segmentation model finds
(``segmenter``, default ``nuclei``: its mask split by its own post-processing,
:meth:`pixelmill.ml.spec.InputSpec.objects`, as ``predict?measure=true`` does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

from pixelmill.errors import InvalidParameter
from pixelmill.ml.graph_runtime import rows
from pixelmill.ml.preprocess import decode

if TYPE_CHECKING:
    from pixelmill.ml.onnx_model import Prediction
    from pixelmill.services.images import ImageService
    from pixelmill.services.inference.loaded import LoadedModel

#: the segmentation model a graph prediction runs first when no labels are given
DEFAULT_SEGMENTER = "nuclei"
CSV = "text/csv"


class InferenceService(Protocol):
    """What a graph prediction uses of :class:`.service.InferenceService`."""

    images: ImageService

    def load(self, ref: str) -> LoadedModel: ...

    def run(
        self,
        loaded: LoadedModel,
        image: NDArray[np.generic],
        *,
        threshold: float | None = None,
        scale: float = 1.0,
        labels: NDArray[np.integer] | None = None,
    ) -> Prediction: ...


def predict_cells(
    service: InferenceService,
    loaded: LoadedModel,
    image: NDArray[np.generic],
    body: dict[str, Any],
    labels_image_id: str | None,
    segmenter: str | None,
    scale: float,
) -> dict[str, Any]:
    """``body`` (what every prediction answers) with the cells of ``image`` classified by
    the graph model ``loaded``; the cells are ``labels_image_id``'s objects or those
    ``segmenter`` finds."""
    if labels_image_id is not None:
        labels = stored_labels(service, labels_image_id)
        objects: dict[str, Any] = {"labels_image_id": labels_image_id}
    else:
        labels, found_by = segmented_labels(
            service, segmenter or DEFAULT_SEGMENTER, image, scale=scale
        )
        objects = {"segmenter": found_by}
    prediction = service.run(loaded, image, labels=labels)
    return {**body, **answer(prediction, objects)}


def stored_labels(service: InferenceService, image_id: str) -> NDArray[np.integer]:
    """A stored image as an instance label image (one integer channel)."""
    record = service.images.record(image_id)
    labels = np.asarray(decode(service.images.storage.get(record.storage_key)))
    if labels.ndim == 3 and labels.shape[2] == 1:
        labels = labels[..., 0]
    if labels.ndim != 2 or labels.dtype.kind not in "ui":
        raise InvalidParameter(
            f"labels_image_id {image_id!r} is not a one-channel integer label image "
            f"(shape {list(labels.shape)}, {labels.dtype})"
        )
    return labels


def segmented_labels(
    service: InferenceService, segmenter: str, image: NDArray[np.generic], *, scale: float
) -> tuple[NDArray[np.integer], str]:
    """The objects ``segmenter`` finds in ``image``, and the version that found them."""
    loaded = service.load(segmenter)
    if loaded.model.spec.task != "segmentation":
        raise InvalidParameter(
            f"segmenter {segmenter!r} is a {loaded.model.spec.task} model, not a segmentation one"
        )
    prediction = service.run(loaded, image, scale=scale)
    assert prediction.mask is not None
    return loaded.model.spec.objects(prediction.mask > 0), loaded.version.ref


def answer(prediction: Prediction, objects: dict[str, Any]) -> dict[str, Any]:
    """The JSON of a graph prediction: where the cells came from, every cell as a row,
    the image's summary."""
    assert prediction.cells is not None and prediction.summary is not None
    return {
        "objects": objects,
        "cells": rows(prediction.cells),
        "summary": _json_floats(prediction.summary),
    }


def _json_floats(value: Any) -> Any:
    """NaN → None, floats rounded to 6 places, through nested dicts."""
    if isinstance(value, dict):
        return {k: _json_floats(v) for k, v in value.items()}
    if isinstance(value, float):
        return None if np.isnan(value) else round(value, 6)
    return value


def csv_of(cells: list[dict[str, Any]]) -> str:
    """The cell rows of an answer as CSV (a header row; null as an empty field)."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if cells:
        writer.writerow(list(cells[0]))
    for row in cells:
        writer.writerow(["" if v is None else v for v in row.values()])
    return buf.getvalue()
