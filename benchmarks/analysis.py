"""Analysis benchmark: preprocessing ops vs the fastest library call, and whole-slide
tiling throughput and peak memory on a generated pyramidal TIFF.

    python benchmarks/analysis.py ops --repeat 7      # 2048² and 12 MP, paired medians
    python benchmarks/analysis.py slide --side 50000 --tissue 20000  # generate + analyse + DZI
    python benchmarks/analysis.py ops --quick         # 1024² only, 3 rounds
    python benchmarks/analysis.py slide --quick       # 8192² with 4096² of tissue

``ops`` compares each pixelmill core function with the same operation called directly on
the library that implements it fastest here (OpenCV for CLAHE/denoise/unsharp/top-hat,
scikit-image for rolling ball, percentile stretch and colour deconvolution, numpy for
channel selection); ratio = library time / pixelmill time (>= 0.9 wanted). ``slide``
runs ``pixelmill.imaging.slides`` in a child process and reports its peak RSS
(``ru_maxrss`` of the child), so the parent's memory does not count.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _harness import WORK as BENCH_WORK
from _harness import geomean, interleaved, median, save

WORK = BENCH_WORK / "analysis"


def paired_medians(a: Callable[[], Any], b: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Median seconds of ``a`` and ``b``, run alternately (a, b, b, a, ...) so that load
    from other processes on a shared machine hits both alike."""
    runs = interleaved({"a": a, "b": b}, repeat, clock=CLOCK)
    return median(runs["a"]), median(runs["b"])


#: CPU seconds of this process (all threads): on a shared machine, other processes'
#: load does not enter the comparison (``--clock wall`` for elapsed time instead)
CLOCK: Callable[[], float] = time.process_time


