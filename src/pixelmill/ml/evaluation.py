"""Score a segmentation model on a dataset of images with annotated masks: predict
each image, split the prediction into objects with the model's own post-processing
(:meth:`pixelmill.ml.spec.InputSpec.objects`), take the annotation's objects
(:func:`pixelmill.ml.scores.truth_instances`) and tally them
(:class:`pixelmill.ml.scores.ObjectTally`). ONNX Runtime only, no I/O."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pixelmill.errors import InvalidParameter
from pixelmill.ml.scores import ObjectTally, truth_instances

if TYPE_CHECKING:
    from pixelmill.ml.datasets import Item
    from pixelmill.ml.onnx_model import OnnxModel

#: which items of a dataset an evaluation scores
SPLITS = ("all", "val", "train")


def pick(items: Sequence[Item], split: dict[str, list[str]], part: str) -> list[Item]:
    """The items of ``part`` (``all``, or a name in the dataset's recorded ``split``)."""
    if part not in SPLITS:
        raise InvalidParameter(f"split is one of {', '.join(SPLITS)}, not {part!r}")
    if part == "all":
        return list(items)
    names = set(split.get(part, []))
    return [i for i in items if i.name in names]


def score(
    model: OnnxModel,
    items: Sequence[Item],
    *,
    on_item: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """The scores of ``model`` on ``items`` (segmentation items: image + mask), pooled
    over all of them (see :class:`ObjectTally`). ``on_item(done, total)`` after each."""
    if model.spec.task != "segmentation":
        raise InvalidParameter("only segmentation models can be evaluated on objects")
    if not items:
        raise InvalidParameter("there are no images to evaluate on (an empty split?)")
    tally = ObjectTally()
    for done, item in enumerate(items, 1):
        if item.mask is None:
            raise InvalidParameter(f"{item.name} has no mask: not a segmentation dataset")
        prediction = model.predict(item.image)
        assert prediction.mask is not None
        found = np.asarray(model.spec.objects(prediction.mask > 0, prediction.distance))
        truth = item.labels if item.labels is not None else truth_instances(item.mask)
        tally.add(found, truth)
        if on_item is not None:
            on_item(done, len(items))
    return tally.scores()
