"""The serving runtime: an ONNX Runtime session plus the model's pre/post-processing.

No torch anywhere on this path. ``onnxruntime`` is imported when a model is loaded.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pixelmill.errors import CorruptImage, InvalidInput
from pixelmill.ml import onnx_bounds, onnx_check, tiling
from pixelmill.ml.batching import BATCH_PIXELS, DynamicBatcher, batch_limit
from pixelmill.ml.export import INPUT, OUTPUT
from pixelmill.ml.onnx_bounds import Bounds as Bounds
from pixelmill.ml.preprocess import normalize, pad_to_multiple, resize_planes, to_planes
from pixelmill.ml.spec import InputSpec

#: the cap of the process's shared ONNX Runtime arena, once registered
_ARENA: list[int] = []
_ARENA_LOCK = threading.Lock()


def _shared_arena(ort: Any, max_bytes: int) -> None:
    """Register the process's one capped CPU arena (the first cap asked for wins): a run
    of a session using it that needs more than ``max_bytes`` fails instead of growing."""
    with _ARENA_LOCK:
        if not _ARENA:
            config = ort.OrtArenaCfg({"max_mem": max_bytes, "arena_extend_strategy": 1})
            cpu = ort.OrtMemoryInfo(
                "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
            )
            ort.create_and_register_allocator(cpu, config)
            _ARENA.append(max_bytes)


def session(onnx_bytes: bytes, *, threads: int = 0, arena_max_bytes: int = 0) -> Any:
    """An ``onnxruntime.InferenceSession`` tuned for CPU serving: ``threads`` intra-op
    threads (0 = one per core), one inter-op thread, no spin-waiting, full graph
    optimisation; with ``arena_max_bytes`` its tensors live in the process's shared
    arena capped at that many bytes (``ml.arena_max_bytes``, :func:`_shared_arena`;
    constants folded while loading are not in it: :mod:`pixelmill.ml.onnx_bounds`
    bounds those before).

    Models that could read a file of the server or load foreign code are refused first
    (422, :mod:`pixelmill.ml.onnx_check`); the session is built from the bytes, with
    an empty private folder as the only place external data could resolve."""
    import onnxruntime as ort

    onnx_check.refuse_unsafe(onnx_bytes)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or os.cpu_count() or 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # idle pool threads sleep instead of spinning: between batches the spinning burnt
    # CPU that the request threads (decoding, normalising) needed on a small machine
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.add_session_config_entry(
        "session.model_external_initializers_file_folder_path", onnx_check.empty_folder()
    )
    if arena_max_bytes:
        _shared_arena(ort, arena_max_bytes)
        opts.add_session_config_entry("session.use_env_allocators", "1")
    try:
        return ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise CorruptImage(f"not a loadable ONNX model: {onnx_check.clean(exc)}") from exc


@dataclass
class Prediction:
    """``mask``: (rows, cols) uint8 0/255 for segmentation; ``probability``: (rows, cols)
    float32; ``scores``: class → probability for classification."""

    mask: NDArray[np.uint8] | None = None
    probability: NDArray[np.float32] | None = None
    label: str | None = None
    scores: dict[str, float] | None = None
    tiles: int = 1
    #: distance-head models: the predicted per-object distance map (rows, cols) float32,
    #: which ``InputSpec.objects`` seeds its watershed from
    distance: NDArray[np.float32] | None = None
    #: graph models: the per-cell table (column → values) and the image's summary
    cells: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None


class OnnxModel:
    """A loaded model version: runs whole images of any size.

    Segmentation images with a side larger than ``tile`` (default ``spec.tile``, the
    training tile; the service passes ``ml.tile_size``) are cut into the fewest
    ``tile``-sized tiles overlapping by at least ``overlap`` px and blended; smaller ones
    run whole (padded to ``spec.multiple``). ``bounds``: the model is refused (422) if it
    could allocate more (:mod:`pixelmill.ml.onnx_bounds`; its ``side`` is the tile when
    ``tile`` is not given) and runs in the capped arena. With ``max_batch > 1`` inputs
    from concurrent calls are batched dynamically.
    """

    def __init__(
        self,
        onnx_bytes: bytes,
        spec: InputSpec,
        *,
        threads: int = 0,
        max_batch: int = 8,
        max_wait: float = 0.005,
        max_batch_pixels: int = BATCH_PIXELS,
        batching: bool = True,
        overlap: int = 64,
        tile: int | None = None,
        bounds: Bounds | None = None,
    ) -> None:
        self.spec = spec
        if bounds is not None:  # a model registered before the bounds, or under larger ones
            onnx_check.refuse_unsafe(onnx_bytes)
            onnx_bounds.refuse_oversized(onnx_bytes, spec, bounds)
        arena = bounds.arena_bytes if bounds is not None else 0
        self.session = session(onnx_bytes, threads=threads, arena_max_bytes=arena)
        self.max_batch = max(1, max_batch)
        self.max_batch_pixels = max_batch_pixels
        self.tile = tile or (bounds.side if bounds is not None else 0) or spec.tile
        self.overlap = min(overlap, self.tile // 2)
        self.batcher = (
            DynamicBatcher(
                self.run, max_batch=max_batch, max_wait=max_wait, max_batch_pixels=max_batch_pixels
            )
            if batching
            else None
        )

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.close()

    def run(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        """The raw session on an (N, C, H, W) float32 batch; a failure of the model on
        it (a shape it cannot take) is a 422, not a server error."""
        try:
            return np.asarray(self.session.run([OUTPUT], {INPUT: batch})[0])
        except Exception as exc:
            failure = onnx_check.failed_run(exc)
            if failure is None:
                raise
            raise failure from exc

    def _run_many(self, inputs: list[NDArray[np.float32]]) -> list[NDArray[np.float32]]:
        if self.batcher is not None:
            return self.batcher.run(inputs)
        out: list[NDArray[np.float32]] = []
        largest = max((x.shape for x in inputs), key=lambda s: int(np.prod(s[-2:])), default=(1,))
        step = batch_limit(largest, self.max_batch, self.max_batch_pixels)
        for i in range(0, len(inputs), step):
            chunk = inputs[i : i + step]
            if len({x.shape for x in chunk}) == 1:
                out.extend(self.run(np.stack(chunk)))
            else:
                out.extend(self.run(x[None])[0] for x in chunk)
        return out

    def prepare(self, image: NDArray[np.generic]) -> NDArray[np.float32]:
        arr = np.asarray(image)
        if arr.ndim not in (2, 3) or arr.shape[0] < 1 or arr.shape[1] < 1:
            raise InvalidInput(f"expected a 2-D image, got an array of shape {arr.shape}")
        planes = to_planes(arr, self.spec.channels)
        return normalize(planes, self.spec.p_low, self.spec.p_high)

    def probability(self, image: NDArray[np.generic]) -> tuple[NDArray[np.float32], int]:
        """Foreground probability (rows, cols) float32 and the number of tiles used."""
        maps, count = self.maps(image)
        return maps[0], count

    def maps(self, image: NDArray[np.generic]) -> tuple[NDArray[np.float32], int]:
        """Every output channel (K, rows, cols) float32 (foreground first; a distance
        head's distance second) and the number of tiles used."""
        planes = self.prepare(image)
        _, rows, cols = planes.shape
        if rows <= self.tile and cols <= self.tile:
            padded, _ = pad_to_multiple(planes, self.spec.multiple)
            out = self._run_many([padded])[0]
            return out[:, :rows, :cols], 1
        # tiles are multiples of spec.multiple; images smaller than a tile in one
        # dimension are padded up to it in that dimension
        padded, _ = pad_to_multiple(planes, self.spec.multiple, minimum=0)
        prow, pcol = padded.shape[1:]
        m = self.spec.multiple
        shape = (
            tiling.fit(prow, self.tile, self.overlap, m),
            tiling.fit(pcol, self.tile, self.overlap, m),
        )
        tiles = tiling.plan(prow, pcol, shape, self.overlap)
        inputs = []
        for t in tiles:
            x = padded[:, t.row : t.row + t.rows, t.col : t.col + t.cols]
            inputs.append(pad_to_multiple(np.ascontiguousarray(x), self.spec.multiple)[0])
        outs = [
            o[:, : t.rows, : t.cols] for o, t in zip(self._run_many(inputs), tiles, strict=True)
        ]
        blended = tiling.blend(outs, tiles, prow, pcol, self.overlap)
        return blended[:, :rows, :cols], len(tiles)

    def _scaled_maps(
        self, image: NDArray[np.generic], scale: float
    ) -> tuple[NDArray[np.float32], int]:
        import cv2

        if not 0.05 <= scale <= 8:
            raise InvalidInput(f"scale must be between 0.05 and 8, got {scale}")
        rows, cols = image.shape[:2]
        size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
        work: Any = image if image.dtype in (np.uint8, np.uint16) else image.astype(np.float32)
        small = cv2.resize(
            work, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        )
        maps, count = self.maps(np.asarray(small))
        back = [cv2.resize(m, (cols, rows), interpolation=cv2.INTER_LINEAR) for m in maps]
        return np.stack(back).astype(np.float32), count

    def predict(
        self,
        image: NDArray[np.generic],
        *,
        threshold: float | None = None,
        scale: float = 1.0,
        labels: NDArray[np.integer] | None = None,
    ) -> Prediction:
        """Mask and probability (segmentation), label and scores (classification), or
        the cells' classes and graph measurements (graph: ``labels`` is the image's
        instance segmentation).

        ``scale`` resizes a segmentation input first (0.5: objects twice the size the
        model was trained on come out right, like Cellpose's ``diameter``); mask and
        probability are returned at the image's own size."""
        if self.spec.task == "graph":
            return self._cells(image, labels)
        if self.spec.task == "timelapse":  # one frame: a sequence of one
            one = self.predict_frames(np.asarray(image)[None], threshold=threshold, scale=scale)
            assert one.mask is not None and one.probability is not None
            return Prediction(mask=one.mask[0], probability=one.probability[0])
        if self.spec.task == "classification":
            planes = resize_planes(self.prepare(image), self.spec.size or self.spec.tile)
            probs = self._run_many([planes])[0]
            classes = self.spec.classes or [str(i) for i in range(len(probs))]
            best = int(np.argmax(probs))
            return Prediction(
                label=classes[best],
                scores={c: float(p) for c, p in zip(classes, probs, strict=False)},
            )
        if scale != 1.0:
            maps, count = self._scaled_maps(np.asarray(image), scale)
        else:
            maps, count = self.maps(image)
        prob = maps[0]
        cut = self.spec.threshold if threshold is None else threshold
        return Prediction(
            mask=((prob > cut) * 255).astype(np.uint8),
            probability=prob,
            tiles=count,
            distance=maps[1] if self.spec.head == "distance" and len(maps) > 1 else None,
        )

    def predict_frames(
        self, frames: NDArray[np.generic], *, threshold: float | None = None, scale: float = 1.0
    ) -> Prediction:
        """A time-lapse model on frames (T, H, W[, S]): ``mask`` and ``probability`` are
        (T, H, W), one per frame (:func:`pixelmill.ml.sequence_runtime.probabilities`)."""
        from pixelmill.ml.sequence_runtime import probabilities

        if self.spec.task != "timelapse":
            raise InvalidInput(f"a {self.spec.task} model does not predict on frames")
        prob = probabilities(
            self.run, frames, self.spec, max_batch_pixels=self.max_batch_pixels, scale=scale
        )
        cut = self.spec.threshold if threshold is None else threshold
        return Prediction(mask=((prob > cut) * 255).astype(np.uint8), probability=prob)

    def _cells(self, image: NDArray[np.generic], labels: NDArray[np.integer] | None) -> Prediction:
        from pixelmill.ml.graph_runtime import cell_table

        if labels is None:
            raise InvalidInput(
                "a graph model classifies an image's cells: predict with the JSON answer "
                "(store on) and labels_image_id or a segmenter"
            )
        try:
            cells, summary = cell_table(self.session, self.spec, labels, np.asarray(image))
        except Exception as exc:
            failure = onnx_check.failed_run(exc)
            if failure is None:
                raise
            raise failure from exc
        return Prediction(cells=cells, summary=summary)
