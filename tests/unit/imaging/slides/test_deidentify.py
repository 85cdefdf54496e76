"""Slide de-identification: the label and macro images and the names and dates in the
metadata are gone from the copy, and the tissue pixels are the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvips
import tifffile

from pixelmill.errors import UnsupportedFormat
from pixelmill.imaging.probe import probe
from pixelmill.imaging.slides.deidentify import (
    PageMetadata,
    SlideMetadata,
    deidentify,
    plan_deidentification,
    read_slide_metadata,
    scrub_description,
)

PATIENT = "Jane Doe"
SCAN_DATE = "03/01/24"
APERIO = (
    "Aperio Image Library v12.0.15 \r\n320x240 [0,0 320x240] (64x64) RAW/RGB"
    f"|AppMag = 20|StripeWidth = 2040|ScanScope ID = SS1234|Filename = {PATIENT} 2024-0117"
    f"|Date = {SCAN_DATE}|Time = 10:04:59|Time Zone = GMT+0100|User = {PATIENT}"
    "|MPP = 0.499|Left = 25.69|Top = 23.44"
)
LABEL = "Aperio Image Library v12.0.15 \r\nlabel 96x80"
MACRO = "Aperio Image Library v12.0.15 \r\nmacro 160x64"


def tissue() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)


def svs_like(path: Path) -> np.ndarray:
    """A small SVS-like TIFF: tiled main image, a reduced level, a label and a macro."""
    main = tissue()
    person = [(315, "s", 0, PATIENT, True), (316, "s", 0, "SCANNER-PC-ROOM-12", True)]
    with tifffile.TiffWriter(path) as tif:
        tif.write(
            main, tile=(64, 64), description=APERIO, datetime="2024:03:01 10:04:59",
            extratags=person, metadata=None,
        )  # fmt: skip
        tif.write(main[::4, ::4], description=APERIO.split("|")[0], metadata=None)
        tif.write(np.full((80, 96, 3), 250, np.uint8), description=LABEL, metadata=None)
        tif.write(np.full((64, 160, 3), 200, np.uint8), description=MACRO, metadata=None)
    return main


def test_the_copy_has_no_label_macro_name_or_date_and_the_same_pixels(tmp_path: Path) -> None:
    source, target = tmp_path / "case.svs", tmp_path / "case-deid.svs"
    main = svs_like(source)

    plan = deidentify(source, target, compression="deflate")

    assert plan.dropped_images == ("label", "macro")
    raw = target.read_bytes()
    for secret in (PATIENT, SCAN_DATE, "10:04:59", "2024:03:01", "SCANNER-PC", "SS1234"):
        assert secret.encode() not in raw
    with tifffile.TiffFile(target) as tif:
        descriptions = [p.description for p in tif.pages]
        assert not any("label" in d or "macro" in d for d in descriptions)
        for page in tif.pages:
            assert not {"Artist", "DateTime", "HostComputer", "DocumentName"} & set(
                t.name for t in page.tags
            )
        assert np.array_equal(tif.pages[0].asarray(), main)
    # still an Aperio slide to every reader, with its pixel size
    assert descriptions[0].startswith("Aperio Image Library")
    assert probe(target, max_pixels=10**8).pixel_size_um == pytest.approx(0.499)


def test_jpeg_copy_is_a_readable_pyramid(tmp_path: Path) -> None:
    source, target = tmp_path / "case.svs", tmp_path / "case-deid.svs"
    main = svs_like(source)
    deidentify(source, target, quality=95)
    copy = pyvips.Image.new_from_file(str(target))
    assert (copy.width, copy.height) == (320, 240)
    assert copy.get("n-pages") >= 2  # the full image and a reduced level
    pixels = np.ndarray(buffer=copy.write_to_memory(), dtype=np.uint8, shape=(240, 320, 3)).astype(
        int
    )
    assert np.abs(pixels - main).mean() < 12  # JPEG at Q95 of noise: close, not equal


def test_the_plan_names_what_is_removed() -> None:
    pages = (
        PageMetadata(0, 320, 240, APERIO, {"Artist": PATIENT, "DateTime": "2024:03:01"}),
        PageMetadata(1, 80, 60, APERIO.split("|")[0]),
        PageMetadata(2, 96, 80, LABEL),
        PageMetadata(3, 160, 64, MACRO),
    )
    plan = plan_deidentification(SlideMetadata(pages))
    assert plan.drop_pages == (2, 3)
    assert set(plan.removed_fields) >= {"Filename", "Date", "Time", "User", "Artist", "DateTime"}
    assert plan.description is not None and "MPP = 0.499" in plan.description
    assert "AppMag = 20" in plan.description and PATIENT not in plan.description


def test_the_fields_to_scrub_are_configurable() -> None:
    pages = (PageMetadata(0, 320, 240, APERIO), PageMetadata(1, 96, 80, LABEL))
    plan = plan_deidentification(SlideMetadata(pages), fields=["User"], drop_associated=["macro"])
    assert plan.drop_pages == ()
    assert plan.description is not None
    assert f"Date = {SCAN_DATE}" in plan.description and f"User = {PATIENT}" not in plan.description


def test_ome_xml_loses_experimenters_dates_and_the_file_name() -> None:
    ome = (
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
        '<Experimenter ID="Experimenter:0" FirstName="Jane" LastName="Doe"/>'
        '<Image ID="Image:0" Name="Jane_Doe_biopsy.tif"><AcquisitionDate>2024-03-01T10:04:59'
        '</AcquisitionDate><Pixels ID="Pixels:0" PhysicalSizeX="0.25"/></Image></OME>'
    )
    text, removed = scrub_description(ome, ["Experimenter", "AcquisitionDate", "Filename"])
    assert text is not None
    assert "Doe" not in text and "2024" not in text
    assert 'PhysicalSizeX="0.25"' in text
    assert set(removed) == {"Experimenter", "AcquisitionDate", "Filename"}


def test_free_text_descriptions_are_dropped_whole() -> None:
    assert scrub_description("Biopsy of Jane Doe, 1 March 2024", ["ImageDescription"]) == (
        None,
        ["ImageDescription"],
    )
    assert scrub_description("kept as asked", ["User"]) == ("kept as asked", [])


def test_a_file_that_is_not_a_tiff_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "slide.mrxs"
    path.write_bytes(b"not a tiff at all" * 10)
    with pytest.raises(UnsupportedFormat):
        read_slide_metadata(path)