def he_like(height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 RGB that looks like H&E: eosin background with hematoxylin nuclei."""
    import cv2

    rng = np.random.default_rng(seed)
    h = np.zeros((height, width), np.float32)
    n = height * width // 900
    rows, cols = rng.integers(0, height, n), rng.integers(0, width, n)
    radii = rng.integers(5, 11, n)
    for r, c, rad in zip(rows, cols, radii, strict=True):
        cv2.circle(h, (int(c), int(r)), int(rad), float(rng.uniform(0.5, 1.0)), -1)
    h = cv2.GaussianBlur(h, (0, 0), 1.2)
    e = 0.25 + 0.1 * cv2.GaussianBlur(rng.random((height, width)).astype(np.float32), (0, 0), 8)
    hv = np.array([0.650, 0.704, 0.286]) / np.linalg.norm([0.650, 0.704, 0.286])
    ev = np.array([0.072, 0.990, 0.105]) / np.linalg.norm([0.072, 0.990, 0.105])
    od = h[..., None] * hv + e[..., None] * ev
    noise = rng.normal(0, 2.0, (height, width, 3))
    return np.clip(255 * 10 ** (-od) + noise + 0.5, 0, 255).astype(np.uint8)


# -- ops ---------------------------------------------------------------------------------


SIZES = {"2048²": (2048, 2048), "12 MP": (3000, 4000)}


def bench_ops(repeat: int, sizes: dict[str, tuple[int, int]] = SIZES) -> list[dict[str, Any]]:
    import cv2

    cv2.setNumThreads(max(1, os.cpu_count() or 1))
    rows: list[dict[str, Any]] = []
    for label, (h, w) in sizes.items():
        rows.extend(_bench_size(label, h, w, repeat))
    return rows


Case = tuple[str, Callable[[], Any], Callable[[], Any], str]


def _bench_size(label: str, h: int, w: int, repeat: int) -> list[dict[str, Any]]:
    """Every case on an H&E-like image of ``h`` x ``w``: pixelmill vs the library call."""
    import cv2

    rows = []
    rgb = he_like(h, w)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    grey16 = grey.astype(np.uint16) * 257
    for name, ours, theirs, peer in [*_filter_cases(rgb, grey), *_intensity_cases(rgb, grey16)]:
        reps = 2 if "nlm" in name else repeat
        t_ours, t_lib = paired_medians(ours, theirs, reps)
        rows.append(
            {
                "size": label,
                "op": name,
                "clock": "cpu" if CLOCK is time.process_time else "wall",
                "pixelmill_ms": round(t_ours * 1000, 1),
                "library_ms": round(t_lib * 1000, 1),
                "ratio": round(t_lib / t_ours, 2),
                "peer": peer,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _filter_cases(rgb: np.ndarray, grey: np.ndarray) -> list[Case]:
    """Contrast, denoising and sharpening: pixelmill vs OpenCV."""
    import cv2

    from pixelmill.imaging.analysis import preprocess as pre

    def cv_clahe() -> Any:
        lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
        lab[..., 0] = cv2.createCLAHE(2.0, (8, 8)).apply(lab[..., 0])
        return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)

    def cv_unsharp() -> Any:
        blurred = cv2.GaussianBlur(rgb, (0, 0), 2.0)
        return cv2.addWeighted(rgb, 2.0, blurred, -1.0, 0)

    return [
        (
            "clahe (RGB, Lab L)",
            lambda: pre.clahe(rgb),
            cv_clahe,
            "cv2 createCLAHE on Lab L",
        ),
        (
            "denoise median 5 (RGB)",
            lambda: pre.denoise(rgb, method="median", size=5),
            lambda: cv2.medianBlur(rgb, 5),
            "cv2.medianBlur",
        ),
        (
            "denoise bilateral (RGB)",
            lambda: pre.denoise(rgb, method="bilateral", strength=0.1, sigma=3),
            lambda: cv2.bilateralFilter(rgb, 13, 25.5, 3),
            "cv2.bilateralFilter",
        ),
        (
            "denoise nlm (grey)",
            lambda: pre.denoise(grey, method="nlm", strength=0.04),
            lambda: cv2.fastNlMeansDenoising(grey, None, 10.2, 7, 21),
            "cv2.fastNlMeansDenoising",
        ),
        (
            "unsharp mask (RGB)",
            lambda: pre.unsharp_mask(rgb, sigma=2, amount=1),
            cv_unsharp,
            "cv2 GaussianBlur + addWeighted",
        ),
    ]


def _intensity_cases(rgb: np.ndarray, grey16: np.ndarray) -> list[Case]:
    """Background, intensity, stain and channel ops: pixelmill vs OpenCV, SciPy,
    scikit-image and numpy."""
    import cv2
    from scipy import ndimage
    from skimage import color, exposure
    from skimage.restoration import ball_kernel

    from pixelmill.imaging.analysis import preprocess as pre
    from pixelmill.imaging.analysis import stain

    h, w = grey16.shape
    small = cv2.resize(grey16, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (31, 31))
    kernel = ball_kernel(10, 2)
    ball_fp = np.isfinite(kernel)
    ball_h = np.where(ball_fp, kernel - 10.0, 0.0)

    def sk_normalize() -> Any:
        lo, hi = np.percentile(grey16, (1, 99.8))
        return exposure.rescale_intensity(grey16, in_range=(lo, hi), out_range="dtype")

    return [
        (
            "background top-hat r=15 (grey16)",
            lambda: pre.subtract_background(grey16, radius=15, method="tophat"),
            lambda: cv2.morphologyEx(grey16, cv2.MORPH_TOPHAT, disk),
            "cv2.morphologyEx TOPHAT",
        ),
        (
            "background rolling ball r=10 (grey16, 1/4 size)",
            lambda: pre.subtract_background(small, radius=10, method="rolling_ball"),
            lambda: small - ndimage.grey_opening(small, footprint=ball_fp, structure=ball_h),
            "scipy grey_opening with the same ball",
        ),
        (
            "normalize percentiles (grey16)",
            lambda: pre.normalize_percentile(grey16),
            sk_normalize,
            "np.percentile + skimage rescale_intensity",
        ),
        (
            "colour deconvolution HED (RGB)",
            lambda: stain.deconvolve(rgb, stains="hed"),
            lambda: color.rgb2hed(rgb),
            "skimage rgb2hed",
        ),
        (
            "channels select [2] (RGB)",
            lambda: pre.select_channels(rgb, [2]),
            lambda: np.ascontiguousarray(rgb[..., 2]),
            "numpy indexing + copy",
        ),
    ]


# -- slide -------------------------------------------------------------------------------


def make_slide(path: Path, side: int, tissue: int) -> Path:
    """A pyramidal tiled BigTIFF (JPEG Q85, 512-px tiles) of ``side``² pixels: glass
    (RGB 242) with a ``tissue``² block of H&E-like tissue in the middle, tiled by libvips
    from a 2048² patch (mirrored, so seams are smooth); streamed, so generating it needs
    little memory. Real slides are mostly glass too; tiles without tissue are skipped."""
    import pyvips

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    patch = pyvips.Image.new_from_array(he_like(2048, 2048), interpretation="srgb")
    quad = patch.join(patch.fliphor(), "horizontal")
    quad = quad.join(quad.flipver(), "vertical")
    n = tissue // quad.width + 1
    block = quad.replicate(n, n).crop(0, 0, tissue, tissue)
    glass = (pyvips.Image.black(side, side, bands=3) + 242).cast("uchar")
    offset = (side - tissue) // 2
    slide = glass.insert(block, offset, offset).copy(interpretation="srgb")
    tmp = path.with_suffix(".partial.tif")
    slide.tiffsave(
        str(tmp),
        tile=True,
        tile_width=512,
        tile_height=512,
        pyramid=True,
        compression="jpeg",
        Q=85,
        bigtiff=True,
    )
    tmp.rename(path)
    return path


CHILD = """
import json, resource, sys, time
from pathlib import Path
from pixelmill.imaging.slides import analyse_slide, deepzoom, Slide
mode, path, out, workers = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
t0 = time.perf_counter()
if mode == "analyse":
    result = analyse_slide(path, out, preset="he-nuclei", workers=workers)
    body = {k: result.summary[k] for k in ("object_count", "tiling", "seconds", "megapixels_per_second")}
else:
    deepzoom(Slide(path), out)
    body = {"seconds": time.perf_counter() - t0}
usage = resource.getrusage(resource.RUSAGE_SELF)
body["peak_rss_mb"] = usage.ru_maxrss / 1024
body["cpu_seconds"] = usage.ru_utime + usage.ru_stime
print(json.dumps(body))
"""


def bench_slide(
    side: int, tissue: int, workers: int, modes: tuple[str, ...] = ("analyse", "dzi")
) -> dict[str, Any]:
    import shutil

    slide = WORK / f"slide_{side}_{tissue}.tif"
    t0 = time.perf_counter()
    make_slide(slide, side, tissue)
    print(f"slide {slide} ready ({time.perf_counter() - t0:.0f} s)", flush=True)
    results: dict[str, Any] = {
        "side": side,
        "megapixels": side * side / 1e6,
        "tissue_megapixels": tissue * tissue / 1e6,
        "file_mb": round(slide.stat().st_size / 1e6, 1),
    }
    for mode in modes:
        out = WORK / f"out_{side}_{mode}"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, mode, str(slide), str(out), str(workers)],
            capture_output=True,
            text=True,
            check=True,
        )
        body = json.loads(proc.stdout.strip().splitlines()[-1])
        body["wall_seconds"] = round(time.perf_counter() - t0, 1)
        body["megapixels_per_second"] = round(side * side / 1e6 / body["wall_seconds"], 2)
        results[mode] = body
        print(mode, json.dumps(body), flush=True)
        shutil.rmtree(out, ignore_errors=True)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    results["max_child_rss_mb"] = round(children, 1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    o = sub.add_parser("ops")
    o.add_argument("--repeat", type=int, default=5)
    o.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    o.add_argument("--quick", action="store_true", help="quick mode: 1024² only, 3 rounds")
    s = sub.add_parser("slide")
    s.add_argument("--side", type=int, default=50_000)
    s.add_argument("--tissue", type=int, default=20_000, help="side of the tissue block")
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--modes", default="analyse,dzi", help="analyse and/or dzi")
    s.add_argument("--quick", action="store_true", help="quick mode: 8192² with 4096² tissue")
    args = parser.parse_args()
    if args.what == "ops":
        global CLOCK
        CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
        sizes = {"1024²": (1024, 1024)} if args.quick else SIZES
        rows = bench_ops(3 if args.quick else args.repeat, sizes)
        ratios = [r["ratio"] for r in rows]
        save(
            "analysis-ops",
            {"rows": rows},
            [
                f"library time / pixelmill time over {len(rows)} ops: geometric mean "
                f"{geomean(ratios):.2f}, lowest {min(ratios):.2f} "
                f"({min(rows, key=lambda r: r['ratio'])['op']}, {rows[0]['size']})"
            ],
        )
    else:
        if args.quick:
            args.side, args.tissue = 8192, 4096
        modes = tuple(m for m in args.modes.split(",") if m)
        result = bench_slide(args.side, args.tissue, args.workers, modes)
        print(json.dumps(result, indent=2))
        save("analysis-slide", result, [slide_headline(result, modes)])


def slide_headline(result: dict[str, Any], modes: tuple[str, ...]) -> str:
    """Megapixels per second and peak RSS of each mode on the generated slide."""
    parts = [
        f"{mode} {result[mode]['megapixels_per_second']:.1f} MP/s, peak RSS "
        f"{result[mode]['peak_rss_mb']:.0f} MB"
        for mode in modes
    ]
    return f"slide {result['side']}² ({result['megapixels']:.0f} MP): " + "; ".join(parts)


if __name__ == "__main__":
    main()
