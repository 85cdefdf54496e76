"""Opaque GIFs render as RGB — the alpha band libvips gives every GIF dropped — and look
as they did; GIFs with any transparency render exactly as before: alpha kept in PNG,
WebP and AVIF, flattened onto the background in JPEG."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import pyvips

from pixelmill.imaging import encode as encoding
from pixelmill.imaging import gif, pipeline
from pixelmill.imaging.formats import ImageFormat
from pixelmill.imaging.intermediates import whole_image
from pixelmill.imaging.ops import OpContext
from pixelmill.imaging.ops import resize as resize_op
from pixelmill.imaging.render import parse_render, to_steps
from pixelmill.services.intermediates import IntermediateCache
from tests.helpers import libvips_operations

FORMATS = ("jpeg", "png", "webp", "avif")


def _frame(width: int, height: int, seed: int) -> pyvips.Image:
    """A photo-like sRGB frame (smooth noise: many palette colours, dithered by gifsave)."""
    bands = [
        pyvips.Image.perlin(width, height, cell_size=24, seed=seed + b) * 90 + 128 for b in range(3)
    ]
    return bands[0].bandjoin(bands[1:]).cast("uchar").copy(interpretation="srgb")


def _animation(frames: list[pyvips.Image]) -> bytes:
    stacked = pyvips.Image.arrayjoin(frames, across=1).copy()
    stacked.set_type(pyvips.GValue.gint_type, "page-height", frames[0].height)
    stacked.set_type(pyvips.GValue.array_int_type, "delay", [80] * len(frames))
    return bytes(stacked.write_to_buffer(".gif"))


def _with_hole(frame: pyvips.Image) -> pyvips.Image:
    """``frame`` with a fully transparent disc in the middle."""
    xy = pyvips.Image.xyz(frame.width, frame.height)
    centre = ((xy[0] - frame.width / 2) ** 2 + (xy[1] - frame.height / 2) ** 2) ** 0.5
    alpha = (centre > frame.height / 4).ifthenelse(255, 0).cast("uchar")
    return frame.bandjoin(alpha)


OPAQUE = _animation([_frame(160, 120, seed) for seed in (1, 5, 9)])
TRANSPARENT = _animation([_with_hole(_frame(160, 120, seed)) for seed in (1, 5, 9)])
TRANSPARENT_STILL = bytes(_with_hole(_frame(160, 120, 3)).write_to_buffer(".gif"))


def _render(source: bytes, fmt: str, **query: str) -> pyvips.Image:
    """A render as the gateway runs it (frame 0, or every frame for ``pages="all"``),
    decoded back."""
    pages = query.pop("pages", None)
    p = parse_render({"w": "100", "h": "60", "format": fmt, "q": "82", **query}, max_side=8192)
    image = pipeline.run(source, to_steps(p), OpContext(), pages=pages)
    bg = (p.bg or (255, 255, 255, 255))[:3]
    body = encoding.encode(image, ImageFormat(fmt), quality=82, background=(bg[0], bg[1], bg[2]))
    return pyvips.Image.new_from_buffer(body, "", **({"n": -1} if pages == "all" else {}))


def _render_before(
    monkeypatch: pytest.MonkeyPatch, source: bytes, fmt: str, **query: str
) -> pyvips.Image:
    """The same render with the opaque-GIF path turned off (what pixelmill did before)."""
    with monkeypatch.context() as patched:
        patched.setattr(resize_op, "opaque_first_frame", lambda _source: None)
        patched.setattr(encoding, "_ALPHA_KEPT", ())
        patched.setattr(pipeline, "may_be_opaque", lambda _source: False)
        patched.setattr(pipeline, "without_alpha", lambda image: image)
        return _render(source, fmt, **query)


def _psnr(a: pyvips.Image, b: pyvips.Image) -> float:
    x, y = a.numpy().astype(np.float64), b.numpy().astype(np.float64)
    mse = float(np.mean((x - y) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def test_the_first_frame_header_tells_opaque_from_transparent_gifs() -> None:
    assert gif.may_be_opaque(OPAQUE)
    assert not gif.may_be_opaque(TRANSPARENT)
    assert not gif.may_be_opaque(TRANSPARENT_STILL)
    assert not gif.may_be_opaque(bytes(_frame(8, 8, 1).write_to_buffer(".png")))
    assert not gif.may_be_opaque(OPAQUE[:20])  # cut inside the colour table


def test_the_header_check_reads_a_file_too(tmp_path: Any) -> None:
    path = tmp_path / "anim.gif"
    path.write_bytes(OPAQUE)
    assert gif.may_be_opaque(path) and gif.may_be_opaque(str(path))


def test_a_gif_that_ends_inside_a_block_is_truncated(tmp_path: Any) -> None:
    assert not gif.truncated(OPAQUE) and not gif.truncated(TRANSPARENT_STILL)
    assert not gif.truncated(OPAQUE[:-1])  # only the trailer byte missing: every pixel there
    for end in (len(OPAQUE) - 2, len(OPAQUE) // 2, len(OPAQUE) // 6, 20):
        assert gif.truncated(OPAQUE[:end]), end
    assert gif.truncated(OPAQUE[: len(OPAQUE) // 6] + b"\x00\x3b")  # a trailer pasted on
    assert not gif.truncated(bytes(_frame(8, 8, 1).write_to_buffer(".png")))
    path = tmp_path / "cut.gif"
    path.write_bytes(OPAQUE[: len(OPAQUE) // 2])
    assert gif.truncated(path) and gif.truncated(str(path))


def test_an_alpha_that_is_all_255_is_dropped_and_a_real_one_kept() -> None:
    opaque = pyvips.Image.new_from_buffer(OPAQUE, "", n=-1)
    assert opaque.bands == 4  # what libvips gives every GIF
    dropped = gif.without_alpha(opaque)
    assert dropped.bands == 3
    assert (dropped.numpy() == opaque.numpy()[:, :, :3]).all()
    assert gif.without_alpha(pyvips.Image.new_from_buffer(TRANSPARENT, "", n=-1)).bands == 4


def test_an_opaque_png_keeps_its_alpha_band() -> None:
    # this GIF-specific shortcut leaves other formats alone: their opaque alpha is
    # dropped (or kept) by imaging/alpha.py's own checks, where that is cheap
    png = _frame(16, 16, 2).bandjoin(255).write_to_buffer(".png")
    assert gif.without_alpha(pyvips.Image.new_from_buffer(png, "")).bands == 4


def test_a_gif_whose_frame_the_decoder_leaves_part_clear_keeps_its_alpha() -> None:
    # given a header that says opaque but frame data cut short: libnsgif leaves the
    # undecoded rows transparent, and the pixels, not the header, decide
    cut = OPAQUE[: len(OPAQUE) // 6] + b"\x00\x3b"
    assert gif.may_be_opaque(cut)
    decoded = pyvips.Image.new_from_buffer(cut, "")
    if decoded[3].min() == 255:
        pytest.skip("this libvips decodes the cut frame without clear pixels")
    assert gif.opaque_first_frame(cut) is None
    assert _render(cut, "png").bands == 4


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_opaque_gif_renders_as_rgb_and_looks_the_same(
    monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    after = _render(OPAQUE, fmt)
    before = _render_before(monkeypatch, OPAQUE, fmt)
    assert after.bands == 3
    assert (after.width, after.height) == (before.width, before.height) == (100, 60)
    rgb_before = before[:3] if before.bands == 4 else before
    if fmt == "png":  # lossless: the same pixels
        assert before.bands == 4 and before[3].min() == 255
        assert (after.numpy() == rgb_before.numpy()).all()
    else:
        assert _psnr(after, rgb_before) >= 40


def test_an_opaque_gif_frame_is_proven_opaque_without_a_libvips_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given an opaque animated GIF; when its frame 0 renders to JPEG, then the decoded
    # frame's alpha is read once (numpy), not by libvips reductions whose set-up costs
    # ~0.3 ms each (docs/benchmarks.md, "GIF → JPEG: where each millisecond goes")
    ran = libvips_operations(monkeypatch)
    assert _render(OPAQUE, "jpeg").bands == 3
    assert "min" not in ran and "subsample" not in ran
    gif_loads = [name for name in ran if "Nsgif" in name or name.startswith("gifload")]
    assert len(gif_loads) == 1  # one decode of the frame, no second one to probe


@pytest.mark.parametrize("fmt", ("webp", "gif"))
def test_every_frame_of_an_opaque_animation_renders_the_same(
    monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    after = _render(OPAQUE, fmt, pages="all")
    before = _render_before(monkeypatch, OPAQUE, fmt, pages="all")
    assert after.get_n_pages() == before.get_n_pages() == 3
    assert (after.width, after.height) == (before.width, before.height)
    rgb_after = after[:3] if after.bands == 4 else after
    rgb_before = before[:3] if before.bands == 4 else before
    assert _psnr(rgb_after, rgb_before) >= 40


def test_an_opaque_gif_frame_asked_for_by_number_renders_as_rgb(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    after = _render(OPAQUE, "png", pages=1)  # type: ignore[arg-type]
    before = _render_before(monkeypatch, OPAQUE, "png", pages=1)  # type: ignore[arg-type]
    assert after.bands == 3
    assert (after.numpy() == before[:3].numpy()).all()


@pytest.mark.parametrize("source", [TRANSPARENT, TRANSPARENT_STILL], ids=["animated", "still"])
@pytest.mark.parametrize("fmt", ("png", "webp", "avif"))
def test_a_transparent_gif_keeps_its_alpha_exactly_as_before(
    monkeypatch: pytest.MonkeyPatch, source: bytes, fmt: str
) -> None:
    after = _render(source, fmt)
    before = _render_before(monkeypatch, source, fmt)
    assert after.bands == 4 and after[3].min() == 0
    assert (after.numpy() == before.numpy()).all()


def test_a_transparent_gif_in_jpeg_is_flattened_onto_bg_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    after = _render(TRANSPARENT, "jpeg", bg="ff0000")
    before = _render_before(monkeypatch, TRANSPARENT, "jpeg", bg="ff0000")
    assert (after.numpy() == before.numpy()).all()
    centre = after.numpy()[30, 50]
    assert centre[0] > 200 and centre[1] < 60 and centre[2] < 60  # the hole shows bg


def test_every_frame_of_a_transparent_animation_keeps_its_alpha(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    after = _render(TRANSPARENT, "webp", pages="all")
    before = _render_before(monkeypatch, TRANSPARENT, "webp", pages="all")
    assert after.bands == 4 and after[3].min() == 0
    assert (after.numpy() == before.numpy()).all()


def test_a_kept_decode_of_an_opaque_gif_holds_three_bands() -> None:
    store = IntermediateCache(16 * 1024 * 1024)
    opaque = whole_image(OPAQUE, store, "opaque")
    transparent = whole_image(TRANSPARENT, store, "transparent")
    assert opaque is not None and transparent is not None
    assert (opaque.bands, transparent.bands) == (3, 4)


def test_a_huge_opaque_gif_streams_through_the_old_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # decoding a frame into memory to check it would double a huge GIF's memory
    monkeypatch.setattr(gif, "_MEMORY_PIXELS", 160 * 120 - 1)
    assert gif.opaque_first_frame(OPAQUE) is None
    monkeypatch.setattr(gif, "_MEMORY_PIXELS", 160 * 120)
    frame = gif.opaque_first_frame(OPAQUE)
    assert frame is not None and frame.bands == 3
