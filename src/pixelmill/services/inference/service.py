"""Serve registry models with ONNX Runtime: sessions cached per version, tiled inference
for large images, dynamic batching across concurrent requests, drift monitoring, and
results stored as images. Never imports torch."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from cachetools import LRUCache
from numpy.typing import NDArray

from pixelmill.backends.breaker import Breakers, is_outage
from pixelmill.backends.metadata.models import VersionRecord
from pixelmill.errors import ImageTooLarge, InvalidModel, public_text
from pixelmill.ml.drift import DriftMonitor, DriftState, flag_note
from pixelmill.ml.onnx_model import OnnxModel, Prediction
from pixelmill.ml.preprocess import decode
from pixelmill.ml.spec import InputSpec
from pixelmill.observability import metrics, tracing
from pixelmill.services.images import ImageService
from pixelmill.services.inference.rollback import RollbackWatcher
from pixelmill.services.model_registry import ModelRegistry
from pixelmill.settings import MLSettings

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    version: VersionRecord
    model: OnnxModel
    drift: DriftMonitor
    loaded_at: float = field(default_factory=time.time)
    load_seconds: float = 0.0
    predictions: int = 0
    errors: int = 0
    last_error: str | None = None

    def health(self) -> dict[str, Any]:
        return {
            "model": self.version.model,
            "version": self.version.version,
            "sha256": self.version.sha256,
            "loaded": True,
            "ready": self.last_error is None or self.predictions > 0,
            "loaded_at": self.loaded_at,
            "load_seconds": round(self.load_seconds, 4),
            "predictions": self.predictions,
            "errors": self.errors,
            "last_error": self.last_error,
            "batching": None
            if self.model.batcher is None
            else {
                "max_batch": self.model.batcher.max_batch,
                "max_wait_ms": self.model.batcher.max_wait * 1000,
                "batches": self.model.batcher.batches,
                "items": self.model.batcher.items,
            },
            "drift": self.drift.state().to_dict(),
        }


class Predictor:
    """What the ``segment`` operation receives from ``ctx.resolve_model(ref)``."""

    def __init__(self, service: InferenceService, loaded: LoadedModel) -> None:
        self._service = service
        self._loaded = loaded
        self.ref = loaded.version.ref
        self.input_spec = InputSpec.model_validate(loaded.version.input_spec)

    def predict(
        self, image: NDArray[np.generic], *, threshold: float | None = None, scale: float = 1.0
    ) -> Prediction:
        return self._service.run(self._loaded, image, threshold=threshold, scale=scale)


class _Loaded(LRUCache[str, LoadedModel]):
    """Loaded versions, least recently used evicted first; an evicted model's sessions
    and batcher threads are closed."""

    def popitem(self) -> tuple[str, LoadedModel]:
        key, evicted = super().popitem()
        evicted.model.close()
        return key, evicted


class InferenceService:
    def __init__(
        self,
        *,
        registry: ModelRegistry,
        images: ImageService,
        settings: MLSettings,
        breakers: Breakers | None = None,
    ) -> None:
        self.registry = registry
        self.breakers = breakers
        #: set by the composition root when automatic rollback is on
        self.watcher: RollbackWatcher | None = None
        self.images = images
        self.settings = settings
        self._loaded: _Loaded = _Loaded(maxsize=settings.loaded_models)
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    # -- loading ------------------------------------------------------------------------
    def load(self, ref: str) -> LoadedModel:
        """The loaded model for ``ref`` (resolving the alias now), loading it on first use.
        At most ``settings.loaded_models`` versions stay loaded (LRU)."""
        version = self.registry.resolve(ref)
        with self._lock:
            loaded = self._loaded.get(version.id)
            if loaded is not None:
                return loaded
            gate = self._loading.setdefault(version.id, threading.Lock())
        with gate:  # one load per version even under concurrent first requests
            with self._lock:
                if version.id in self._loaded:
                    return self._loaded[version.id]
            started = time.perf_counter()
            s = self.settings
            model = OnnxModel(
                self.registry.artifact(version),
                InputSpec.model_validate(version.input_spec),
                threads=s.inference_threads,
                max_batch=s.max_batch,
                max_wait=s.max_wait_ms / 1000,
                max_batch_pixels=s.max_batch_pixels,
                batching=s.batching,
                overlap=s.tile_overlap,
                tile=s.tile_size or None,
            )
            self._instrument(model, version.model)
            monitor = DriftMonitor(
                version.reference,
                window=s.drift_window,
                min_samples=s.drift_min_samples,
                threshold=s.drift_threshold,
                on_flag=lambda state, v=version: self._drift_flag(v, state),
            )
            loaded = LoadedModel(
                version, model, monitor, load_seconds=time.perf_counter() - started
            )
            metrics.model_loaded(version.model, str(version.version))
            with self._lock:
                self._loaded[version.id] = loaded  # may evict (and close) the LRU one
                metrics.MODELS_LOADED.set(len(self._loaded))
                self._loading.pop(version.id, None)
            log.info("loaded model %s in %.3fs", version.ref, loaded.load_seconds)
            return loaded

    @staticmethod
    def _instrument(model: OnnxModel, name: str) -> None:
        run = model.run
        histogram = metrics.MODEL_BATCH_SIZE.labels(name)

        def counted(batch: NDArray[np.float32]) -> NDArray[np.float32]:
            histogram.observe(len(batch))
            with tracing.span("inference.batch", {"pixelmill.model": name, "size": len(batch)}):
                return run(batch)

        model.run = counted  # type: ignore[method-assign]
        if model.batcher is not None:
            model.batcher.runner = counted

    def _drift_flag(self, version: VersionRecord, state: DriftState) -> None:
        metrics.MODEL_DRIFT_FLAGS.labels(version.model, str(version.version)).inc()
        log.warning(
            "input drift on %s: PSI %.3f > %.3f over %d images",
            version.ref,
            state.score,
            state.threshold,
            state.window,
        )
        try:
            self.registry.models.record_event(
                version.model,
                "drift",
                version=version.version,
                note=flag_note(state),
            )
        except Exception:  # the event is best effort; serving goes on
            log.exception("could not record the drift event")

    def resolver(self, ref: str) -> Predictor:
        """``OpContext.resolve_model``: a predictor for the ``segment`` operation."""
        return Predictor(self, self.load(ref))

    def close(self) -> None:
        with self._lock:
            self._loaded.clear()  # evicts, and so closes, every loaded model

    # -- predicting ---------------------------------------------------------------------
    def run(
        self,
        loaded: LoadedModel,
        image: NDArray[np.generic],
        *,
        threshold: float | None = None,
        scale: float = 1.0,
    ) -> Prediction:
        """Predict on an array, with metrics and drift observation."""
        pixels = int(image.shape[0]) * int(image.shape[1])
        if pixels > self.settings.max_predict_pixels:
            raise ImageTooLarge(
                f"the image has {pixels} pixels; predictions accept at most {self.settings.max_predict_pixels}"
            )
        v = loaded.version
        started = time.perf_counter()
        breaker = (
            self.breakers.get(f"inference:{v.ref}", failure=_model_failure)
            if self.breakers
            else None
        )
        try:
            if breaker is None:
                prediction = loaded.model.predict(image, threshold=threshold, scale=scale)
            else:
                prediction = breaker.call(
                    loaded.model.predict, image, threshold=threshold, scale=scale
                )
        except Exception as exc:
            loaded.errors += 1
            loaded.last_error = public_text(exc)[:500]
            metrics.MODEL_PREDICTIONS.labels(v.model, str(v.version), "error").inc()
            if self.watcher is not None:
                self.watcher.observe(v, ok=False, seconds=time.perf_counter() - started)
            raise
        seconds = time.perf_counter() - started
        metrics.MODEL_INFERENCE_SECONDS.labels(v.model).observe(seconds)
        metrics.MODEL_PREDICTIONS.labels(v.model, str(v.version), "ok").inc()
        loaded.predictions += 1
        loaded.last_error = None
        state = loaded.drift.observe(image)
        metrics.MODEL_DRIFT_SCORE.labels(v.model, str(v.version)).set(state.score)
        if self.watcher is not None:
            self.watcher.observe(
                v, ok=True, seconds=seconds, drift=state.score, drift_window=state.window
            )
        return prediction

    def predict(
        self,
        ref: str,
        *,
        image_id: str | None = None,
        data: bytes | None = None,
        threshold: float | None = None,
        scale: float = 1.0,
        measure: bool = False,
        store: bool = True,
        owner_id: str = "",
    ) -> dict[str, Any]:
        """Predict on a stored image (``image_id``) or on image bytes (``data``, which are
        stored as a new image first). The mask is stored as a PNG image of ``owner_id``'s;
        its id is in the result, with the model version, drift state and optional
        measurements."""
        loaded = self.load(ref)
        if image_id is not None:
            record = self.images.images.get(image_id)
            data = self.images.original_bytes(image_id)
        else:
            assert data is not None
            record, _ = self.images.ingest_bytes(data, source="upload", owner_id=owner_id)
        source_id, pixel_size = record.id, record.pixel_size_um
        if record.width * record.height > self.settings.max_predict_pixels:  # before decoding
            raise ImageTooLarge(
                f"the image has {record.width * record.height} pixels; predictions accept at "
                f"most {self.settings.max_predict_pixels}"
            )
        image = decode(data)
        prediction = self.run(loaded, image, threshold=threshold, scale=scale)
        v = loaded.version
        body: dict[str, Any] = {
            "model": v.model,
            "version": v.version,
            "ref": v.ref,
            "image_id": source_id,
            "task": loaded.model.spec.task,
            "drift": loaded.drift.state().to_dict(),
        }
        if prediction.mask is not None:
            body["tiles"] = prediction.tiles
            body["foreground_fraction"] = round(float((prediction.mask > 0).mean()), 6)
            if store:
                mask_record, _ = self.images.ingest_bytes(
                    _png(prediction.mask), source="inference", owner_id=owner_id
                )
                body["mask_image_id"] = mask_record.id
            if measure:
                body["measurements"] = measure_mask(
                    prediction.mask,
                    image,
                    pixel_size_um=pixel_size,
                    spec=loaded.model.spec,
                )
        else:
            body["label"] = prediction.label
            body["scores"] = prediction.scores
        return body

    # -- health -------------------------------------------------------------------------
    def health(self, ref: str, *, load: bool = False) -> dict[str, Any]:
        """Loaded/ready state of the version ``ref`` names (loading it when ``load``)."""
        version = self.registry.resolve(ref)
        with self._lock:
            loaded = self._loaded.get(version.id)
        if loaded is None and load:
            loaded = self.load(ref)
        if loaded is None:
            return {
                "model": version.model,
                "version": version.version,
                "loaded": False,
                "ready": False,
            }
        return loaded.health()

    def loaded(self) -> list[dict[str, Any]]:
        with self._lock:
            items = list(self._loaded.values())
        return [i.health() for i in items]

    def drift(self, ref: str) -> dict[str, Any]:
        version = self.registry.resolve(ref)
        with self._lock:
            loaded = self._loaded.get(version.id)
        state = (
            loaded.drift.state().to_dict()
            if loaded
            else DriftMonitor(version.reference).state().to_dict()
        )
        return {"model": version.model, "version": version.version, **state}


def _model_failure(exc: BaseException) -> bool:
    """What counts against a model's breaker: outages, and the runtime failing on an
    input (422 ``invalid-model``): a version that fails on most inputs is broken."""
    return is_outage(exc) or isinstance(exc, InvalidModel)


def _png(mask: NDArray[np.uint8]) -> bytes:
    import pyvips

    return bytes(pyvips.Image.new_from_array(np.ascontiguousarray(mask)).write_to_buffer(".png"))


def measure_mask(
    mask: NDArray[np.uint8],
    image: NDArray[np.generic],
    *,
    pixel_size_um: float | None = None,
    spec: InputSpec | None = None,
) -> dict[str, Any]:
    """Per-object measurements of a binary mask with the analysis measurements
    (:func:`pixelmill.imaging.analysis.measure.measure_objects`): the mask is split into
    objects first (:meth:`InputSpec.objects <pixelmill.ml.spec.InputSpec.objects>`, with
    the model's ``grow``, ``min_object_fraction`` and ``fill_holes``).
    At most 1000 objects are listed."""
    import math

    from pixelmill.imaging.analysis.measure import measure_objects

    labels = (spec or InputSpec()).objects(mask > 0)
    labels = labels.astype(np.uint16 if labels.max() < 65535 else np.uint32)
    intensity = image
    if image.ndim == 3 and image.shape[2] in (2, 4):  # drop alpha
        intensity = image[..., : image.shape[2] - 1]
    table = measure_objects(labels, intensity, pixel_size_um=pixel_size_um)
    areas = np.asarray(table.column("area_px").to_pylist(), dtype=np.float64)

    def clean(value: Any) -> Any:
        return None if isinstance(value, float) and not math.isfinite(value) else value

    return {
        "count": int(table.num_rows),
        "area_px": {
            "mean": float(areas.mean()) if areas.size else 0.0,
            "median": float(np.median(areas)) if areas.size else 0.0,
            "total": float(areas.sum()),
        },
        "pixel_size_um": pixel_size_um,
        "objects": [
            {k: clean(v) for k, v in row.items()} for row in table.slice(0, 1000).to_pylist()
        ],
        "truncated": table.num_rows > 1000,
    }
