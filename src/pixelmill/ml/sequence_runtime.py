"""Serving time-lapse models (task ``timelapse``) with ONNX Runtime: the registry's
signature check and trial, and per-frame probabilities over sliding windows.

The ONNX model takes ``input`` float32 (N, T, C, H, W), T = ``spec.frames`` fixed, N,
H and W dynamic, and answers ``output`` (N, T, 1, H, W) probabilities. A sequence of any
length gets one mask per frame: each frame is predicted from the window of T frames
around it (centred where the sequence allows, :func:`~.sequence_training.windows`);
a sequence shorter than the window is lengthened by repeating its last frame. Frames are
grey (colour averaged, :func:`~.preprocess.to_planes`), normalised one by one, padded to
``spec.multiple`` and run whole (no tiling: the frame's pixels are bounded by the
service). Windows are batched up to ``max_batch_pixels``. No torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pixelmill.errors import InvalidInput
from pixelmill.ml.export import INPUT, OUTPUT
from pixelmill.ml.preprocess import normalize, pad_to_multiple, to_planes
from pixelmill.ml.sequence_training import windows
from pixelmill.ml.spec import InputSpec

Run = Callable[[NDArray[np.float32]], NDArray[np.float32]]


def _dim(d: Any) -> int | None:
    return d if isinstance(d, int) and d > 0 else None


def signature_problems(session: Any, spec: InputSpec) -> list[str]:
    """How the session disagrees with what the runtime feeds a time-lapse model."""
    inputs = {a.name: a for a in session.get_inputs()}
    outputs = {a.name: a for a in session.get_outputs()}
    if spec.frames is None:
        return ["a timelapse model needs input_spec.frames (the window length)"]
    if set(inputs) != {INPUT} or OUTPUT not in outputs:
        return [
            f"the model must have one input {INPUT!r} and an output {OUTPUT!r}, has "
            f"{sorted(inputs)} and {sorted(outputs)}"
        ]
    problems = []
    shape = list(inputs[INPUT].shape or [])
    if inputs[INPUT].type != "tensor(float)" or len(shape) != 5:
        problems.append(
            f"input {INPUT!r} is {inputs[INPUT].type} {shape}; a timelapse model takes "
            "float32 (batch, frames, channels, height, width)"
        )
    else:
        batch, frames, channels, rows, cols = (_dim(d) for d in shape)
        if batch is not None:
            problems.append(f"input {INPUT!r} has a fixed batch of {batch}; it must be dynamic")
        if frames is not None and frames != spec.frames:
            problems.append(
                f"input {INPUT!r} takes {frames} frames but input_spec.frames is {spec.frames}"
            )
        if channels is not None and channels != spec.channels:
            problems.append(
                f"input {INPUT!r} takes {channels} channel(s) but input_spec.channels is "
                f"{spec.channels}"
            )
        if rows is not None or cols is not None:
            problems.append(f"input {INPUT!r} has a fixed height/width; they must be dynamic")
    if len(list(outputs[OUTPUT].shape or [])) != 5:
        problems.append(f"output {OUTPUT!r} must be (batch, frames, 1, height, width)")
    return problems


def trial(session: Any, spec: InputSpec) -> list[str]:
    """Run the model once on a zero window; its output must be one mask per frame."""
    side = spec.multiple * math.ceil(64 / spec.multiple)
    frames = spec.frames or 1
    x = np.zeros((1, frames, spec.channels, side, side), np.float32)
    out = np.asarray(session.run([OUTPUT], {INPUT: x})[0])
    want = (1, frames, 1, side, side)
    if out.shape != want:
        return [f"on a {list(x.shape)} input the output is {list(out.shape)}; expected {want}"]
    return []


def prepare(frames: NDArray[Any], spec: InputSpec) -> NDArray[np.float32]:
    """(T, C, H, W) normalised planes of (T, H, W) or (T, H, W, S) frames."""
    arr = np.asarray(frames)
    if arr.ndim not in (3, 4) or min(arr.shape[:3]) < 1:
        raise InvalidInput(f"expected frames (T, H, W[, S]), got an array of shape {arr.shape}")
    return np.stack([normalize(to_planes(f, spec.channels), spec.p_low, spec.p_high) for f in arr])


def probabilities(
    run: Run,
    frames: NDArray[Any],
    spec: InputSpec,
    *,
    max_batch_pixels: int = 8 * 1024 * 1024,
    scale: float = 1.0,
) -> NDArray[np.float32]:
    """Per-frame foreground probability (T, H, W) of ``frames`` (T, H, W[, S]) with the
    model ``run`` ((N, window, C, h, w) -> (N, window, 1, h, w)); see the module docs.
    ``scale`` resizes the frames first (0.5: objects twice the trained size); the
    probabilities come back at the frames' own size."""
    if scale != 1.0:
        return _scaled(run, np.asarray(frames), spec, max_batch_pixels, scale)
    window = spec.frames or 1
    planes = prepare(frames, spec)
    length, _, rows, cols = planes.shape
    if length < window:
        planes = np.concatenate([planes, np.repeat(planes[-1:], window - length, axis=0)])
    padded = np.stack([pad_to_multiple(p, spec.multiple)[0] for p in planes])
    plan = windows(length, window)
    per_window = window * padded.shape[2] * padded.shape[3]
    step = max(1, max_batch_pixels // max(per_window, 1))
    out = np.zeros((length, rows, cols), np.float32)
    for first in range(0, length, step):
        chunk = plan[first : first + step]
        batch = np.stack([padded[start : start + window] for start, _ in chunk])
        probs = run(np.ascontiguousarray(batch, np.float32))
        for k, (_, at) in enumerate(chunk):
            out[first + k] = probs[k, at, 0, :rows, :cols]
    return out


def _scaled(
    run: Run, frames: NDArray[Any], spec: InputSpec, max_batch_pixels: int, scale: float
) -> NDArray[np.float32]:
    import cv2

    if not 0.05 <= scale <= 8:
        raise InvalidInput(f"scale must be between 0.05 and 8, got {scale}")
    rows, cols = frames.shape[1:3]
    size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
    area = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    work = frames if frames.dtype in (np.uint8, np.uint16) else frames.astype(np.float32)
    small = np.stack([cv2.resize(f, size, interpolation=area) for f in work])
    prob = probabilities(run, small, spec, max_batch_pixels=max_batch_pixels)
    back = [cv2.resize(p, (cols, rows), interpolation=cv2.INTER_LINEAR) for p in prob]
    return np.stack(back).astype(np.float32)
