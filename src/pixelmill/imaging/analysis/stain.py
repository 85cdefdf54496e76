"""Stain separation (colour deconvolution) and stain normalisation for brightfield RGB.

Beer-Lambert: a pixel's optical density ``OD = -log10(I / I0)`` (``I0`` = full scale) is
the sum of each stain's concentration times its unit OD vector. Deconvolution inverts
the 3 x 3 matrix of stain vectors (Ruifrok & Johnston 2001), so concentrations come out
in OD units: a pixel of pure DAB with optical density 0.5 along the DAB vector has
``dab = 0.5``. Stain matrices hold one stain per row, RGB columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.analysis._arrays import check_image, full_scale, row_blocks, spill

StainSet = Literal["he", "hdab", "hed"]
StainName = Literal["hematoxylin", "eosin", "dab", "residual"]

_H = (0.650, 0.704, 0.286)  # Ruifrok & Johnston, as in Fiji and scikit-image
_E = (0.072, 0.990, 0.105)
_DAB = (0.268, 0.570, 0.776)


def _unit(v: np.ndarray) -> np.ndarray:
    return np.asarray(v / np.linalg.norm(v, axis=-1, keepdims=True), dtype=np.float64)


def stain_matrix(
    first: tuple[float, ...], second: tuple[float, ...], third: tuple[float, ...] | None = None
) -> np.ndarray:
    """A 3 x 3 stain matrix (rows = unit OD vectors); the third stain, when not given, is
    the residual orthogonal to the first two (their cross product, as scikit-image)."""
    a, b = _unit(np.asarray(first, float)), _unit(np.asarray(second, float))
    c = _unit(np.cross(a, b)) if third is None else _unit(np.asarray(third, float))
    return np.stack([a, b, c])


#: built-in stain sets: name → (matrix, channel names)
STAIN_SETS: dict[str, tuple[np.ndarray, tuple[str, str, str]]] = {
    "he": (stain_matrix(_H, _E), ("hematoxylin", "eosin", "residual")),
    "hdab": (stain_matrix(_H, _DAB), ("hematoxylin", "dab", "residual")),
    "hed": (stain_matrix(_H, _E, _DAB), ("hematoxylin", "eosin", "dab")),
}


def stains_of(name: str) -> tuple[np.ndarray, tuple[str, str, str]]:
    """The matrix and channel names of a built-in stain set (``he``, ``hdab``, ``hed``)."""
    try:
        return STAIN_SETS[name]
    except KeyError:
        raise InvalidParameter(f"unknown stain set {name!r}", known=sorted(STAIN_SETS)) from None


def _rgb(image: np.ndarray, what: str) -> np.ndarray:
    check_image(image, channels=(3,), what=what)
    return image


def optical_density(rgb: np.ndarray) -> np.ndarray:
    """Optical density per channel, ``-log10(max(I, 1) / I0)``.

    Parameters
    ----------
    rgb : (H, W, 3) uint8, uint16, float32 or float64
        Brightfield RGB; ``I0`` is the dtype's full scale (floats: 1.0, floored at 1/65535).

    Returns
    -------
    numpy.ndarray
        float32 (H, W, 3), OD units (0 = white, 2.4 = black on 8-bit).

    Examples
    --------
    >>> round(float(optical_density(np.full((1, 1, 3), 25, np.uint8))[0, 0, 0]), 3)
    1.009
    """
    _rgb(rgb, "optical density")
    if rgb.dtype in (np.uint8, np.uint16):
        top = full_scale(rgb.dtype)
        values = np.maximum(np.arange(int(top) + 1, dtype=np.float64), 1.0)
        lut = (-np.log10(values / top)).astype(np.float32)
        if rgb.dtype == np.uint8:
            import cv2

            return np.asarray(cv2.LUT(np.ascontiguousarray(rgb), lut))
        return np.take(lut, rgb)
    floor = np.float32(1 / 65535)
    return -np.log10(np.clip(rgb.astype(np.float32), floor, 1.0))


def deconvolve(rgb: np.ndarray, *, stains: str | np.ndarray = "hed") -> np.ndarray:
    """Separate stains: concentrations in OD units, one channel per stain.

    Parameters
    ----------
    rgb : (H, W, 3) uint8, uint16, float32 or float64
        Brightfield RGB.
    stains : {"he", "hdab", "hed"} or (3, 3) array
        Built-in stain set (channel order: hematoxylin, eosin|dab, residual|dab) or a
        matrix with one unit OD vector per row.

    Returns
    -------
    numpy.ndarray
        float32 (H, W, 3): concentration of each stain (OD units, may be slightly
        negative where a pixel is not explained by the stains).

    Examples
    --------
    >>> white = np.full((2, 2, 3), 255, np.uint8)
    >>> float(abs(deconvolve(white, stains="hdab")).max())
    0.0
    """
    _rgb(rgb, "colour deconvolution")
    matrix = stains_of(stains)[0] if isinstance(stains, str) else np.asarray(stains, float)
    if matrix.shape != (3, 3) or abs(np.linalg.det(matrix)) < 1e-9:
        raise InvalidParameter("a stain matrix is 3 x 3 with independent rows")
    import cv2

    inverse = np.linalg.inv(matrix).astype(np.float32)
    out = np.empty((*rgb.shape[:2], 3), np.float32)
    # per pixel: concentrations = od @ inverse (inverse.T applied to each OD vector), a
    # block of rows at a time: no optical densities of the whole image
    for rows in row_blocks(rgb.shape):
        conc = cv2.transform(optical_density(rgb[spill(rows, len(rgb))]), inverse.T)
        out[rows] = conc[: rows.stop - rows.start]
    return out


def stain_planes(
    rgb: np.ndarray, *, stains: str, keep: tuple[int, ...], total_od: bool = False
) -> list[np.ndarray]:
    """The concentrations (float32 (H, W), OD units) of the stains ``keep`` (indices into
    the stain set's channels), and with ``total_od`` the mean optical density of RGB
    last: what :func:`deconvolve` and :func:`optical_density` give, to the bit, without
    their (H, W, 3) arrays (12 bytes a pixel each), computed a block of rows at a time.
    """
    import cv2

    _rgb(rgb, "colour deconvolution")
    inverse = np.linalg.inv(stains_of(stains)[0]).astype(np.float32)
    planes = [np.empty(rgb.shape[:2], np.float32) for _ in range(len(keep) + total_od)]
    for rows in row_blocks(rgb.shape):
        n = rows.stop - rows.start
        od = optical_density(rgb[spill(rows, len(rgb))])
        conc = cv2.transform(od, inverse.T)[:n]
        for plane, index in zip(planes, keep, strict=False):
            plane[rows] = conc[..., index]
        if total_od:
            planes[-1][rows] = od.mean(axis=2)[:n]
    return planes


def stain_channel(rgb: np.ndarray, stain: str) -> np.ndarray:
    """One stain's concentration (float32 (H, W), OD units), or ``"od"``: the total
    optical density (sum over RGB / 3), for any brightfield stain.

    ``stain`` is ``hematoxylin``, ``eosin`` (H&E vectors), ``dab`` (H-DAB vectors) or ``od``.
    """
    if stain == "od":
        return stain_planes(rgb, stains="he", keep=(), total_od=True)[0]
    sets = {"hematoxylin": ("hdab", 0), "eosin": ("he", 1), "dab": ("hdab", 1)}
    if stain not in sets:
        raise InvalidParameter(
            f"unknown stain {stain!r}", known=["dab", "eosin", "hematoxylin", "od"]
        )
    name, index = sets[stain]
    return stain_planes(rgb, stains=name, keep=(index,))[0]


def reconstruct(
    concentrations: np.ndarray,
    *,
    stains: str | np.ndarray = "hed",
    keep: tuple[int, ...] = (0,),
) -> np.ndarray:
    """RGB image of the kept stains only, as Fiji's Colour Deconvolution shows them.

    Parameters
    ----------
    concentrations : (H, W, 3) float32
        Output of :func:`deconvolve` with the same ``stains``.
    keep : tuple of int
        Stain indices (rows of the matrix) to render.

    Returns
    -------
    numpy.ndarray
        uint8 (H, W, 3) RGB.
    """
    matrix = stains_of(stains)[0] if isinstance(stains, str) else np.asarray(stains, float)
    vectors = matrix.astype(np.float32)
    out = np.empty(concentrations.shape, np.uint8)
    # a block of rows at a time: the float32 temporaries (12 bytes a pixel each) stay small
    for rows in row_blocks(concentrations.shape):
        part = concentrations[spill(rows, len(concentrations))]
        selected = np.zeros_like(part, dtype=np.float32)
        for k in keep:
            selected[..., k] = np.maximum(part[..., k], 0)
        od = selected.reshape(-1, 3) @ vectors
        rgb = 255.0 * np.power(np.float32(10.0), -od)
        block = np.clip(rgb + 0.5, 0, 255).astype(np.uint8).reshape(part.shape)
        out[rows] = block[: rows.stop - rows.start]
    return out


def render_stains(
    rgb: np.ndarray, *, stains: str | np.ndarray = "hed", keep: tuple[int, ...] = (0,)
) -> np.ndarray:
    """:func:`reconstruct` of :func:`deconvolve` (uint8 RGB of the kept stains) a block
    of rows at a time: no (H, W, 3) float32 concentrations (12 bytes a pixel)."""
    out = np.empty((*rgb.shape[:2], 3), np.uint8)
    for rows in row_blocks(rgb.shape):
        conc = deconvolve(rgb[spill(rows, len(rgb))], stains=stains)
        out[rows] = reconstruct(conc, stains=stains, keep=keep)[: rows.stop - rows.start]
    return out


# -- Macenko -----------------------------------------------------------------------------

#: reference H&E stain vectors (rows H, E) and 99th-percentile concentrations of
#: Macenko et al. 2009's reference implementation, used as the default target
MACENKO_REFERENCE = np.array([[0.5626, 0.7201, 0.4062], [0.2159, 0.8012, 0.5581]])
MACENKO_REFERENCE_MAX = np.array([1.9705, 1.0308])


@dataclass(frozen=True)
class StainEstimate:
    """Stain vectors found in an image (rows: hematoxylin, eosin; unit OD vectors) and
    each stain's 99th-percentile concentration (OD units)."""

    vectors: np.ndarray
    max_concentrations: np.ndarray

    def to_json(self) -> dict[str, list[float] | list[list[float]]]:
        return {
            "vectors": [[round(float(v), 5) for v in row] for row in self.vectors],
            "max_concentrations": [round(float(v), 5) for v in self.max_concentrations],
        }


def estimate_macenko(
    rgb: np.ndarray,
    *,
    od_threshold: float = 0.15,
    alpha: float = 1.0,
    sample: int = 500_000,
    seed: int = 0,
) -> StainEstimate:
    """Estimate H&E stain vectors (Macenko et al. 2009).

    Pixels whose OD vector is shorter than ``od_threshold`` (background) are ignored; at most
    ``sample`` of the rest are used (a fixed-seed random sample, for speed on large
    images). The two extreme angles (``alpha`` and 100 - ``alpha`` percentiles) in the
    plane of the two main OD directions give the stain vectors.

    Raises
    ------
    InvalidParameter
        When the image holds too little stained tissue to estimate from.
    """
    od = optical_density(_rgb(rgb, "stain estimation")).reshape(-1, 3)
    # the OD norm (not every channel, as in the original paper) so that pale pure-eosin
    # pixels, dark in green only, still count as tissue
    tissue = od[np.linalg.norm(od, axis=1) > od_threshold]
    if len(tissue) < 100:
        raise InvalidParameter(
            "too little stained tissue to estimate stain vectors "
            f"({len(tissue)} pixels above OD {od_threshold})"
        )
    if len(tissue) > sample:
        tissue = tissue[np.random.default_rng(seed).choice(len(tissue), sample, replace=False)]
    tissue = tissue.astype(np.float64)
    _, vectors = np.linalg.eigh(np.cov(tissue.T))
    plane = vectors[:, 1:3]  # the two largest eigenvalues (eigh sorts ascending)
    if plane[0, 0] < 0:
        plane[:, 0] *= -1
    if plane[0, 1] < 0:
        plane[:, 1] *= -1
    projected = tissue @ plane
    angles = np.arctan2(projected[:, 1], projected[:, 0])
    lo, hi = np.percentile(angles, [alpha, 100 - alpha])
    v1 = plane @ np.array([np.cos(lo), np.sin(lo)])
    v2 = plane @ np.array([np.cos(hi), np.sin(hi)])
    # hematoxylin is the bluer one: more absorption in red
    h, e = (v1, v2) if v1[0] > v2[0] else (v2, v1)
    matrix = _unit(np.stack([h, e]))
    matrix = np.abs(matrix)
    conc, *_ = np.linalg.lstsq(matrix.T, tissue.T, rcond=None)
    max_c = np.percentile(conc, 99, axis=1)
    return StainEstimate(vectors=matrix, max_concentrations=max_c)


def normalize_macenko(
    rgb: np.ndarray,
    *,
    target: StainEstimate | None = None,
    source: StainEstimate | None = None,
) -> np.ndarray:
    """Macenko stain normalisation: re-render the image with the target's stain vectors
    and concentration range.

    Parameters
    ----------
    rgb : (H, W, 3) uint8, uint16, float32 or float64
    target : StainEstimate, optional
        Defaults to :data:`MACENKO_REFERENCE`; pass :func:`estimate_macenko` of a
        reference image to match that image.
    source : StainEstimate, optional
        The image's own stains (estimated when not given).

    Returns
    -------
    numpy.ndarray
        uint8 (H, W, 3) RGB.
    """
    target = target or StainEstimate(MACENKO_REFERENCE, MACENKO_REFERENCE_MAX)
    source = source or estimate_macenko(rgb)
    od = optical_density(rgb).reshape(-1, 3)
    pinv = np.linalg.pinv(source.vectors.T).astype(np.float32)  # (2, 3)
    conc = od @ pinv.T
    conc *= (target.max_concentrations / source.max_concentrations).astype(np.float32)
    out_od = conc @ target.vectors.astype(np.float32)
    out = 255.0 * np.power(np.float32(10.0), -out_od)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8).reshape((*rgb.shape[:2], 3))


