"""CPU of each stage of a GIF render in-process (issue 19's GIF rows against sharp).

One libvips thread, the operation cache off, ``time.process_time`` medians::

    PYTHONPATH=src .venv/bin/python benchmarks/gif_stages.py           # this tree
    PYTHONPATH=/tmp/base/src .venv/bin/python benchmarks/gif_stages.py --render-only
    PYTHONPATH=src .venv/bin/python benchmarks/gif_stages.py --sharp   # sharp's too

The GIF is ``sharp_peer.py``'s (480x360, 12 frames, made if missing). "stages" times
libvips calls alone (decode, the tree's own alpha check ``is_opaque`` and frame 0 as the
tree's resize step gets it, the resize with four bands or three, each encoder with four
bands or three); "render" the gateway's own path for each output (``pipeline.run`` +
``encode``, as ``sharp_peer``'s cells ask: 400x300 cover, q 82, a kept-decode store of
0 bytes), so running it from another tree (``PYTHONPATH``) gives that tree's numbers for
a before/after. ``--sharp`` then runs sharp's own stages of the JPEG and AVIF renders
in-process (``benchmarks/sharp/gif_stages.mjs``, sharp installed as ``sharp_peer.py``
does), measured the same way.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("VIPS_CONCURRENCY", "1")  # before libvips starts

import pyvips
from _harness import ROOT, WORK, parse, parser
from sharp_peer import SHARP_DIR, ensure_sharp, make_images

from pixelmill.imaging import encode as encoding
from pixelmill.imaging import pipeline
from pixelmill.imaging.alpha import is_opaque
from pixelmill.imaging.formats import ImageFormat
from pixelmill.imaging.gif import opaque_first_frame as first
from pixelmill.imaging.ops import OpContext
from pixelmill.imaging.render import parse_render, to_steps
from pixelmill.services.intermediates import IntermediateCache

COVER: dict[str, Any] = {"height": 300, "crop": "centre", "size": "down"}


def timed(name: str, fn: Callable[[], object], reps: int) -> None:
    fn()
    spent = []
    for _ in range(reps):
        started = time.process_time()
        fn()
        spent.append((time.process_time() - started) * 1000)
    print(f"{name:58s} {statistics.median(spent):7.2f} ms", flush=True)


def stages(data: bytes, reps: int) -> None:
    def frame0() -> pyvips.Image:
        return pyvips.Image.new_from_buffer(data, "", access="sequential")

    def frames() -> pyvips.Image:
        return pyvips.Image.new_from_buffer(data, "", access="random", n=-1)

    def per_frame(image: pyvips.Image) -> pyvips.Image:
        h = int(image.get("page-height"))
        out = [image.crop(0, y, image.width, h) for y in range(0, image.height, h)]
        return pyvips.Image.arrayjoin([f.thumbnail_image(400, **COVER) for f in out], across=1)

    timed("header only", lambda: pyvips.Image.new_from_buffer(data, ""), reps)
    timed("decode frame 0 into memory", lambda: frame0().copy_memory(), reps)
    memory = frame0().copy_memory()
    timed("alpha check of the decoded frame (is_opaque)", lambda: is_opaque(memory), reps)
    timed(
        "thumbnail, RGBA (premultiplied, float)",
        lambda: memory.thumbnail_image(400, **COVER).copy_memory(),
        reps,
    )
    timed("thumbnail, RGB", lambda: memory[:3].thumbnail_image(400, **COVER).copy_memory(), reps)
    # the tree's own frame 0 (decode, opacity proof, RGB) and the resize of it: what the
    # render's resize step runs (its memory image with or without the sequential hint)
    timed("frame 0 as the render decodes it (opaque_first_frame)", lambda: first(data), reps)
    frame = first(data)
    assert frame is not None, "the benchmark's GIF is opaque"
    timed(
        "thumbnail of that frame", lambda: frame.thumbnail_image(400, **COVER).copy_memory(), reps
    )
    rgba = memory.thumbnail_image(400, **COVER).copy_memory()
    for fmt in (ImageFormat.JPEG, ImageFormat.PNG, ImageFormat.AVIF):
        for name, image in (("RGBA", rgba), ("RGB", rgba[:3].copy_memory())):
            body = encoding.encode(image, fmt, quality=82)
            timed(
                f"encode {fmt.value} {name} ({len(body)} bytes)",
                lambda image=image, fmt=fmt: encoding.encode(image, fmt, quality=82),
                reps,
            )
    few = max(3, reps // 10)
    timed("all 12 frames: decode", lambda: frames().copy_memory(), few)
    timed("all 12 frames: resize each, RGBA", lambda: per_frame(frames()).copy_memory(), few)
    timed("all 12 frames: resize each, RGB", lambda: per_frame(frames()[:3]).copy_memory(), few)


def render(path: Path, fmt: str) -> bytes:
    query = {"w": "400", "h": "300", "format": fmt, "q": "82", "depth": "8"}
    p = parse_render(query, max_side=8192)
    ctx = OpContext(intermediates=IntermediateCache(0), source_id="gif")
    pages = "all" if fmt == "webp" else None
    image = pipeline.run(path, to_steps(p), ctx, pages=pages)
    return encoding.encode(image, ImageFormat(fmt), quality=82, depth=8)


def main() -> None:
    p = parser(__doc__, "10 repetitions")
    p.add_argument("--reps", type=int, default=40, help="repetitions per stage (median)")
    p.add_argument("--render-only", action="store_true", help="the gateway's path only")
    p.add_argument("--sharp", action="store_true", help="sharp's stages too (node)")
    args = parse(p, {"reps": 10})
    pyvips.cache_set_max(0)
    path = make_images(WORK / "images")["gif"]
    if not args.render_only:
        stages(path.read_bytes(), args.reps)
    for fmt in ("jpeg", "png", "webp", "avif"):
        reps = max(3, args.reps // 10) if fmt == "webp" else args.reps
        body = render(path, fmt)
        bands = pyvips.Image.new_from_buffer(body, "").bands
        timed(
            f"render {fmt} ({len(body)} bytes, {bands} bands)",
            lambda fmt=fmt: render(path, fmt),
            reps,
        )
    if args.sharp:
        sharp_stages(path, args.reps)


def sharp_stages(path: Path, reps: int) -> None:
    """sharp's stages of the same renders, in-process in Node (its own median CPU)."""
    ensure_sharp()
    for script in ("gif_stages.mjs", "encoders.mjs"):
        shutil.copy(ROOT / "benchmarks" / "sharp" / script, SHARP_DIR / script)
    cmd = ["node", str(SHARP_DIR / "gif_stages.mjs"), str(path), str(reps)]
    print(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout, end="")


if __name__ == "__main__":
    main()
