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

from pixelmill.errors import ImageTooLarge, InvalidParameter
from pixelmill.ml.graph_measures import combine
from pixelmill.ml.graph_runtime import rows
from pixelmill.ml.preprocess import decode

if TYPE_CHECKING:
    from pixelmill.ml.onnx_model import Prediction
    from pixelmill.services.images import ImageService
    from pixelmill.services.inference.loaded import LoadedModel
    from pixelmill.services.inference.resolution import ResolvedRefs
    from pixelmill.settings import MLSettings

#: the segmentation model a graph prediction runs first when no labels are given
DEFAULT_SEGMENTER = "nuclei"
CSV = "text/csv"


class InferenceService(Protocol):
    """What a graph prediction uses of :class:`.service.InferenceService`."""

    images: ImageService
    settings: MLSettings
    refs: ResolvedRefs

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
    labels, objects = _cells_of(service, image, labels_image_id, segmenter, scale)
    prediction = service.run(loaded, image, labels=labels)
    return {**body, **answer(prediction, objects)}


def is_graph(service: InferenceService, ref: str) -> bool:
    """Whether ``ref`` names a graph model (it classifies an image's cells)."""
    return bool(service.refs.resolve(ref).input_spec.get("task") == "graph")


def cell_graphs(
    service: InferenceService,
    ref: str,
    items: list[tuple[str, str | None]],
    *,
    segmenter: str | None = None,
    scale: float = 1.0,
) -> dict[str, Any]:
    """The graph model ``ref`` on several stored images: the version, then
    :func:`study_of`."""
    loaded = service.load(ref)
    if loaded.model.spec.task != "graph":
        raise InvalidParameter(f"{ref!r} is a {loaded.model.spec.task} model, not a graph one")
    v = loaded.version
    head = {"model": v.model, "version": v.version, "ref": v.ref, "task": "graph"}
    return {**head, **study_of(service, loaded, items, segmenter, scale)}


def study_of(
    service: InferenceService,
    loaded: LoadedModel,
    items: list[tuple[str, str | None]],
    segmenter: str | None,
    scale: float,
) -> dict[str, Any]:
    """Several images (``(image_id, labels_image_id or None)``, a study's) at once: each
    image's summary, the summary of them all (:func:`pixelmill.ml.graph_measures.combine`)
    and every cell as a row with its ``image_id``."""
    images, summaries, cells = [], [], []
    for image_id, labels_image_id in items:
        image = stored_image(service, image_id)
        labels, objects = _cells_of(service, image, labels_image_id, segmenter, scale)
        prediction = service.run(loaded, image, labels=labels)
        assert prediction.cells is not None and prediction.summary is not None
        summaries.append(prediction.summary)
        images.append(
            {"image_id": image_id, "objects": objects, "summary": _json_floats(prediction.summary)}
        )
        cells += [{"image_id": image_id, **row} for row in rows(prediction.cells)]
    return {"images": images, "study": _json_floats(combine(summaries)), "cells": cells}


def _cells_of(
    service: InferenceService,
    image: NDArray[np.generic],
    labels_image_id: str | None,
    segmenter: str | None,
    scale: float,
) -> tuple[NDArray[np.integer], dict[str, Any]]:
    if labels_image_id is not None:
        return stored_labels(service, labels_image_id), {"labels_image_id": labels_image_id}
    labels, found_by = segmented_labels(service, segmenter or DEFAULT_SEGMENTER, image, scale=scale)
    return labels, {"segmenter": found_by}


def stored_image(service: InferenceService, image_id: str) -> NDArray[np.generic]:
    """A stored image's pixels; more than ``ml.max_predict_pixels`` → 413."""
    record = service.images.record(image_id)
    if record.width * record.height > service.settings.max_predict_pixels:
        raise ImageTooLarge(
            f"image {image_id!r} has {record.width * record.height} pixels; predictions "
            f"accept at most {service.settings.max_predict_pixels}"
        )
    return decode(service.images.storage.get(record.storage_key))


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
    return (
        loaded.model.spec.objects(prediction.mask > 0, prediction.distance),
        loaded.version.ref,
    )


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
