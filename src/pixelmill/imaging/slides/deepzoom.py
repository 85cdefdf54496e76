"""DeepZoom pyramids (``name.dzi`` + ``name_files/``) of a slide and of its object
contours, written into the folder the caller gives; libvips streams, so memory stays
bounded whatever the slide's size."""

from __future__ import annotations

from pathlib import Path

import pyvips

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.slides.reader import Slide


def deepzoom(
    source: Path | Slide,
    out_dir: Path,
    *,
    name: str = "slide",
    tile_size: int = 254,
    overlap: int = 1,
    quality: int = 85,
) -> Path:
    """Write a DeepZoom pyramid (``name.dzi`` + ``name_files/``) with JPEG tiles; libvips
    streams the slide, so memory stays bounded whatever its size. Returns the .dzi path."""
    slide = source if isinstance(source, Slide) else Slide(source)
    out_dir.mkdir(parents=True, exist_ok=True)
    if slide.vips is None:
        return _deepzoom_openslide(slide, out_dir, name, tile_size, overlap, quality)
    image = slide.vips
    if image.bands > 3 and not image.hasalpha():
        image = image.extract_band(0, n=3)
    if image.hasalpha():
        image = image.flatten(background=[255] * (image.bands - 1))
    if str(image.format) != "uchar":
        image = image.colourspace("srgb") if image.bands >= 3 else image.colourspace("b-w")
    image.dzsave(
        str(out_dir / name), tile_size=tile_size, overlap=overlap, suffix=f".jpg[Q={quality}]"
    )
    return out_dir / f"{name}.dzi"


def overlay_deepzoom(
    slide: Slide,
    labels_tif: Path,
    out_dir: Path,
    *,
    name: str = "overlay",
    colour: tuple[int, int, int] = (0, 255, 0),
    quality: int = 85,
) -> Path:
    """DeepZoom pyramid of the slide with object contours drawn in ``colour``, computed
    lazily by libvips from ``labels.tif`` (an object pixel is contour when a 4-neighbour
    has another label), so it streams like :func:`deepzoom`."""
    if slide.vips is None:
        raise InvalidParameter("overlay pyramids need a slide libvips reads (TIFF, SVS)")
    labels = pyvips.Image.new_from_file(str(labels_tif), access="random")
    w, h = labels.width, labels.height
    left = labels.embed(1, 0, w, h, extend="copy")
    up = labels.embed(0, 1, w, h, extend="copy")
    right = labels.crop(1, 0, w - 1, h).embed(0, 0, w, h, extend="copy") if w > 1 else labels
    down = labels.crop(0, 1, w, h - 1).embed(0, 0, w, h, extend="copy") if h > 1 else labels
    differs = (labels != left) | (labels != up) | (labels != right) | (labels != down)
    edge = differs & (labels > 0)
    base = slide.vips
    if base.hasalpha():
        base = base.flatten(background=[255] * (base.bands - 1))
    if base.bands == 1:
        base = base.colourspace("srgb")
    shown = edge.ifthenelse(list(colour), base.extract_band(0, n=3)).cast("uchar")
    out_dir.mkdir(parents=True, exist_ok=True)
    shown.copy(interpretation="srgb").dzsave(
        str(out_dir / name), tile_size=254, overlap=1, suffix=f".jpg[Q={quality}]"
    )
    return out_dir / f"{name}.dzi"


def _deepzoom_openslide(
    slide: Slide, out_dir: Path, name: str, tile_size: int, overlap: int, quality: int
) -> Path:
    from openslide.deepzoom import DeepZoomGenerator

    dz = DeepZoomGenerator(slide.openslide, tile_size=tile_size, overlap=overlap)
    for level in range(dz.level_count):
        folder = out_dir / f"{name}_files" / str(level)
        folder.mkdir(parents=True, exist_ok=True)
        cols, rows = dz.level_tiles[level]
        for row in range(rows):
            for col in range(cols):
                tile = dz.get_tile(level, (col, row)).convert("RGB")
                tile.save(folder / f"{col}_{row}.jpg", quality=quality)
    dzi = out_dir / f"{name}.dzi"
    dzi.write_text(dz.get_dzi("jpg"))
    return dzi
