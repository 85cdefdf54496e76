"""Time-lapse model predictions: every frame of a stored multi-frame image (a multi-page
TIFF or an animation) segmented by a ``timelapse`` model over sliding windows, the masks
stored as one multi-page TIFF, and, asked for, the objects tracked through the frames
(:func:`pixelmill.imaging.tracking.track`) with the per-track table.

The answer names the version that ran (``model``, ``version``, ``ref``) like every
prediction; the masks (``mask_image_id``, uint8 0/255, one page a frame) and, with
tracking, the objects of every frame (``labels_image_id``, uint32 instance labels, one page
a frame; the ``objects`` rows map each frame's label to its track) are images of the
caller's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from pixelmill.errors import ImageTooLarge, InvalidParameter
from pixelmill.imaging.analysis.export import labels_to_tiff
from pixelmill.services.inference.answers import answer_head
from pixelmill.services.timelapse_frames import (
    TrackingOptions,
    grey_frames,
    read_frames,
    track_frames,
)

if TYPE_CHECKING:
    from pixelmill.ml.onnx_model import Prediction
    from pixelmill.services.images import ImageService
    from pixelmill.services.inference.loaded import LoadedModel
    from pixelmill.settings import MLSettings


class InferenceService(Protocol):
    """What a time-lapse prediction uses of :class:`.service.InferenceService`."""

    images: ImageService
    settings: MLSettings

    def run(
        self,
        loaded: LoadedModel,
        image: NDArray[np.generic],
        *,
        threshold: float | None = None,
        scale: float = 1.0,
        frames: bool = False,
    ) -> Prediction: ...


class TrackOptions(TrackingOptions):
    """How the objects are followed through the frames (as the ``track`` job does)."""

    objects: bool = Field(False, description="Also answer every object of every frame.")


def predict_timelapse(
    service: InferenceService,
    loaded: LoadedModel,
    image_id: str | None,
    data: bytes | None,
    owner_id: str,
    *,
    threshold: float | None = None,
    scale: float = 1.0,
    track: TrackOptions | None = None,
) -> dict[str, Any]:
    """Segment every frame of the stored image ``image_id`` (or of ``data``, stored as a
    new image of ``owner_id``'s first) with ``loaded``, store the masks and answer; with
    ``track``, also track the objects (see the module docs)."""
    images = service.images
    if image_id is not None:
        record = images.record(image_id)
    else:
        assert data is not None
        record, _ = images.ingest_bytes(data, source="upload", owner_id=owner_id)
    if record.width * record.height > service.settings.max_predict_pixels:
        raise ImageTooLarge(
            f"the frames have {record.width * record.height} pixels; predictions accept at "
            f"most {service.settings.max_predict_pixels}"
        )
    if record.pages < 2:
        raise InvalidParameter(
            f"model {loaded.version.ref} is a time-lapse model: predict on a multi-page TIFF "
            f"(or an animation), one page a frame; image {record.id} has one page"
        )
    frames = read_frames(images, record)
    prediction = service.run(loaded, frames, threshold=threshold, scale=scale, frames=True)
    assert prediction.mask is not None
    masks = prediction.mask
    body = answer_head(loaded, record.id)
    body["frames"] = len(masks)
    body["window"] = loaded.model.spec.frames
    body["foreground_fraction"] = [round(float((m > 0).mean()), 6) for m in masks]
    stored, _ = images.ingest_bytes(
        labels_to_tiff(masks), source="inference", owner_id=owner_id, verify=False
    )
    body["mask_image_id"] = stored.id
    if track is not None:
        body.update(_tracks(service, loaded, masks, frames, record.pixel_size_um, owner_id, track))
    return body


def _tracks(
    service: InferenceService,
    loaded: LoadedModel,
    masks: NDArray[np.uint8],
    frames: NDArray[Any],
    pixel_size: float | None,
    owner_id: str,
    options: TrackOptions,
) -> dict[str, Any]:
    from pixelmill.imaging.tracking import object_table, track_table

    spec = loaded.model.spec
    labels = np.stack([np.asarray(spec.objects(m > 0), np.uint32) for m in masks])
    tracks = track_frames(labels, grey_frames(frames), options)
    size = options.pixel_size_um or pixel_size
    stored, _ = service.images.ingest_bytes(
        labels_to_tiff(labels), source="inference", owner_id=owner_id, verify=False
    )
    out: dict[str, Any] = {
        "labels_image_id": stored.id,
        "tracking": {
            "objects": len(tracks.objects),
            "tracks": tracks.n_tracks,
            "divisions": len(tracks.children()),
            "max_distance_px": round(tracks.max_distance, 3),
            "pixel_size_um": size,
        },
        "tracks": track_table(
            tracks, pixel_size_um=size, frame_interval_s=options.frame_interval_s
        ).to_pylist(),
    }
    if options.objects:
        out["objects"] = object_table(tracks, pixel_size_um=size).to_pylist()
    return out
