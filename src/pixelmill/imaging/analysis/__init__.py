"""Biomedical image analysis: the pure core (numpy arrays in, arrays and tables out).

===================  ==========================================================
module               what it holds
===================  ==========================================================
``preprocess``       CLAHE, denoising, unsharp mask
``background``       background subtraction (rolling ball, top-hat)
``intensity``        percentile normalisation, channel selection
``stain``            colour deconvolution (H&E, H-DAB, HED), Macenko and Reinhard
                     stain normalisation
``thresholds``       smoothing, global and local thresholds, noise estimate
``morphology``       opening, hole filling, watershed splitting, size filter
``segment``          :func:`segment_nuclei` (the two above chained), channel choice
``measure``          per-object table (shape, intensity, stain maps)
``summary``          per-image counters and summary, IHC (H-score, ...)
``overlay``          contours/fills over the image, side-by-side
``export``           CSV / Parquet / JSON / label-TIFF bytes
``presets``          named, versioned pipelines of registry steps
``tiles``            tiled segmentation with seam-free stitching (whole slides)
===================  ==========================================================

dtype rules are in ``_arrays``: integers are scaled by their full scale (uint8 / 255,
uint16 / 65535) where a common scale is needed, floats are taken as 0..1. OpenCV,
scikit-image and scipy are imported inside the functions, so importing this package is
cheap. Every function is also reachable as a registry operation (``imaging.ops``).
Submodules are not shadowed by functions of the same name (use
``from pixelmill.imaging.analysis.overlay import overlay``).
"""

from __future__ import annotations

from pixelmill.imaging.analysis.measure import measure_objects, summarize, tally
from pixelmill.imaging.analysis.overlay import display_rgb, side_by_side
from pixelmill.imaging.analysis.preprocess import (
    clahe,
    denoise,
    normalize_percentile,
    select_channels,
    subtract_background,
    unsharp_mask,
)
from pixelmill.imaging.analysis.segment import Segmentation, segment_nuclei
from pixelmill.imaging.analysis.stain import (
    deconvolve,
    estimate_macenko,
    normalize_macenko,
    normalize_reinhard,
)

__all__ = [
    "Segmentation",
    "clahe",
    "deconvolve",
    "denoise",
    "display_rgb",
    "estimate_macenko",
    "measure_objects",
    "normalize_macenko",
    "normalize_percentile",
    "normalize_reinhard",
    "segment_nuclei",
    "select_channels",
    "side_by_side",
    "subtract_background",
    "summarize",
    "tally",
    "unsharp_mask",
]
