"""JPEG decoding shrunk in the DCT: the shrink-on-load fast path of ``resize``.

Big JPEG thumbnails decode through OpenCV's ``IMREAD_REDUCED_*`` (libjpeg-turbo DCT
scaling by the largest power of two that keeps the needed size, as sharp's
``fastShrinkOnLoad``) straight to RGB, and OpenCV's ``INTER_AREA`` does the final resize:
as fast as the best single-thread in-library path we measured, where libvips' own
shrink-on-load keeps a 2x margin and decodes four times the pixels (see
docs/benchmarks.md, "Render"). The caller (``imaging/ops/resize.py``) decides what size
it needs; this module only decodes, and steps aside (``None``) whenever libvips must.

Reads only the bytes or the path it is given; cv2 and Pillow are imported lazily.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pyvips

from pixelmill.imaging.colour import profile_space

if TYPE_CHECKING:
    import numpy as np

    from pixelmill.imaging.intermediates import Intermediates

#: JPEG files up to this size are read whole before decoding (fast); bigger ones stream
_READ_WHOLE_BYTES = 8 * 1024 * 1024

#: EXIF orientation -> OpenCV calls that make stored pixels upright (as libvips autorot)
_ORIENT: dict[int, tuple[str, ...]] = {
    2: ("flip1",),
    3: ("rot180",),
    4: ("flip0",),
    5: ("transpose",),
    6: ("rot90cw",),
    7: ("transpose", "rot180"),
    8: ("rot90ccw",),
}


class ReducedJpeg:
    """A JPEG decoded already shrunk by 2, 4 or 8 in the DCT (see :func:`decode_reduced`).

    ``pixels`` is uint8, (rows, cols, 3) RGB or (rows, cols) grey, in the *stored*
    orientation; ``size`` is the full *upright* (width, height), so output sizes are
    computed from the original and do not pick up the rounding of the shrunk one.
    Resizing happens before orientation (fewer pixels to turn).
    """

    __slots__ = ("info", "orientation", "pixels", "size")

    def __init__(
        self, pixels: np.ndarray, size: tuple[int, int], orientation: int, info: dict[str, Any]
    ) -> None:
        self.pixels = pixels
        self.size = size
        self.orientation = orientation
        self.info = info

    def resized(self, width: int, height: int) -> pyvips.Image:
        """The upright image at exactly ``width`` x ``height`` (area-averaged when shrinking)."""
        import cv2

        turned = self.orientation in (5, 6, 7, 8)
        stored = (height, width) if turned else (width, height)
        rows, cols = self.pixels.shape[:2]
        if stored == (cols, rows):
            pixels = self.pixels
        else:
            shrink = stored[0] <= cols and stored[1] <= rows
            interpolation = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
            pixels = cv2.resize(self.pixels, stored, interpolation=interpolation)
        return self._vips(pixels)

    def image(self) -> pyvips.Image:
        """The whole reduced image, upright."""
        return self._vips(self.pixels)

    def _vips(self, pixels: np.ndarray) -> pyvips.Image:
        import cv2

        for step in _ORIENT.get(self.orientation, ()):
            if step == "transpose":
                pixels = cv2.transpose(pixels)
            elif step.startswith("flip"):
                pixels = cv2.flip(pixels, int(step[-1]))
            else:
                code = {
                    "rot180": cv2.ROTATE_180,
                    "rot90cw": cv2.ROTATE_90_CLOCKWISE,
                    "rot90ccw": cv2.ROTATE_90_COUNTERCLOCKWISE,
                }[step]
                pixels = cv2.rotate(pixels, code)
        rows, cols = pixels.shape[:2]
        bands = 1 if pixels.ndim == 2 else pixels.shape[2]
        # zero-copy: libvips reads the array's memory (and pyvips keeps the array alive);
        # uchar 3 bands is sRGB, 1 band is B_W by default
        image = pyvips.Image.new_from_memory(pixels, cols, rows, bands, "uchar")
        info = self.info
        if "dpi" in info:
            xdpi, ydpi = info["dpi"]
            image = image.copy(xres=float(xdpi) / 25.4, yres=float(ydpi) / 25.4)
        else:
            image = image.copy()  # metadata goes on our own copy, not the shared one
        for name, key in (
            ("exif-data", "exif"),
            ("icc-profile-data", "icc_profile"),
            ("xmp-data", "xmp"),
        ):
            blob = info.get(key)
            if blob:
                image.set_type(pyvips.GValue.blob_type, name, bytes(blob))
        return image


def decode_reduced(
    source: bytes | str,
    needed: Callable[[tuple[int, int]], tuple[int, int] | None],
    *,
    store: Intermediates | None = None,
    source_id: str | None = None,
) -> ReducedJpeg | None:
    """Decode a JPEG already shrunk by 2, 4 or 8 in the DCT, with OpenCV
    (``IMREAD_REDUCED_*``, straight to RGB, EXIF orientation applied by us later).

    ``needed`` maps the upright (width, height) to the smallest decoded size the caller
    can use, or ``None`` when it would enlarge. Returns ``None`` when the fast path does
    not apply and libvips should decode: not a JPEG, CMYK/YCCK, an ICC profile that does
    not describe the pixels, too little shrink, enlarging, or anything OpenCV cannot
    decode. A wide-gamut profile (Display P3) rides along on the result:
    :func:`pixelmill.imaging.colour.to_srgb` converts the reduced pixels.

    With a ``store`` (and the original's ``source_id``) the decode is kept there for
    the next render of the same original at the same shrink
    (:mod:`pixelmill.imaging.intermediates`).
    """
    if isinstance(source, bytes) and not source.startswith(b"\xff\xd8\xff"):
        return None
    from PIL.JpegImagePlugin import JpegImageFile

    fp = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        # the header only (Pillow parses markers in microseconds); the plugin class
        # directly: Image.open() would warn about decompression bombs on 90+ MP images,
        # which the upload already checked against render.max_pixels
        with JpegImageFile(fp) as im:
            mode, stored = im.mode, im.size
            orientation = int(im.getexif().get(0x0112, 1) or 1)
            info: dict[str, Any] = {
                k: im.info[k] for k in ("dpi", "exif", "icc_profile", "xmp") if k in im.info
            }
    except (OSError, ValueError, SyntaxError):  # SyntaxError: "not a JPEG file"
        return None  # libvips decodes it (and reports what is wrong)
    if mode not in ("RGB", "L") or not _profile_fits(mode, info.get("icc_profile")):
        return None
    turned = orientation in (5, 6, 7, 8)
    upright = (stored[1], stored[0]) if turned else stored
    need = needed(upright)
    if need is None:
        return None
    if turned:
        need = (need[1], need[0])
    # the largest 1/d DCT scale whose ceil(size / d) still covers the needed size
    fold = min(stored[0] // need[0], stored[1] // need[1])
    denominator = next((d for d in (8, 4, 2) if fold >= d), 1)
    if denominator == 1:
        return None  # no DCT shrink possible: libvips is as fast

    def make() -> tuple[ReducedJpeg, int] | None:
        pixels = _opencv_decode(source, denominator, grey=mode == "L")
        expect = (-(-stored[1] // denominator), -(-stored[0] // denominator))
        if pixels is None or pixels.shape[:2] != expect:
            return None
        turn = orientation if orientation in _ORIENT else 1
        return ReducedJpeg(pixels, upright, turn, info), pixels.nbytes

    if store is None or source_id is None:
        made = make()
        return None if made is None else made[0]
    # only the same shrink: a finer one kept would give other pixels (and cost more
    # to resize than the coarse decode it saves)
    return store.fetch((source_id, "dct", denominator), make)


def _opencv_decode(source: bytes | str, denominator: int, *, grey: bool) -> np.ndarray | None:
    import cv2
    import numpy as np

    if grey:
        flags = {2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4}.get(
            denominator, cv2.IMREAD_REDUCED_GRAYSCALE_8
        )
    else:
        reduced = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4}.get(
            denominator, cv2.IMREAD_REDUCED_COLOR_8
        )
        # RGB out of libjpeg-turbo directly: no BGR->RGB pass
        flags = (reduced & ~cv2.IMREAD_COLOR_BGR) | cv2.IMREAD_COLOR_RGB
    flags |= cv2.IMREAD_IGNORE_ORIENTATION
    try:
        if isinstance(source, bytes):
            return cv2.imdecode(np.frombuffer(source, np.uint8), flags)
        if os.path.getsize(source) <= _READ_WHOLE_BYTES:
            # one read: imread's stdio source reads 4 KB at a time, ~8% more CPU on 12 MP
            return cv2.imdecode(np.fromfile(source, np.uint8), flags)
        # big originals stream from the file, never all in memory at once
        return cv2.imread(source, flags)
    except (cv2.error, OSError):
        return None


def _profile_fits(mode: str, icc: bytes | None) -> bool:
    """True when there is no ICC profile or one for the decoded pixels (RGB or grey):
    the pipeline converts any non-sRGB one afterwards, on the reduced pixels."""
    return not icc or profile_space(bytes(icc)) == ("RGB" if mode == "RGB" else "GRAY")
