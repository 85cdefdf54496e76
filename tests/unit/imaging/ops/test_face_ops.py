"""blur_faces, pixelate_faces and gravity=face with the shipped detector, on a
public-domain portrait (tests/golden/faces): the face is hidden and nothing else is
touched; a face-centred crop keeps the face that a centred crop cuts away."""

from __future__ import annotations

import numpy as np
import pytest
import pyvips
from skimage.metrics import structural_similarity

from pixelmill.imaging import pipeline, render
from pixelmill.imaging.faces import grown
from pixelmill.imaging.ops import OpContext, parse_pipeline
from pixelmill.ml.faces import iou
from tests.faces_helpers import astronaut, detector


def png(pixels: np.ndarray) -> bytes:
    image = pyvips.Image.new_from_array(pixels).copy(interpretation="srgb")
    return bytes(image.write_to_buffer(".png"))


def rendered(source: bytes, query: dict[str, str], ctx: OpContext | None = None) -> np.ndarray:
    steps = render.to_steps(render.parse_render(query, max_side=4096))
    ctx = ctx or OpContext(detect_faces=detector().boxes)
    return np.asarray(pipeline.run(source, steps, ctx).numpy())


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(structural_similarity(a, b, channel_axis=2, data_range=255))


@pytest.mark.parametrize("query", [{"blur_faces": "1"}, {"pixelate_faces": "12"}])
def test_hiding_faces_changes_the_face_and_not_the_rest(query: dict[str, str]) -> None:
    pixels, truth = astronaut()
    ctx = OpContext(detect_faces=detector().boxes)
    out = rendered(png(pixels), query, ctx)
    left, top, w, h = grown(truth[0], 0.0, 512, 512)
    face = (slice(top, top + h), slice(left, left + w))
    assert ssim(out[face], pixels[face]) < 0.5
    # everything outside the found faces' grown boxes is the original, pixel for pixel
    untouched = np.ones((512, 512), bool)
    for found in ctx.artifacts["faces"]:
        x, y, fw, fh = grown(np.asarray(found["box"], np.float32), 0.2, 512, 512)
        untouched[y : y + fh, x : x + fw] = False
    assert untouched.mean() > 0.8
    assert (out[untouched] == pixels[untouched]).all()


def test_blurred_faces_are_no_longer_found() -> None:
    pixels, _ = astronaut()
    out = rendered(png(pixels), {"blur_faces": "1"})
    assert not (detector().boxes(out)[:, 4] >= 0.9).any()


def test_a_face_centred_crop_keeps_the_face_a_centred_crop_cuts_away() -> None:
    pixels, truth = astronaut()
    wide = np.full((512, 1536, 3), 90, np.uint8)
    wide[:, :512] = pixels  # the face near the left edge of a wide frame
    source = png(wide)
    face_crop = rendered(source, {"w": "256", "h": "256", "gravity": "face"})
    centre_crop = rendered(source, {"w": "256", "h": "256"})
    assert face_crop.shape == centre_crop.shape == (256, 256, 3)
    found = detector().boxes(face_crop)
    assert len(found) and iou(found[:1, :4], truth / 2)[0, 0] >= 0.5  # scaled 1/2, left=0
    assert not (detector().boxes(centre_crop)[:, 4] >= 0.9).any()


def test_gravity_face_without_faces_falls_back_to_attention() -> None:
    rng = np.random.default_rng(1)
    pixels = np.full((200, 400, 3), 30, np.uint8)
    pixels[40:120, 280:360] = rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)
    source = png(pixels)
    face = rendered(source, {"w": "100", "h": "100", "gravity": "face"})
    attention = rendered(source, {"w": "100", "h": "100", "gravity": "attention"})
    assert (face == attention).all()


def test_face_ops_in_a_json_pipeline_report_the_boxes() -> None:
    pixels, truth = astronaut()
    ctx = OpContext(detect_faces=detector().boxes)
    steps = parse_pipeline([{"op": "pixelate_faces", "block": 8}, {"op": "resize", "width": 64}])
    out = pipeline.run(png(pixels), steps, ctx)
    assert out.width == 64
    best = np.asarray([ctx.artifacts["faces"][0]["box"]], np.float32)
    assert iou(best, truth)[0, 0] >= 0.5
