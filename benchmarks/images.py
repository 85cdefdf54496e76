"""Deterministic, photo-like test images for the render benchmark.

Pure noise defeats JPEG (huge files, unrealistic decode cost) and flat colour is too
cheap; these images mix smooth multi-octave Perlin "terrain", Worley cells (pebbles,
foliage) and a little sensor grain, so their JPEGs compress like photographs
(about 1.5-3 bits per pixel at q=90). The same seeds give the same pixels, so reruns
measure the same bytes. Generated once into ``benchmarks/.work/images``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyvips


@dataclass(frozen=True)
class TestImage:
    name: str
    width: int
    height: int
    fmt: str  # "jpeg" | "png"

    @property
    def filename(self) -> str:
        return f"{self.name}.{'jpg' if self.fmt == 'jpeg' else 'png'}"

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6


IMAGES = {
    "jpeg_2mp": TestImage("jpeg_2mp", 1920, 1280, "jpeg"),  # 2.46 MP
    "jpeg_12mp": TestImage("jpeg_12mp", 4000, 3000, "jpeg"),  # 12 MP
    "png_2mp": TestImage("png_2mp", 1600, 1250, "png"),  # 2.0 MP
    "jpeg_100mp": TestImage("jpeg_100mp", 12500, 8000, "jpeg"),  # 100 MP (the default limit)
}


def _texture(width: int, height: int, seed: int) -> pyvips.Image:
    """An 8-bit sRGB, photo-like texture of ``width`` x ``height`` pixels."""
    scale = max(width, height) / 2000  # keep the look independent of the size
    channels = []
    for band in range(3):
        terrain = (
            pyvips.Image.perlin(width, height, cell_size=int(400 * scale), seed=seed + band) * 0.55
            + pyvips.Image.perlin(width, height, cell_size=int(90 * scale), seed=seed + 10 + band)
            * 0.3
            + pyvips.Image.perlin(width, height, cell_size=max(4, int(12 * scale)), seed=seed + 20)
            * 0.15
        )
        channels.append(terrain)
    cell_size = max(8, int(60 * scale))
    distance = pyvips.Image.worley(width, height, cell_size=cell_size, seed=seed + 30)
    cells = 1 - distance / cell_size  # ~1 at cell centres, ~0 at borders
    rgb = channels[0].bandjoin(channels[1:])  # Perlin is -1..1
    sky = pyvips.Image.xyz(width, height)[1] / height  # 0 top .. 1 bottom
    image = (rgb * 70 + 120) * (0.55 + 0.45 * cells) + sky * [40, 10, -30]
    # hard-edged "objects" with their own fine texture, like leaves or stones in a photo
    fine = pyvips.Image.perlin(width, height, cell_size=max(3, int(5 * scale)), seed=seed + 50)
    shapes = pyvips.Image.perlin(width, height, cell_size=int(150 * scale), seed=seed + 60)
    objects = (fine * 45 + [170, 150, 95]) * (0.6 + 0.4 * cells)
    image = (shapes > 0.05).ifthenelse(objects, image)
    grain = pyvips.Image.gaussnoise(width, height, sigma=4, mean=0, seed=seed + 40)
    image = (image + grain).cast("uchar")  # cast clips to 0..255
    return image.copy(interpretation="srgb")


def ensure(folder: Path, names: Iterable[str] = IMAGES) -> dict[str, Path]:
    """Write the test images ``names`` (default all) into ``folder`` unless present;
    returns name -> path. Each image keeps its own seed whichever are asked for."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    wanted = set(names)
    for seed, spec in enumerate(IMAGES.values()):
        if spec.name not in wanted:
            continue
        path = folder / spec.filename
        if not path.exists():
            tmp = path.with_suffix(".tmp" + path.suffix)
            image = _texture(spec.width, spec.height, seed=1000 * (seed + 1))
            if spec.fmt == "jpeg":
                image.jpegsave(str(tmp), Q=90, optimize_coding=True, keep="none")
            else:
                image.pngsave(str(tmp), compression=6, keep="none")
            tmp.rename(path)
        paths[spec.name] = path
    return paths


if __name__ == "__main__":  # pragma: no cover
    import sys
    import time

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/.work/images")
    started = time.perf_counter()
    for name, path in ensure(out).items():
        print(f"{name}: {path} {path.stat().st_size / 1e6:.1f} MB")
    print(f"{time.perf_counter() - started:.1f} s")
