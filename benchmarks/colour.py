"""What colour management costs a render: the same 12 MP photo tagged sRGB (a camera's
usual profile, no transform) and Display P3 (an iPhone's, converted to sRGB by
littleCMS), rendered in-process to JPEG at two widths; CPU ms per render, interleaved
rounds, medians, and the paired P3/sRGB ratio (the issue's goal: at most 1.10).

    .venv/bin/python benchmarks/colour.py [--quick] [--rounds N]

Single libvips thread and no operation cache, as ``benchmarks/floor.py``. The P3 photo
also cannot take the OpenCV reduced-JPEG path (it steps aside for non-sRGB profiles),
so the ratio is the whole cost a user sees, not the transform alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from _harness import WORK, interleaved, median, paired_ratio, parse, parser, save, table

WIDTHS = (300, 1200)
QUALITY = 82


def photo(path: Path, profile: str) -> Path:
    """A 4032 x 3024 JPEG (gradients + noise, q=90) tagged with a libvips profile."""
    import numpy as np
    import pyvips

    if path.exists():
        return path
    rng = np.random.default_rng(0)
    rows, cols = 3024, 4032
    yy, xx = np.mgrid[0:rows, 0:cols]
    base = np.stack([xx * 255 / cols, yy * 255 / rows, (xx + yy) % 256], axis=-1)
    pixels = np.clip(base + rng.normal(0, 12, (rows, cols, 3)), 0, 255).astype(np.uint8)
    image = pyvips.Image.new_from_array(pixels).copy(interpretation="srgb")
    icc = image.icc_export(output_profile=profile).get("icc-profile-data")
    image.set_type(pyvips.GValue.blob_type, "icc-profile-data", icc)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.write_to_file(str(path), Q=90, keep="icc")
    return path


def render(path: Path, width: int) -> Callable[[], object]:
    from pixelmill.imaging import encode, pipeline
    from pixelmill.imaging.formats import ImageFormat
    from pixelmill.imaging.render import parse_render, to_steps

    steps = to_steps(parse_render({"w": str(width)}, max_side=8192))
    return lambda: encode.encode(pipeline.run(path, steps), ImageFormat.JPEG, quality=QUALITY)


def main() -> None:
    import pyvips

    p = parser(__doc__, "10 rounds")
    p.add_argument("--rounds", type=int, default=40)
    args = parse(p, {"rounds": 10})
    pyvips.concurrency_set(1)
    pyvips.cache_set_max(0)
    photos = {name: photo(WORK / f"colour-{name}.jpg", name) for name in ("srgb", "p3")}
    rows, result = [], {}
    for width in WIDTHS:
        fns = {name: render(path, width) for name, path in photos.items()}
        samples = interleaved(fns, args.rounds, clock=time.process_time)
        ms = {name: median(s) * 1000 for name, s in samples.items()}
        ratio = paired_ratio(samples["p3"], samples["srgb"])
        result[f"w{width}"] = {"srgb_ms": ms["srgb"], "p3_ms": ms["p3"], "ratio": ratio}
        rows.append(
            (
                f"12 MP JPEG → {width} px JPEG",
                f"{ms['srgb']:.1f}",
                f"{ms['p3']:.1f}",
                f"{ratio:.2f}x",
            )
        )
    print(table(("render", "sRGB-tagged ms CPU", "Display-P3 ms CPU", "P3 / sRGB"), rows, "lrrr"))
    save(
        "colour",
        {"rounds": args.rounds, **result},
        [f"P3 / sRGB CPU per render, {r[0]}: {r[3]} ({r[1]} vs {r[2]} ms)" for r in rows],
    )


if __name__ == "__main__":
    main()
