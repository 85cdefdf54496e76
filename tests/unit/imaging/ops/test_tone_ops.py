"""Tone and filter operations change pixels the way their names promise."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyvips

from pixelmill.imaging import ops
from pixelmill.imaging.pipeline import run


def _checker(size: int = 128) -> pyvips.Image:
    yy, xx = np.mgrid[0:size, 0:size]
    arr = np.where(((xx // 16) + (yy // 16)) % 2 == 0, 60, 190).astype(np.uint8)
    rgb = np.stack([arr, arr, arr], axis=-1)
    return pyvips.Image.new_from_array(rgb).copy(interpretation="srgb")


def _run(*specs: dict[str, Any], image: pyvips.Image | None = None) -> np.ndarray:
    return np.asarray(run(image or _checker(), ops.parse_pipeline(list(specs))).numpy())


def _edge_contrast(arr: np.ndarray) -> float:
    return float(np.abs(np.diff(arr[..., 0].astype(float), axis=1)).mean())


def test_blur_softens_and_sharpen_hardens_edges() -> None:
    base = _edge_contrast(np.asarray(_checker().numpy()))
    assert _edge_contrast(_run({"op": "blur", "sigma": 3})) < base * 0.8
    assert _edge_contrast(_run({"op": "sharpen", "sigma": 1, "amount": 3})) > base


def test_grayscale_gives_one_band() -> None:
    assert _run({"op": "grayscale"}).ndim == 2


def test_brightness_contrast_and_gamma_move_the_tones() -> None:
    base = np.asarray(_checker().numpy()).astype(float)
    brighter = _run({"op": "adjust", "brightness": 1.3})
    assert brighter.mean() > base.mean() + 10
    flatter = _run({"op": "adjust", "contrast": 0.5})
    assert flatter.std() < base.std() * 0.6
    lifted = _run({"op": "adjust", "gamma": 2.0})
    assert lifted.mean() > base.mean()


def test_adjust_leaves_alpha_alone() -> None:
    rgba = _checker().bandjoin(128)
    out = _run({"op": "adjust", "brightness": 2.0}, image=rgba)
    assert out.shape[-1] == 4 and (out[..., 3] == 128).all()


def test_text_watermark_marks_its_corner_only_and_opacity_zero_marks_nothing() -> None:
    grey = pyvips.Image.new_from_array(np.full((200, 300, 3), 40, np.uint8)).copy(
        interpretation="srgb"
    )
    marked = _run(
        {"op": "watermark", "text": "pixelmill", "position": "southeast", "opacity": 1.0},
        image=grey,
    )
    assert marked[100:, 150:].max() > 200  # white text in the bottom-right quarter
    assert marked[:100, :150].max() == 40  # top-left untouched
    invisible = _run(
        {"op": "watermark", "text": "pixelmill", "opacity": 0.0},
        image=grey,
    )
    assert invisible.max() == 40
