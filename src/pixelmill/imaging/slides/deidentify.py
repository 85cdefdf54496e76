"""De-identify a slide: drop the label and macro images, scrub names and dates.

A whole-slide file carries more than the tissue. The **label** image is a photo of the
glass slide's label (often the patient's name or accession number, sometimes a date of
birth); the **macro** image shows the whole slide, label included. The text metadata
holds the original file name, the scan date and time, the operator and the scanner.

Two steps:

* :func:`plan_deidentification` is pure: given what a file contains
  (:class:`SlideMetadata`) and the field names to scrub, it says which pages to drop,
  which fields it removes, and gives the scrubbed description. Aperio descriptions
  (``key = value`` fields after ``|``) lose the named fields and any free text; OME-XML
  loses the named elements; any other description is free text and dropped whole when
  ``ImageDescription`` is a named field.
* :func:`write_deidentified` writes a new pyramidal TIFF of the main image only (libvips
  ``tiffsave``), carrying the scrubbed description and none of the source's other tags,
  EXIF, XMP or IPTC. Pixels are re-encoded: a lossless ``compression`` keeps them
  exactly, ``jpeg`` at ``quality`` like a scanner.

:func:`read_slide_metadata` reads the TIFF tags of each page with tifffile (no pixels).
Like the rest of ``imaging.slides`` these functions read and write only the paths given.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixelmill.errors import InvalidParameter, NotFound, UnsupportedFormat

#: fields scrubbed by default: Aperio description keys and TIFF tag names
DEFAULT_FIELDS: tuple[str, ...] = (
    "Filename",
    "Date",
    "Time",
    "Time Zone",
    "User",
    "ScanScope ID",
    "Barcode",
    "Artist",
    "DateTime",
    "HostComputer",
    "DocumentName",
    "ImageDescription",
    # OME-XML elements
    "AcquisitionDate",
    "Experimenter",
    "ExperimenterGroup",
)
#: associated images dropped by default
ASSOCIATED_IMAGES: tuple[str, ...] = ("label", "macro")
#: TIFF tags that can hold free text about people, places or times
TEXT_TAGS: tuple[str, ...] = ("Artist", "DateTime", "HostComputer", "DocumentName", "PageName")

_ASSOCIATED = re.compile(r"^\s*(?:Aperio Image Library[^\n]*\n\s*)?(label|macro|thumbnail)\b", re.I)
_OME_IMAGE_NAME = re.compile(r'(<(?:[\w.-]+:)?Image\b[^>]*?\s)Name="[^"]+"')
_APERIO_FIELD = re.compile(r"^\s*([^=]+?)\s*=\s*(.*?)\s*$", re.S)


@dataclass(frozen=True)
class PageMetadata:
    """One TIFF page (IFD): its size, its ``ImageDescription`` and its text tags."""

    index: int
    width: int
    height: int
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SlideMetadata:
    """The pages of a slide file; page 0 is the full-resolution main image."""

    pages: tuple[PageMetadata, ...]


@dataclass(frozen=True)
class DeidentificationPlan:
    """What de-identification does to one slide.

    ``drop_pages`` are the associated images removed (``dropped_images`` their names);
    ``description`` is the main image's scrubbed description (``None`` when nothing may
    be kept); ``removed_fields`` the description fields and tags that held data.
    """

    drop_pages: tuple[int, ...]
    dropped_images: tuple[str, ...]
    description: str | None
    removed_fields: tuple[str, ...]


def associated_image(page: PageMetadata) -> str | None:
    """``"label"``, ``"macro"`` or ``"thumbnail"`` when ``page`` is such an associated
    image (from its description, as Aperio and most scanners write it), else ``None``."""
    if page.index == 0:
        return None
    match = _ASSOCIATED.match(page.description.replace("\r\n", "\n"))
    return match.group(1).lower() if match else None


def scrub_description(description: str, fields: Collection[str]) -> tuple[str | None, list[str]]:
    """``description`` without the named ``fields``, and the names of those it had.

    >>> scrub_description("Aperio Image Library v12|AppMag = 20|User = jdoe", ["User"])
    ('Aperio Image Library v12|AppMag = 20', ['User'])
    """
    wanted = {f.casefold() for f in fields}
    if description.startswith("Aperio"):
        return _scrub_aperio(description, wanted)
    if "<OME" in description:
        return _scrub_ome(description, fields)
    if description.strip() and "imagedescription" in wanted:
        return None, ["ImageDescription"]
    return (description or None), []


def plan_deidentification(
    metadata: SlideMetadata,
    *,
    fields: Collection[str] = DEFAULT_FIELDS,
    drop_associated: Collection[str] = ASSOCIATED_IMAGES,
) -> DeidentificationPlan:
    """What to drop from a slide so that no label, macro, name or date is left.

    ``fields`` names the description fields and TIFF tags to scrub (a study's setting);
    ``drop_associated`` the associated images to remove.
    """
    if not metadata.pages:
        raise InvalidParameter("the slide has no image")
    main = metadata.pages[0]
    drop = {name.casefold() for name in drop_associated}
    dropped = [(p.index, name) for p in metadata.pages if (name := associated_image(p)) in drop]
    description, removed = scrub_description(main.description, fields)
    wanted = {f.casefold() for f in fields}
    for page in metadata.pages:
        for tag, value in page.tags.items():
            if tag.casefold() in wanted and str(value).strip() and tag not in removed:
                removed.append(tag)
    return DeidentificationPlan(
        drop_pages=tuple(i for i, _ in dropped),
        dropped_images=tuple(sorted({name for _, name in dropped})),
        description=description,
        removed_fields=tuple(removed),
    )


def read_slide_metadata(path: Path) -> SlideMetadata:
    """The pages of a TIFF-based slide (SVS, OME-TIFF, TIFF) with their text tags."""
    import tifffile

    if not path.exists():
        raise NotFound(f"slide {path.name} does not exist")
    try:
        with tifffile.TiffFile(path) as tif:
            pages = tuple(_page(i, page) for i, page in enumerate(tif.pages))
    except tifffile.TiffFileError as exc:
        raise UnsupportedFormat(
            f"de-identification reads TIFF-based slides (SVS, OME-TIFF, TIFF): {exc}"
        ) from exc
    return SlideMetadata(pages)


def write_deidentified(
    source: Path,
    target: Path,
    plan: DeidentificationPlan,
    *,
    compression: str = "jpeg",
    quality: int = 90,
    tile_size: int = 256,
) -> None:
    """Write the main image of ``source`` as a pyramidal tiled TIFF at ``target``, with
    ``plan.description`` as its only text. JPEG needs 8-bit images; others get deflate."""
    import pyvips

    try:
        image = pyvips.Image.tiffload(str(source), page=0)
    except pyvips.Error as exc:
        raise UnsupportedFormat(
            f"cannot read slide {source.name}: {str(exc).strip()[-200:]}"
        ) from exc
    image = image.copy()
    for name in image.get_fields():
        if name == "image-description" or name.startswith(
            ("exif-", "xmp-", "iptc-", "ipct-", "photoshop-")
        ):
            image.remove(name)
    if plan.description:
        image.set_type(pyvips.GValue.gstr_type, "image-description", plan.description)
    if compression == "jpeg" and (image.format != "uchar" or image.bands not in (1, 3)):
        compression = "deflate"
    options: dict[str, Any] = {"Q": quality} if compression in ("jpeg", "webp", "jp2k") else {}
    image.tiffsave(
        str(target),
        tile=True,
        tile_width=tile_size,
        tile_height=tile_size,
        pyramid=True,
        compression=compression,
        bigtiff=image.width * image.height * image.bands > 2**31,
        **options,
    )


def deidentify(
    source: Path,
    target: Path,
    *,
    fields: Collection[str] = DEFAULT_FIELDS,
    drop_associated: Collection[str] = ASSOCIATED_IMAGES,
    compression: str = "jpeg",
    quality: int = 90,
) -> DeidentificationPlan:
    """Plan and write a de-identified copy of ``source`` at ``target``; the plan."""
    plan = plan_deidentification(
        read_slide_metadata(source), fields=fields, drop_associated=drop_associated
    )
    write_deidentified(source, target, plan, compression=compression, quality=quality)
    return plan


def _page(index: int, page: Any) -> PageMetadata:
    tags = {name: _text(page.tags[name].value) for name in TEXT_TAGS if name in page.tags}
    return PageMetadata(
        index=index,
        width=int(page.imagewidth),
        height=int(page.imagelength),
        description=_text(page.description or ""),
        tags=tags,
    )


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _scrub_aperio(description: str, wanted: set[str]) -> tuple[str, list[str]]:
    header, *segments = description.split("|")
    kept: list[str] = [header]
    removed: list[str] = []
    for segment in segments:
        match = _APERIO_FIELD.match(segment)
        if match is None:  # free text between the fields: nobody knows what it says
            if segment.strip():
                removed.append("(free text)")
            continue
        if match.group(1).casefold() in wanted:
            removed.append(match.group(1))
            continue
        kept.append(segment)
    return "|".join(kept), removed


def _scrub_ome(xml: str, fields: Collection[str]) -> tuple[str, list[str]]:
    removed: list[str] = []
    for name in fields:
        if not re.fullmatch(r"[A-Za-z][\w]*", name):
            continue
        element = re.compile(
            rf"<(?:[\w.-]+:)?{name}\b[^>]*?/>|<((?:[\w.-]+:)?{name})\b[^>]*>.*?</\1\s*>", re.S
        )
        xml, count = element.subn("", xml)
        if count:
            removed.append(name)
    if "filename" in {f.casefold() for f in fields}:
        # an OME Image's Name is usually the original file name
        xml, count = _OME_IMAGE_NAME.subn(r'\1Name=""', xml)
        if count:
            removed.append("Filename")
    return xml, removed


__all__ = [
    "ASSOCIATED_IMAGES",
    "DEFAULT_FIELDS",
    "TEXT_TAGS",
    "DeidentificationPlan",
    "PageMetadata",
    "SlideMetadata",
    "associated_image",
    "deidentify",
    "plan_deidentification",
    "read_slide_metadata",
    "scrub_description",
    "write_deidentified",
]
