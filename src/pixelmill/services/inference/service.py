"""Serve registry models with ONNX Runtime: sessions cached per version, tiled inference
for large images, dynamic batching across concurrent requests, drift monitoring (off the
request path, :mod:`.bookkeeping`), and results stored as images or answered inline.
Never imports torch."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pixelmill.backends.breaker import Breakers, is_outage
from pixelmill.backends.metadata.models import VersionRecord
from pixelmill.errors import ImageTooLarge, InvalidModel, InvalidParameter, public_text
from pixelmill.ml.drift import DriftMonitor, DriftState, flag_note
from pixelmill.ml.onnx_model import Bounds, OnnxModel, Prediction
from pixelmill.ml.preprocess import decode, header_size
from pixelmill.ml.spec import InputSpec
from pixelmill.observability import metrics, tracing
from pixelmill.services.images import ImageService
from pixelmill.services.inference.answers import (
    PNG,
    answer_head,
    encode_mask,
    mask_info,
    measure_mask,
)
from pixelmill.services.inference.bookkeeping import Bookkeeper, answering, leaves_a_core
from pixelmill.services.inference.grants import PredictGrants
from pixelmill.services.inference.loaded import InlineMask, LoadedCache, LoadedModel
from pixelmill.services.inference.predictor import Predictor
from pixelmill.services.inference.resolution import ResolvedRefs
from pixelmill.services.inference.rollback import RollbackWatcher
from pixelmill.services.model_registry import ModelRegistry
from pixelmill.settings import MLSettings

log = logging.getLogger(__name__)


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
        self._loaded = LoadedCache(maxsize=settings.loaded_models)
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self.refs = ResolvedRefs(registry, settings.resolve_ttl_s)
        #: who may predict with which model, remembered as long as what aliases name
        self.grants = PredictGrants(registry, settings.resolve_ttl_s)
        self.bookkeeper = Bookkeeper(
            settings.bookkeeping_queue,
            lambda: self.watcher,
            beside_runtime=leaves_a_core(settings.inference_threads),
        )

    # -- loading ------------------------------------------------------------------------
    def load(self, ref: str) -> LoadedModel:
        """The loaded model for ``ref`` (resolving the alias now), loading it on first use.
        At most ``settings.loaded_models`` versions stay loaded (LRU); what an alias names
        is remembered for ``settings.resolve_ttl_s`` (:mod:`.resolution`)."""
        version = self.refs.resolve(ref)
        with self._lock:
            loaded = self._loaded.get(version.id)
            if loaded is not None:
                return loaded
            gate = self._loading.setdefault(version.id, threading.Lock())
        with gate:  # one load per version even under concurrent first requests
            with self._lock:
                if version.id in self._loaded:
                    return self._loaded[version.id]
            try:
                loaded = self._open(version)
            except BaseException:  # a failed load leaves no gate behind
                with self._lock:
                    self._loading.pop(version.id, None)
                raise
            with self._lock:
                self._loaded[version.id] = loaded  # may evict the LRU one
                metrics.MODELS_LOADED.set(len(self._loaded))
                self._loading.pop(version.id, None)
                evicted = self._loaded.take_evicted()
            for old in evicted:  # outside the lock: closing waits for a running batch
                old.model.close()
            log.info("loaded model %s in %.3fs", version.ref, loaded.load_seconds)
            return loaded

    def _open(self, version: VersionRecord) -> LoadedModel:
        """A new session (and batcher and drift monitor) for ``version``."""
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
            bounds=Bounds.of(s),  # the tile (ml.tile_size), memory bounds, arena cap
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
            version,
            model,
            monitor,
            load_seconds=time.perf_counter() - started,
            drift_state=monitor.state().to_dict(),
        )
        metrics.model_loaded(version.model, str(version.version))
        return loaded

    @staticmethod
    def _instrument(model: OnnxModel, name: str) -> None:
        run = model.run
        histogram = metrics.MODEL_BATCH_SIZE.labels(name)

        def counted(batch: NDArray[np.float32]) -> NDArray[np.float32]:
            histogram.observe(len(batch))
            with tracing.stage("inference.batch", {"pixelmill.model": name, "size": len(batch)}):
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
        self.bookkeeper.close()  # the statistics of every answered prediction count
        with self._lock:
            self._loaded.clear()
            evicted = self._loaded.take_evicted()
        for old in evicted:
            old.model.close()

    # -- predicting ---------------------------------------------------------------------
    def run(
        self,
        loaded: LoadedModel,
        image: NDArray[np.generic],
        *,
        threshold: float | None = None,
        scale: float = 1.0,
        labels: NDArray[np.integer] | None = None,
        frames: bool = False,
    ) -> Prediction:
        """Predict on an array, with metrics; the drift observation is queued
        (:class:`~.bookkeeping.Bookkeeper`). ``labels``: the cells of a graph model;
        ``frames``: ``image`` is the frames (T, H, W[, bands]) of a time-lapse model."""
        lead = 1 if frames else 0  # frames: the frame axis comes first
        pixels = int(image.shape[lead]) * int(image.shape[lead + 1])
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
        call: Any = loaded.model.predict_frames if frames else loaded.model.predict
        extra = {} if frames else {"labels": labels}
        try:
            with self.bookkeeper.in_runtime():
                if breaker is None:
                    prediction = call(image, threshold=threshold, scale=scale, **extra)
                else:
                    prediction = breaker.call(
                        call, image, threshold=threshold, scale=scale, **extra
                    )
        except Exception as exc:
            loaded.errors += 1
            loaded.last_error = public_text(exc)[:500]
            metrics.MODEL_PREDICTIONS.labels(v.model, str(v.version), "error").inc()
            # a caller's bad input (4xx) is not the version's failure: neither its
            # breaker nor its rollback watch counts it
            if self.watcher is not None and _model_failure(exc):
                self.watcher.observe(v, ok=False, seconds=time.perf_counter() - started)
            raise
        seconds = time.perf_counter() - started
        metrics.MODEL_INFERENCE_SECONDS.labels(v.model).observe(seconds)
        metrics.MODEL_PREDICTIONS.labels(v.model, str(v.version), "ok").inc()
        loaded.predictions += 1
        loaded.last_error = None
        self.bookkeeper.submit(loaded, image[len(image) // 2] if frames else image, seconds)
        return prediction

    @answering
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
        labels_image_id: str | None = None,
        segmenter: str | None = None,
    ) -> dict[str, Any]:
        """Predict on a stored image (``image_id``) or on image bytes (``data``, which are
        stored as a new image first). The mask is stored as a PNG image of ``owner_id``'s
        (unless not ``store``); its id is in the result, with the model version, the
        drift state after the last counted image and optional measurements. A graph
        model classifies the cells of ``labels_image_id`` or, without it, those
        ``segmenter`` finds (:mod:`.cells`)."""
        loaded = self.load(ref)
        if loaded.model.spec.task == "timelapse":
            from pixelmill.services.inference.timelapse import predict_timelapse

            return predict_timelapse(
                self, loaded, image_id, data, owner_id, threshold=threshold, scale=scale
            )
        image, source_id, pixel_size = self._source(image_id, data, owner_id, keep=True)
        if loaded.model.spec.task == "graph":
            from pixelmill.services.inference.cells import predict_cells

            body = answer_head(loaded, source_id)
            return predict_cells(self, loaded, image, body, labels_image_id, segmenter, scale)
        prediction = self.run(loaded, image, threshold=threshold, scale=scale)
        body = answer_head(loaded, source_id)
        if prediction.mask is not None:
            body["tiles"] = prediction.tiles
            body["foreground_fraction"] = round(float((prediction.mask > 0).mean()), 6)
            if store:
                mask_record, _ = self.images.ingest_bytes(
                    encode_mask(prediction.mask),
                    source="inference",
                    owner_id=owner_id,
                    info=mask_info(prediction.mask),  # our own PNG: nothing read back
                )
                body["mask_image_id"] = mask_record.id
            if measure:
                body["measurements"] = measure_mask(
                    prediction.mask,
                    image,
                    pixel_size_um=pixel_size,
                    spec=loaded.model.spec,
                    distance=prediction.distance,
                )
        else:
            body["label"] = prediction.label
            body["scores"] = prediction.scores
        return body

    @answering
    def predict_inline(
        self,
        ref: str,
        *,
        image_id: str | None = None,
        data: bytes | None = None,
        threshold: float | None = None,
        scale: float = 1.0,
        media_type: str = PNG,
    ) -> InlineMask | dict[str, Any]:
        """Predict without storing anything: neither the mask nor uploaded ``data``. A
        segmentation answers with the mask itself (``media_type``: PNG or ``.npy``) and
        the version in headers; a classification with its usual JSON."""
        loaded = self.load(ref)
        if loaded.model.spec.task == "timelapse":
            raise InvalidParameter(
                "a time-lapse model answers JSON (its masks are stored): store on"
            )
        image, source_id, _ = self._source(image_id, data, "", keep=False)
        prediction = self.run(loaded, image, threshold=threshold, scale=scale)
        v = loaded.version
        if prediction.mask is None:
            return {
                **answer_head(loaded, source_id),
                "label": prediction.label,
                "scores": prediction.scores,
            }
        headers = {
            "Pixelmill-Model": v.model,
            "Pixelmill-Model-Version": str(v.version),
            "Pixelmill-Tiles": str(prediction.tiles),
            "Pixelmill-Foreground-Fraction": f"{float((prediction.mask > 0).mean()):.6f}",
        }
        if source_id is not None:
            headers["Pixelmill-Image-Id"] = source_id
        return InlineMask(encode_mask(prediction.mask, media_type), media_type, headers)

    def _source(
        self, image_id: str | None, data: bytes | None, owner_id: str, *, keep: bool
    ) -> tuple[NDArray[np.generic], str | None, float | None]:
        """The image to predict on, its id (``None``: bytes not kept) and pixel size.
        Bytes are stored as a new image of ``owner_id``'s when ``keep``. Too many pixels
        → 413, found from the record or the header before decoding."""
        if image_id is not None:
            record = self.images.record(image_id)
            data = self.images.storage.get(record.storage_key)
            width, height = record.width, record.height
            source_id, pixel_size = record.id, record.pixel_size_um
        elif keep:
            assert data is not None
            record, _ = self.images.ingest_bytes(data, source="upload", owner_id=owner_id)
            width, height = record.width, record.height
            source_id, pixel_size = record.id, record.pixel_size_um
        else:
            assert data is not None
            width, height = header_size(data)
            source_id, pixel_size = None, None
        if width * height > self.settings.max_predict_pixels:
            raise ImageTooLarge(
                f"the image has {width * height} pixels; predictions accept at "
                f"most {self.settings.max_predict_pixels}"
            )
        return decode(data), source_id, pixel_size

    # -- health -------------------------------------------------------------------------
    def health(self, ref: str, *, load: bool = False) -> dict[str, Any]:
        """Loaded/ready state of the version ``ref`` names (loading it when ``load``)."""
        self.bookkeeper.flush()
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
        self.bookkeeper.flush()
        with self._lock:
            items = list(self._loaded.values())
        return [i.health() for i in items]

    def drift(self, ref: str) -> dict[str, Any]:
        """Drift of the version ``ref`` names, counting every prediction answered so far."""
        self.bookkeeper.flush()
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
