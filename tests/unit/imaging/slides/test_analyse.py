"""Whole-slide analysis on a small pyramidal TIFF: tiles stitched without seams, outputs
streamed to a folder, DeepZoom pyramid written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import pyvips
import tifffile

from pixelmill.errors import InvalidParameter, NotFound
from pixelmill.imaging.analysis.tiles import same_objects
from pixelmill.imaging.ops.segment_classical import SegmentNucleiParams, run
from pixelmill.imaging.slides import Slide, analyse_slide, deepzoom
from tests.unit.imaging.analysis import synthetic as syn


def he_slide(tmp_path: Path) -> tuple[Path, np.ndarray]:
    from skimage import draw

    rng = np.random.default_rng(5)
    shape = (700, 900)
    hema = np.zeros(shape)
    for _ in range(300):
        rr, cc = draw.disk(
            (rng.uniform(0, 700), rng.uniform(330, 900)), rng.uniform(6, 10), shape=shape
        )
        hema[rr, cc] = rng.uniform(0.6, 1.0)
    eosin = np.where(np.arange(900) < 300, 0.0, 0.25)[None, :].repeat(700, 0)  # glass at left
    rgb = syn.brightfield({"hematoxylin": hema, "eosin": eosin})
    path = tmp_path / "slide.tif"
    pyvips.Image.new_from_array(rgb, interpretation="srgb").tiffsave(
        str(path), tile=True, tile_width=128, tile_height=128, pyramid=True, compression="deflate"
    )
    return path, rgb


@pytest.mark.slow
def test_tiled_slide_analysis_equals_the_whole_image(tmp_path: Path) -> None:
    # given a small pyramidal H&E slide with glass on the left
    path, rgb = he_slide(tmp_path)
    # when it is analysed in 256-px tiles with the he-nuclei preset, with a DeepZoom pyramid
    result = analyse_slide(
        path,
        tmp_path / "out",
        preset="he-nuclei",
        tile=256,
        workers=2,
        dzi=True,
        overlay_dzi=True,
        overrides={"segment_nuclei": {"max_area": 1500}},
    )
    # then the stitched labels hold the same objects as one whole-image segmentation
    tiling = result.summary["tiling"]
    params = SegmentNucleiParams(
        **{
            **dict(
                channel="hematoxylin",
                foreground="bright",
                sigma=1.5,
                method="otsu",
                opening_radius=2,
                min_area=40,
                max_area=1500,
            )
        }
    )
    whole, _ = run(
        rgb, params, fixed_threshold=tiling["threshold"], min_distance=tiling["min_distance_px"]
    )
    labels = tifffile.imread(result.files["labels"])
    assert labels.shape == rgb.shape[:2] and labels.dtype == np.uint32
    assert same_objects(labels, whole.labels)
    # and every object is one row of the table, with slide coordinates
    objects = pq.read_table(result.files["objects"])
    assert objects.num_rows == whole.count == result.summary["object_count"]
    assert sorted(objects.column("label").to_pylist()) == list(range(1, whole.count + 1))
    summary = json.loads(result.files["summary"].read_bytes())
    assert summary["preset"] == "he-nuclei@1" and summary["tiling"]["tiles"] == 12
    assert summary["tiling"]["skipped_background"] >= 1  # glass tiles are not analysed
    dzi = result.files["dzi"]
    assert dzi.exists() and "TileSize" in dzi.read_text()
    assert any((tmp_path / "out" / "slide_files").rglob("*.jpg"))
    # and the overlay pyramid shows the contours in green at full resolution
    full = max(int(p.name) for p in (tmp_path / "out" / "overlay_files").iterdir() if p.is_dir())
    tile = pyvips.Image.new_from_file(
        str(tmp_path / "out" / "overlay_files" / str(full) / "2_1.jpg")
    ).numpy()
    rgb = tile.astype(int)
    green = rgb[..., 1] - np.maximum(rgb[..., 0], rgb[..., 2]) > 60  # JPEG softens 1-px lines
    assert green.sum() > 50


def test_deepzoom_of_a_slide(tmp_path: Path) -> None:
    path, _ = he_slide(tmp_path)
    dzi = deepzoom(Slide(path), tmp_path / "dz", tile_size=254)
    assert dzi.name == "slide.dzi" and dzi.exists()
    levels = sorted(int(p.name) for p in (tmp_path / "dz" / "slide_files").iterdir() if p.is_dir())
    assert levels == list(range(len(levels))) and len(levels) == 11  # up to 900 px: 2^10


def test_bad_slides(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        Slide(tmp_path / "missing.tif")
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"not a tiff")
    with pytest.raises(InvalidParameter):
        Slide(junk)
    path, _ = he_slide(tmp_path)
    with pytest.raises(InvalidParameter, match="no segment_nuclei step"):
        analyse_slide(path, tmp_path / "o", preset="ihc-dab-area")
