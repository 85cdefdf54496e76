"""Encode a libvips image to an output format, and negotiate ``format=auto``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyvips

from pixelmill.errors import CorruptImage, InvalidParameter
from pixelmill.imaging.alpha import drop_opaque_alpha
from pixelmill.imaging.formats import ImageFormat
from pixelmill.imaging.pixels import to_display

#: encoder effort chosen for on-the-fly serving (speed over the last percent of size)
_SAVE_OPTIONS: dict[ImageFormat, dict[str, Any]] = {
    ImageFormat.JPEG: {"optimize_coding": False, "subsample_mode": "auto"},
    ImageFormat.PNG: {"compression": 6, "effort": 1},
    ImageFormat.WEBP: {"effort": 2},
    ImageFormat.AVIF: {"effort": 0},  # 4.5x less CPU than 2 for the same bytes (benchmarks.md)
    ImageFormat.TIFF: {"compression": "deflate"},
}


def encode(
    image: pyvips.Image,
    fmt: ImageFormat,
    *,
    quality: int,
    strip: bool = True,
    keep_icc: bool = False,
    background: tuple[int, int, int] = (255, 255, 255),
    depth: int = 16,
    progressive: bool = False,
    lossless: bool = False,
    stop: Callable[[], bool] | None = None,
) -> bytes:
    """Encode ``image`` as ``fmt`` (quality 1..100 where the format has one).

    Converts to 8-bit sRGB/grey first, except that PNG and TIFF keep 16-bit images
    16-bit when ``depth`` is 16 (TIFF keeps any 8 or 16-bit image as it is). JPEG has no
    transparency: an alpha channel is flattened onto ``background`` (RGB 0..255).
    ``strip`` drops EXIF, XMP, IPTC and the ICC profile (the pipeline converted the
    pixels to sRGB); ``keep_icc`` keeps the ICC profile even so. ``progressive`` makes
    a progressive JPEG or an interlaced PNG/GIF; ``lossless`` a lossless WebP. An image
    with a ``page-height`` (frames stacked top to bottom) is an animation in GIF and
    WebP. Small stripped baseline JPEGs are encoded by OpenCV's libjpeg-turbo, the rest
    by libvips.

    ``stop`` is asked as libvips computes (many times a second); once it says yes the
    computation is abandoned and :class:`CorruptImage` raised (the caller knows why).
    An image larger than ``fmt`` holds is :class:`InvalidParameter` before any pixel is
    computed (:func:`check_fits`).
    """
    check_fits(image, fmt)
    out = _for_format(image, fmt, depth=depth)
    if fmt is ImageFormat.JPEG and out.hasalpha():
        out = out.flatten(background=_flat_background(background, out.bands - 1))
    if stop is not None:
        out = watched(out, stop)
    small = out.width * out.height <= _SMALL_JPEG_PIXELS
    if fmt in _ALPHA_KEPT and small and out.hasalpha() and not _animated(out):
        out = _without_opaque_alpha(out)
        if stop is not None:  # the encoder's own pass over the computed pixels
            out = watched(out, stop)
    if fmt is ImageFormat.JPEG and strip and not keep_icc and small and not progressive:
        return _small_jpeg(out, quality)
    options = dict(_SAVE_OPTIONS.get(fmt, {}))
    if fmt in QUALITY_FORMATS:
        options["Q"] = quality
    if progressive and fmt in (ImageFormat.JPEG, ImageFormat.PNG, ImageFormat.GIF):
        options["interlace"] = True
    if lossless and fmt is ImageFormat.WEBP:
        options["lossless"] = True
    options["keep"] = "all" if not strip else ("icc" if keep_icc else "none")
    try:
        return bytes(out.write_to_buffer(fmt.suffix, **options))
    except pyvips.Error as exc:  # libvips' words are the cause, logged at the edge
        raise CorruptImage(FAILED) from exc


FAILED = "cannot render the image: its data is corrupt or truncated"

#: the largest width and height (of each frame) an output format holds: libjpeg-turbo's
#: JPEG_MAX_DIMENSION, WebP's 14-bit sizes, libvips' heifsave check (AVIF), GIF's 16-bit
#: sizes. PNG and TIFF hold 2^31 pixels a side and more: no render reaches that
MAX_SIDE = {
    ImageFormat.JPEG: 65500,
    ImageFormat.WEBP: 16383,
    ImageFormat.AVIF: 16384,
    ImageFormat.GIF: 65535,
}


def check_fits(image: pyvips.Image, fmt: ImageFormat) -> None:
    """Raise :class:`InvalidParameter` (422) when ``image`` is wider or higher than ``fmt``
    holds (:data:`MAX_SIDE`): the output asked for does not exist in that format, which
    is the request's doing, not the source's. A GIF, WebP or AVIF of frames stacked top
    to bottom (``page-height``) is measured by its frames, as the encoder saves them."""
    limit = MAX_SIDE.get(fmt)
    if limit is None:
        return
    height = image.height if fmt is ImageFormat.JPEG else _frame_height(image)
    if image.width <= limit and height <= limit:
        return
    raise InvalidParameter(
        f"{fmt.value.upper()} holds at most {limit} pixels a side and this output is "
        f"{image.width}x{height}: ask for a smaller size (w, h) or PNG or TIFF",
        format=fmt.value,
        max_side=limit,
        width=image.width,
        height=height,
    )


def _frame_height(image: pyvips.Image) -> int:
    # libvips' rule (vips_image_get_page_height): a page-height that divides the height
    if image.get_typeof("page-height"):
        page = int(image.get("page-height"))
        if page > 0 and image.height % page == 0:
            return page
    return int(image.height)


#: outputs that store an alpha band: a small one is computed into memory and loses that
#: band when it is opaque on every pixel (the same picture, one band less to encode: a
#: 400x300 PNG 1.3 ms and 7 % of its bytes, docs/benchmarks.md "Render fixed cost").
#: Not WebP: libwebp drops an opaque alpha itself
_ALPHA_KEPT = (ImageFormat.PNG, ImageFormat.AVIF)


def _without_opaque_alpha(image: pyvips.Image) -> pyvips.Image:
    try:
        return drop_opaque_alpha(image.copy_memory())
    except pyvips.Error as exc:  # stopped, or the source's data ran out
        raise CorruptImage(FAILED) from exc


def _animated(image: pyvips.Image) -> bool:
    return bool(image.get_typeof("page-height")) and image.get("page-height") < image.height


def watched(image: pyvips.Image, stop: Callable[[], bool]) -> pyvips.Image:
    """``image``, or a new image of its own, whose computation libvips abandons once
    ``stop()`` is true: compute the returned image, not ``image``.

    The handler never goes on an image a cached operation keeps (shared with the next
    call that asks for the same thing): it would outlive its Python callback (pyvips
    keeps the callback on the wrapper, not on the libvips object) and crash the
    process when that image is computed again, and a kill left on it would fail the
    next request. Such an image gets a private ``copy`` (an operation libvips never
    caches); one that only this wrapper holds is private already (a pyvips call costs
    ~0.1 ms, a tenth of a small render)."""
    alone = pyvips.ffi.cast("GObject *", image.pointer).ref_count == 1
    private = image if alone else image.copy()

    def on_eval(target: pyvips.Image, _progress: Any) -> None:
        if stop():
            target.set_kill(True)

    private.set_progress(True)
    private.signal_connect("eval", on_eval)
    return private


#: formats whose encoder takes a quality
QUALITY_FORMATS = (ImageFormat.JPEG, ImageFormat.WEBP, ImageFormat.AVIF)

#: the lowest quality ``max_bytes`` goes down to
MIN_QUALITY = 10


def encode_within(
    image: pyvips.Image, fmt: ImageFormat, *, max_bytes: int, quality: int, **options: Any
) -> bytes:
    """Encode at ``quality``, or at the highest lower quality whose output is at most
    ``max_bytes`` (a bisection, ~log2(quality) encodes of pixels computed once).

    Raises :class:`InvalidParameter` (422) when even :data:`MIN_QUALITY` does not fit,
    or the format has no quality to lower (PNG, TIFF, GIF, lossless WebP), or when the
    image is larger than the format holds (checked before its pixels are computed).
    """
    check_fits(image, fmt)
    image = image.copy_memory()
    body = encode(image, fmt, quality=quality, **options)
    if len(body) <= max_bytes:
        return body
    if fmt not in QUALITY_FORMATS or (options.get("lossless") and fmt is ImageFormat.WEBP):
        raise InvalidParameter(
            f"the {fmt.value} output is {len(body)} bytes, above max_bytes={max_bytes}, "
            "and the format has no quality to lower",
            size=len(body),
        )
    best: bytes | None = None
    low, high = MIN_QUALITY, quality - 1
    while low <= high:
        mid = (low + high) // 2
        candidate = encode(image, fmt, quality=mid, **options)
        if len(candidate) <= max_bytes:
            best, low = candidate, mid + 1
        else:
            high = mid - 1
    if best is None:
        raise InvalidParameter(
            f"even quality {MIN_QUALITY} gives more than max_bytes={max_bytes} bytes; "
            "ask for a smaller size or another format",
        )
    return best


def _for_format(image: pyvips.Image, fmt: ImageFormat, *, depth: int) -> pyvips.Image:
    """The image in a pixel format ``fmt`` stores: 8-bit unless PNG/TIFF may keep more."""
    pixel = str(image.format)
    if fmt is ImageFormat.TIFF and pixel == "uchar":
        return image
    if fmt in (ImageFormat.TIFF, ImageFormat.PNG) and pixel == "ushort" and depth == 16:
        return image
    return to_display(image)


def _flat_background(rgb: tuple[int, int, int], bands: int) -> list[int]:
    if bands >= 3:
        return list(rgb[:3])
    # grey: the colour's luminance (Rec. 601 weights, as libvips' sRGB -> B_W)
    return [round(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])]


#: JPEG outputs up to this many pixels are encoded by OpenCV (same libjpeg-turbo
#: quantisation and 4:2:0-below-q90 rule as libvips' ``subsample_mode=auto``) in the
#: calling thread: a 300 px thumbnail costs ~1 ms less CPU than through a libvips sink
#: and its worker threads (docs/benchmarks.md, "Render"). Bigger ones stream via libvips.
_SMALL_JPEG_PIXELS = 1_000_000


def _small_jpeg(image: pyvips.Image, quality: int) -> bytes:
    """Encode an 8-bit sRGB or grey libvips image as a baseline JPEG without metadata."""
    import cv2

    try:
        pixels = image.numpy()  # computes the (lazy) pipeline into memory
    except pyvips.Error as exc:
        raise CorruptImage(FAILED) from exc
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    elif pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    sampling = (
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444
        if quality >= 90
        else cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420
    )
    params = [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, sampling]
    ok, body = cv2.imencode(".jpg", pixels, params)
    if not ok:
        raise CorruptImage("cannot render the image: the JPEG encoder refused it")
    return body.tobytes()


def negotiate(accept: str | None, *, has_alpha: bool, allow_avif: bool = False) -> ImageFormat:
    """Pick the output of ``format=auto`` from an ``Accept`` header.

    AVIF when allowed and accepted, else WebP when accepted, else PNG for images with
    transparency and JPEG otherwise. Responses must carry ``Vary: Accept``.
    """
    accepted = _accepted_types(accept or "")
    if allow_avif and "image/avif" in accepted:
        return ImageFormat.AVIF
    if "image/webp" in accepted:
        return ImageFormat.WEBP
    return ImageFormat.PNG if has_alpha else ImageFormat.JPEG


def _accepted_types(header: str) -> set[str]:
    types = set()
    for part in header.split(","):
        media, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and media:
            types.add(media.strip().lower())
    return types