# -- Reinhard ----------------------------------------------------------------------------


def lab_statistics(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each CIE Lab channel (L 0..100, a/b ±127) of
    ``rgb`` — the target statistics of :func:`normalize_reinhard`."""
    lab = _lab(_rgb(rgb, "Reinhard statistics")).reshape(-1, 3)
    return lab.mean(axis=0).astype(np.float64), lab.std(axis=0).astype(np.float64)


def _lab(rgb: np.ndarray) -> np.ndarray:
    import cv2

    scale = np.float32(1.0 / full_scale(rgb.dtype))
    return np.asarray(cv2.cvtColor(rgb.astype(np.float32) * scale, cv2.COLOR_RGB2LAB))


def normalize_reinhard(
    rgb: np.ndarray,
    *,
    target_mean: np.ndarray,
    target_std: np.ndarray,
) -> np.ndarray:
    """Reinhard colour transfer: match each Lab channel's mean and standard deviation to
    the target's (from :func:`lab_statistics` of a reference image).

    Parameters
    ----------
    rgb : (H, W, 3) uint8, uint16, float32 or float64
    target_mean, target_std : (3,) arrays
        Lab statistics (L 0..100, a/b ±127).

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``rgb``.
    """
    import cv2

    lab = _lab(_rgb(rgb, "Reinhard normalisation"))
    flat = lab.reshape(-1, 3)
    mean, std = flat.mean(axis=0), flat.std(axis=0)
    gain = np.asarray(target_std, np.float32) / np.maximum(std, 1e-6)
    flat[:] = (flat - mean) * gain + np.asarray(target_mean, np.float32)
    out = np.asarray(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB))
    top = full_scale(rgb.dtype)
    if rgb.dtype.kind == "f":
        return np.clip(out, 0, 1).astype(rgb.dtype)
    return np.clip(out * top + 0.5, 0, top).astype(rgb.dtype)


__all__ = [
    "MACENKO_REFERENCE",
    "MACENKO_REFERENCE_MAX",
    "STAIN_SETS",
    "StainEstimate",
    "deconvolve",
    "estimate_macenko",
    "lab_statistics",
    "normalize_macenko",
    "normalize_reinhard",
    "optical_density",
    "reconstruct",
    "render_stains",
    "stain_channel",
    "stain_matrix",
    "stain_planes",
    "stains_of",
]
