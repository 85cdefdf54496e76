"""Deep-zoom tiles read from the best stored level: geometry, pixels, levels found."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvips
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.metrics import structural_similarity

from pixelmill.errors import ImageTooLarge, NotFound
from pixelmill.imaging.pyramid import DeepZoomGrid, PyramidReader, is_pyramid, stored_levels


def _pixels(width: int, height: int) -> np.ndarray:
    """Smooth gradients with texture, so a resize is comparable by SSIM."""
    yy, xx = np.mgrid[0:height, 0:width]
    r = xx * 255 // max(width - 1, 1)
    g = yy * 255 // max(height - 1, 1)
    b = ((np.sin(xx / 23.0) + np.cos(yy / 17.0)) * 60 + 128).astype(int)
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


@pytest.fixture(scope="module")
def slide(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A 3000 x 2000 tiled pyramidal TIFF (lossless) and its pixels."""
    pixels = _pixels(3000, 2000)
    path = tmp_path_factory.mktemp("slide") / "slide.tif"
    image = pyvips.Image.new_from_array(pixels, interpretation="srgb")
    image.tiffsave(str(path), tile=True, pyramid=True, compression="deflate")
    return path, pixels


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 3000),
    st.integers(1, 3000),
    st.sampled_from([(254, 1), (510, 1), (256, 0)]),
    st.integers(0, 3),
)
def test_tiles_cover_each_level_exactly_once_without_overlap(
    width: int, height: int, tiling: tuple[int, int], below: int
) -> None:
    grid = DeepZoomGrid(width, height, *tiling)
    level = max(0, grid.max_level - below)
    level_w, level_h = grid.level_size(level)
    cols, rows = grid.tiles(level)
    covered_x = sum(
        min(level_w, (c + 1) * grid.tile_size) - c * grid.tile_size for c in range(cols)
    )
    covered_y = sum(
        min(level_h, (r + 1) * grid.tile_size) - r * grid.tile_size for r in range(rows)
    )
    assert (covered_x, covered_y) == (level_w, level_h)
    left, top, right, bottom = grid.tile_box(level, cols - 1, rows - 1)
    assert (right, bottom) == (level_w, level_h)
    assert left >= 0 and top >= 0


def test_the_grid_has_openseadragons_levels() -> None:
    grid = DeepZoomGrid(3000, 2000)
    assert grid.max_level == 12  # 2^12 = 4096 >= 3000
    assert grid.level_size(11) == (1500, 1000)
    assert grid.level_size(0) == (1, 1)
    assert grid.tiles(12) == (6, 4)
    assert grid.tile_box(12, 1, 1) == (509, 509, 1021, 1021)  # 510 + 1 px each side
    with pytest.raises(NotFound):
        grid.tile_box(12, 6, 0)
    with pytest.raises(NotFound):
        grid.level_size(13)


def test_the_descriptor_names_size_tiles_and_format() -> None:
    xml = DeepZoomGrid(3000, 2000).descriptor("jpeg")
    assert 'Format="jpeg" Overlap="1" TileSize="510"' in str(xml)
    assert '<Size Width="3000" Height="2000"/>' in str(xml)
    as_json = DeepZoomGrid(3000, 2000).descriptor("png", json=True)
    assert as_json == {
        "Image": {
            "xmlns": "http://schemas.microsoft.com/deepzoom/2008",
            "Format": "png",
            "Overlap": "1",
            "TileSize": "510",
            "Size": {"Width": "3000", "Height": "2000"},
        }
    }


def test_a_full_resolution_tile_is_the_original_region(slide: tuple[Path, np.ndarray]) -> None:
    path, pixels = slide
    reader = PyramidReader(path)
    grid = DeepZoomGrid(reader.width, reader.height)
    tile = reader.tile(grid, 12, 1, 1, max_pixels=10**6).numpy()
    assert np.array_equal(tile, pixels[509:1021, 509:1021])


def test_a_reduced_tile_looks_like_the_original_shrunk(slide: tuple[Path, np.ndarray]) -> None:
    path, pixels = slide
    reader = PyramidReader(path)
    grid = DeepZoomGrid(reader.width, reader.height)
    tile = reader.tile(grid, 10, 0, 0, max_pixels=10**6).numpy()  # 750 x 500: 2 tiles wide
    assert tile.shape == (500, 511, 3)
    expected = pyvips.Image.new_from_array(pixels).resize(0.25).numpy()[:500, :511]
    assert structural_similarity(tile, expected, channel_axis=-1, data_range=255) > 0.95


def test_deep_levels_read_a_reduced_page_within_the_pixel_limit(
    slide: tuple[Path, np.ndarray],
) -> None:
    # given a limit far below the full resolution (6 MP), when the whole slide is
    # asked for in one 12 x 8 tile and in one pixel, then both come from small pages
    path, pixels = slide
    reader = PyramidReader(path)
    grid = DeepZoomGrid(reader.width, reader.height)
    small = reader.tile(grid, 4, 0, 0, max_pixels=50_000).numpy()
    assert small.shape == (8, 12, 3)
    mean = pixels.reshape(-1, 3).mean(axis=0)
    assert np.abs(reader.tile(grid, 0, 0, 0, max_pixels=50_000).numpy()[0, 0] - mean).max() < 8


def test_a_file_without_reduced_levels_refuses_deep_tiles_over_the_limit(
    tmp_path: Path,
) -> None:
    flat = tmp_path / "flat.tif"
    pyvips.Image.new_from_array(_pixels(1200, 800)).tiffsave(str(flat), tile=True)
    reader = PyramidReader(flat)
    assert not is_pyramid(flat)
    grid = DeepZoomGrid(reader.width, reader.height)
    with pytest.raises(ImageTooLarge, match="no reduced level"):
        reader.tile(grid, 0, 0, 0, max_pixels=500_000)
    assert reader.tile(grid, 11, 0, 0, max_pixels=500_000).width == 511


def test_stored_levels_of_a_pyramid_a_jpeg_and_a_png(
    slide: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    path, _ = slide
    assert is_pyramid(path)
    assert [(lv.width, lv.height) for lv in stored_levels(path)][:3] == [
        (3000, 2000),
        (1500, 1000),
        (750, 500),
    ]
    image = pyvips.Image.new_from_array(_pixels(800, 600), interpretation="srgb")
    jpeg = tmp_path / "x.jpg"
    image.write_to_file(str(jpeg))
    assert [lv.width for lv in stored_levels(jpeg)] == [800, 400, 200, 100]
    png = tmp_path / "x.png"
    image.write_to_file(str(png))
    assert [lv.width for lv in stored_levels(png)] == [800]
    assert not is_pyramid(png)
