"""Where a region of an image lies in the image, and moving results made on the region
back into the image's pixels.

A job may read a rectangle of a large image (a whole slide) instead of all of it: the
operations then see only the region, and the coordinates they report (object centroids
and boxes, face boxes) are the region's. :func:`place_artifact` adds the region's
offset to them, so a table read next to the slide, or a click on the slide in a viewer,
lines up with the objects. Images (overlays, labels) stay the region's size: their
placement is the region itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pixelmill.errors import ImageTooLarge, InvalidParameter

if TYPE_CHECKING:
    import pyvips

#: object table columns in rows (``y``) and columns (``x``) of the image
ROW_COLUMNS = ("centroid_row", "bbox_min_row", "bbox_max_row")
COL_COLUMNS = ("centroid_col", "bbox_min_col", "bbox_max_col")


@dataclass(frozen=True)
class Box:
    """A rectangle of an image in full-resolution pixels: ``left``/``top`` of its first
    pixel (x to the right, y down, origin top-left), ``width`` x ``height`` pixels."""

    left: int
    top: int
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def as_json(self) -> dict[str, int]:
        return {"left": self.left, "top": self.top, "width": self.width, "height": self.height}


def check_box(box: Box, image_size: tuple[int, int], *, max_pixels: int) -> None:
    """Raise unless ``box`` lies inside an image of ``image_size`` (width, height) and
    holds at most ``max_pixels`` pixels (``InvalidParameter`` naming the field
    ``region``: 422).

    Examples
    --------
    >>> check_box(Box(0, 0, 10, 10), (100, 100), max_pixels=1000)
    >>> check_box(Box(95, 0, 10, 10), (100, 100), max_pixels=1000)
    Traceback (most recent call last):
    ...
    pixelmill.errors.InvalidParameter: region 95,0 10 x 10 reaches past the image (100 x 100)
    """
    width, height = image_size
    if box.left + box.width > width or box.top + box.height > height:
        raise InvalidParameter(
            f"region {box.left},{box.top} {box.width} x {box.height} reaches past the "
            f"image ({width} x {height})",
            field="region",
            image_width=width,
            image_height=height,
        )
    if box.pixels > max_pixels:
        raise InvalidParameter(
            f"region of {box.pixels} pixels; a job reads at most {max_pixels} "
            "(render.max_pixels): choose a smaller region",
            field="region",
            max_pixels=max_pixels,
        )


def crop(image: pyvips.Image, box: Box) -> pyvips.Image:
    """The region of a (lazily opened) image: libvips then reads only the tiles of a
    tiled file that the region covers. ``ImageTooLarge`` if the image is smaller than
    the region says (checked at submit against the record; a changed file is a 413)."""
    if box.left + box.width > image.width or box.top + box.height > image.height:
        raise ImageTooLarge(
            f"the region {box.as_json()} is outside the image ({image.width} x {image.height})"
        )
    return image.crop(box.left, box.top, box.width, box.height)


def place_artifact(name: str, value: Any, box: Box) -> Any:
    """``value`` (an artifact a step produced on the region) with its coordinates moved
    into the whole image's: object tables' centroids and boxes, face boxes; a summary
    gains the ``region`` it describes. Anything else is returned unchanged.

    Examples
    --------
    >>> place_artifact("faces", [{"box": [1, 2, 3, 4], "score": 0.9}], Box(10, 20, 5, 5))
    [{'box': [11, 22, 13, 24], 'score': 0.9}]
    """
    if name == "summary" and isinstance(value, dict):
        return {**value, "region": box.as_json()}
    if name == "faces" and isinstance(value, list):
        return [_face(face, box) for face in value]
    if hasattr(value, "column_names") and "centroid_row" in value.column_names:
        return _table(value, box)
    return value


def _face(face: Any, box: Box) -> Any:
    if not isinstance(face, dict) or not isinstance(face.get("box"), list):
        return face
    x0, y0, x1, y1 = face["box"]
    return {**face, "box": [x0 + box.left, y0 + box.top, x1 + box.left, y1 + box.top]}


def _table(table: Any, box: Box) -> Any:
    import pyarrow.compute as pc

    for names, offset in ((ROW_COLUMNS, box.top), (COL_COLUMNS, box.left)):
        for name in names:
            if name in table.column_names and offset:
                i = table.column_names.index(name)
                column = table.column(name)
                shifted = pc.add(column, offset).cast(column.type)
                table = table.set_column(i, name, shifted)
    return table
