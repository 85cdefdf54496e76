"""Named, versioned analysis pipelines.

A preset is a list of registry steps with a name and an integer version. ``name``
resolves to the latest version, ``name@N`` to version N; a version never changes once
published (a better recipe is a new version), so results stay reproducible. Use one in a
job pipeline as ``{"op": "preset", "name": "he-nuclei"}`` (optionally with
``"overrides": {"segment_nuclei": {"min_area": 60}}``), or expand it with
:func:`expand` to submit the steps themselves.

Sizes assume roughly 0.25-0.5 µm pixels (20-40x objectives); override ``min_area`` /
``max_area`` (pixels) for other magnifications.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pixelmill.errors import InvalidParameter


@dataclass(frozen=True)
class Preset:
    """One published version of a named pipeline."""

    name: str
    version: int
    title: str
    description: str
    modality: str
    steps: tuple[Mapping[str, Any], ...]

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "title": self.title,
            "description": self.description,
            "modality": self.modality,
            "steps": [dict(s) for s in self.steps],
        }


_PRESETS: tuple[Preset, ...] = (
    Preset(
        name="nuclei-fluorescence",
        version=1,
        title="Nuclei in fluorescence (DAPI/Hoechst)",
        description="Channel 0 (override channels.select for another), 3x3 median, rolling-"
        "ball background (50 px), Otsu on bright nuclei, watershed split, 30-5000 px; "
        "intensities of every channel measured on the original; yellow contours.",
        modality="fluorescence",
        steps=(
            {"op": "channels", "select": [0]},
            {"op": "denoise", "method": "median", "size": 3},
            {"op": "subtract_background", "radius": 50, "method": "rolling_ball"},
            {
                "op": "segment_nuclei",
                "foreground": "bright",
                "sigma": 1.0,
                "method": "otsu",
                "opening_radius": 1,
                "min_area": 30,
                "max_area": 5000,
            },
            {"op": "measure"},
            {"op": "overlay", "style": "contour", "colour": "ffff00"},
        ),
    ),
    Preset(
        name="he-nuclei",
        version=1,
        title="Nuclei in H&E",
        description="Hematoxylin by colour deconvolution (Ruifrok H&E vectors), Otsu, "
        "opening 2 px, watershed split, 40-4000 px; hematoxylin and eosin OD per nucleus; "
        "green contours.",
        modality="brightfield H&E",
        steps=(
            {
                "op": "segment_nuclei",
                "channel": "hematoxylin",
                "foreground": "bright",
                "sigma": 1.5,
                "method": "otsu",
                "opening_radius": 2,
                "min_area": 40,
                "max_area": 4000,
            },
            {"op": "measure", "stains": "he"},
            {"op": "overlay", "style": "contour", "colour": "00ff00"},
        ),
    ),
    Preset(
        name="ihc-dab-quantification",
        version=1,
        title="Nuclear IHC (Ki-67, ER, PR): positive nuclei, H-score, labelling index",
        description="Nuclei from hematoxylin + DAB optical density, Otsu, watershed split, "
        "30-4000 px; nucleus mean DAB OD classed negative/1+/2+/3+ at 0.2/0.4/0.6 (QuPath's "
        "defaults); H-score, labelling index and DAB-positive area fraction; contours "
        "coloured by class (blue negative, yellow 1+, orange 2+, red 3+).",
        modality="brightfield IHC (DAB)",
        steps=(
            {
                "op": "segment_nuclei",
                "channel": "nuclear",
                "foreground": "bright",
                "sigma": 1.0,
                "method": "otsu",
                "opening_radius": 1,
                "min_area": 30,
                "max_area": 4000,
            },
            {"op": "measure", "stains": "hdab", "dab_thresholds": [0.2, 0.4, 0.6]},
            {"op": "overlay", "style": "contour", "colour_by": "class", "thickness": 2},
        ),
    ),
    Preset(
        name="ihc-dab-area",
        version=1,
        title="DAB-positive area (membrane/cytoplasmic IHC)",
        description="No segmentation: tissue (mean OD > 0.08) and DAB-positive pixels "
        "(DAB OD > 0.2) by colour deconvolution (H-DAB vectors); summary with the "
        "DAB-positive fraction of tissue; output is the DAB channel in its colour.",
        modality="brightfield IHC (DAB)",
        steps=(
            {"op": "measure", "stains": "hdab"},
            {"op": "deconvolve", "stains": "hdab", "stain": "dab", "output": "rgb"},
        ),
    ),
)


def _index() -> dict[str, dict[int, Preset]]:
    out: dict[str, dict[int, Preset]] = {}
    for p in _PRESETS:
        out.setdefault(p.name, {})[p.version] = p
    return out


def names() -> list[str]:
    """Names of all presets (each resolves to its latest version)."""
    return sorted(_index())


def get(ref: str) -> Preset:
    """The preset ``name`` (latest version) or ``name@version``.

    Raises
    ------
    InvalidParameter
        (422) for an unknown name or version, listing the known ones.

    Examples
    --------
    >>> get("he-nuclei@1").steps[0]["op"]
    'segment_nuclei'
    """
    index = _index()
    name, _, version = ref.partition("@")
    versions = index.get(name)
    if versions is None:
        raise InvalidParameter(f"unknown preset {name!r}", known=names())
    if not version:
        return versions[max(versions)]
    if not version.isdigit() or int(version) not in versions:
        raise InvalidParameter(
            f"preset {name!r} has no version {version!r}",
            known=[f"{name}@{v}" for v in sorted(versions)],
        )
    return versions[int(version)]


def expand(
    ref: str, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The preset's steps as JSON step specs, with ``overrides`` (op name → parameters)
    merged into every step of that op. Overriding an op the preset lacks is a 422."""
    preset = get(ref)
    steps = [copy.deepcopy(dict(s)) for s in preset.steps]
    present = {s["op"] for s in steps}
    for op, params in (overrides or {}).items():
        if op not in present:
            raise InvalidParameter(
                f"preset {preset.ref} has no {op!r} step to override", known=sorted(present)
            )
        for step in steps:
            if step["op"] == op:
                step.update(params)
    return steps


def catalogue() -> list[dict[str, Any]]:
    """Every published preset version, as JSON."""
    return [p.to_json() for p in sorted(_PRESETS, key=lambda p: (p.name, p.version))]


__all__ = ["Preset", "catalogue", "expand", "get", "names"]
