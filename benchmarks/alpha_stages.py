"""Opaque alpha dropped (``pixelmill.imaging.alpha``): CPU of the render path for an
RGBA PNG whose alpha is 255 everywhere and for one with a real alpha (the gradient of
``sharp_peer.py``'s ``png_rgba``), with the checks on and off, decode streamed and kept.

In-process, one libvips thread, operation cache off; 2 MP PNG to 400x300 cover; rounds
interleaved, median CPU ms per render. ``before`` = both checks patched out (what
pixelmill did before); bytes and the largest pixel difference are printed beside.

    PYTHONPATH=src .venv/bin/python benchmarks/alpha_stages.py --reps 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("VIPS_CONCURRENCY", "1")

import numpy as np
import pyvips
from images import _texture

from pixelmill.imaging import encode as encoding
from pixelmill.imaging import intermediates, pipeline
from pixelmill.imaging.formats import ImageFormat
from pixelmill.imaging.ops import OpContext
from pixelmill.imaging.render import parse_render, to_steps
from pixelmill.services.intermediates import IntermediateCache

REAL = (intermediates.drop_opaque_alpha, encoding._ALPHA_KEPT)


def _inputs(folder: Path) -> dict[str, str]:
    rgb = _texture(1600, 1250, seed=7)
    gradient = (pyvips.Image.xyz(1600, 1250)[0] * 255 / 1600).cast("uchar")
    paths = {"opaque RGBA PNG": folder / "opaque.png", "RGBA PNG (gradient)": folder / "g.png"}
    for path, alpha in zip(paths.values(), (255, gradient), strict=True):
        rgb.bandjoin(alpha).copy(interpretation="srgb").pngsave(str(path), compression=6)
    return {k: str(v) for k, v in paths.items()}


def _render(path: str, fmt: str, kept: IntermediateCache | None) -> bytes:
    p = parse_render({"w": "400", "h": "300", "format": fmt, "q": "82"}, max_side=8192)
    ctx = OpContext()
    if kept is not None:
        ctx.intermediates, ctx.source_id = kept, path
    image = pipeline.run(path, to_steps(p), ctx)
    return encoding.encode(image, ImageFormat(fmt), quality=82)


def _mode(on: bool) -> None:
    intermediates.drop_opaque_alpha = REAL[0] if on else (lambda image: image)  # type: ignore[assignment]
    encoding._ALPHA_KEPT = REAL[1] if on else ()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5, help="interleaved rounds")
    ap.add_argument("--renders", type=int, default=4, help="renders per measurement")
    args = ap.parse_args()
    pyvips.cache_set_max(0)
    with tempfile.TemporaryDirectory() as tmp:
        paths = _inputs(Path(tmp))
        print(
            "| input | decode | output | before ms | after ms | bytes before / after | max diff |"
        )
        print("|---|---|---|--:|--:|--:|--:|")
        for name, path in paths.items():
            for kept in (False, True):
                for fmt in ("jpeg", "png", "webp", "avif"):
                    cpu: dict[bool, list[float]] = {False: [], True: []}
                    out: dict[bool, bytes] = {}
                    for _ in range(args.reps):
                        for on in (False, True):
                            _mode(on)
                            store = IntermediateCache(256 << 20) if kept else None
                            out[on] = _render(path, fmt, store)  # fills the store when kept
                            start = time.process_time()
                            for _ in range(args.renders):
                                _render(path, fmt, store)
                            cpu[on].append((time.process_time() - start) / args.renders * 1e3)
                    a, b = (pyvips.Image.new_from_buffer(out[k], "").numpy() for k in (False, True))
                    diff = int(np.abs(a[..., :3].astype(int) - b[..., :3].astype(int)).max())
                    print(
                        f"| {name} | {'kept' if kept else 'streamed'} | {fmt} | "
                        f"{statistics.median(cpu[False]):.1f} | {statistics.median(cpu[True]):.1f} | "
                        f"{len(out[False])} / {len(out[True])} | {diff} |",
                        flush=True,
                    )
    _mode(True)


if __name__ == "__main__":
    main()
