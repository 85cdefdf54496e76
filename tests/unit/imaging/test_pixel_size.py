"""Pixel size read from the slide file itself: Aperio SVS ``MPP``, OME-XML
``PhysicalSizeX`` and TIFF resolution tags, so µm measurements are not lost."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvips
import tifffile

from pixelmill.imaging.pixel_size import pixel_size_from_description, pixel_size_from_resolution
from pixelmill.imaging.probe import probe
from pixelmill.imaging.slides import Slide

APERIO = (
    "Aperio Image Library v12.0.15 \r\n46000x32914 [0,100 46000x32814] (240x240) JPEG/RGB Q=70"
    "|AppMag = 20|StripeWidth = 2040|ScanScope ID = CPAPERIOCS|Filename = CMU-1"
    "|Date = 12/29/09|Time = 09:59:15|User = b414003d-95c6-48b0-9369-8010ed517ba7"
    "|MPP = 0.499|Left = 25.691574|Top = 23.449873"
)


def rgb(width: int = 96, height: int = 64) -> pyvips.Image:
    yy, xx = np.mgrid[0:height, 0:width]
    arr = np.stack([xx * 2, yy * 3, (xx + yy) % 256], axis=-1).astype(np.uint8)
    return pyvips.Image.new_from_array(arr, interpretation="srgb")


def test_svs_like_tiff_with_aperio_description_reports_its_mpp(tmp_path: Path) -> None:
    image = rgb().copy()
    image.set_type(pyvips.GValue.gstr_type, "image-description", APERIO)
    path = tmp_path / "slide.svs"
    image.tiffsave(str(path), tile=True, tile_width=32, tile_height=32, pyramid=True)
    assert probe(path, max_pixels=10**8).pixel_size_um == pytest.approx(0.499)
    assert Slide(path).pixel_size_um == pytest.approx(0.499)


@pytest.mark.parametrize(
    ("size", "unit", "expected"),
    [("0.325", None, 0.325), ("325", "nm", 0.325), ("0.00065", "mm", 0.65)],
)
def test_ome_tiff_physical_size_is_read_in_its_unit(
    tmp_path: Path, size: str, unit: str | None, expected: float
) -> None:
    unit_attr = f' PhysicalSizeXUnit="{unit}"' if unit else ""
    ome = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
        '<Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint8"'
        f' SizeX="96" SizeY="64" SizeC="3" SizeZ="1" SizeT="1" PhysicalSizeX="{size}"'
        f'{unit_attr} PhysicalSizeY="{size}"></Pixels></Image></OME>'
    )
    image = rgb().copy()
    image.set_type(pyvips.GValue.gstr_type, "image-description", ome)
    path = tmp_path / "image.ome.tif"
    image.tiffsave(str(path))
    assert probe(path, max_pixels=10**8).pixel_size_um == pytest.approx(expected)


@pytest.mark.parametrize(
    ("resolution", "unit", "expected"),
    [(1e4 / 0.25, "CENTIMETER", 0.25), (25400 / 0.5, "INCH", 0.5)],
)
def test_tiff_resolution_tags_give_the_pixel_size(
    tmp_path: Path, resolution: float, unit: str, expected: float
) -> None:
    path = tmp_path / "res.tif"
    data = np.zeros((64, 96, 3), np.uint8)
    tifffile.imwrite(
        path, data, resolution=(resolution, resolution), resolutionunit=unit, description=""
    )
    assert probe(path, max_pixels=10**8).pixel_size_um == pytest.approx(expected, rel=1e-5)


def test_default_resolutions_are_not_taken_for_a_pixel_size(tmp_path: Path) -> None:
    data = np.zeros((64, 96, 3), np.uint8)
    at_72_dpi = tmp_path / "photo.tif"
    tifffile.imwrite(at_72_dpi, data, resolution=(72, 72), resolutionunit="INCH")
    no_unit = tmp_path / "nounit.tif"
    tifffile.imwrite(no_unit, data, resolution=(300, 300), resolutionunit="NONE")
    libvips_default = tmp_path / "vips.tif"
    rgb().tiffsave(str(libvips_default))
    jpeg = rgb().write_to_buffer(".jpg", Q=90)
    for source in (at_72_dpi, no_unit, libvips_default, jpeg):
        assert probe(source, max_pixels=10**8).pixel_size_um is None


def test_descriptions_without_a_usable_size_give_none() -> None:
    assert pixel_size_from_description("") is None
    assert pixel_size_from_description("Aperio Image Library v12|AppMag = 20") is None
    assert pixel_size_from_description("Aperio Image Library v12|MPP = nan|") is None
    assert pixel_size_from_description('<OME><Pixels PhysicalSizeX="-1"/></OME>') is None
    assert (
        pixel_size_from_description('<OME><Pixels PhysicalSizeX="1" PhysicalSizeXUnit="ly"/>')
        is None
    )
    assert pixel_size_from_description("a free-text note mentioning MPP = 0.5") is None
    assert pixel_size_from_resolution(0.0, "cm") is None
