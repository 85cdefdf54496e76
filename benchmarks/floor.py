"""The in-library floor: the best single-thread CPU time to turn the 12 MP JPEG into a
300 px wide JPEG (q=82) with each library's fastest path, and pixelmill's own pipeline
on the same bytes (no HTTP) for reference.

Run by ``benchmarks/render.py``; prints one JSON object: milliseconds of CPU per image
(median over batches) by method. CPU time, not wall time, so other work on a shared
machine inflates it only a little.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from pathlib import Path

from _harness import batched

WIDTH = 300
QUALITY = 82


def methods(path: Path) -> dict[str, Callable[[], object]]:
    import cv2
    import numpy as np
    import pyvips
    from PIL import Image

    data = path.read_bytes()
    name = str(path)

    def vips_thumbnail() -> object:
        return pyvips.Image.thumbnail(name, WIDTH).jpegsave_buffer(Q=QUALITY, keep="none")

    def vips_thumbnail_buffer() -> object:
        image = pyvips.Image.thumbnail_buffer(data, WIDTH)
        return image.jpegsave_buffer(Q=QUALITY, keep="none")

    def vips_shrink8() -> object:
        image = pyvips.Image.new_from_buffer(data, "", shrink=8, access="sequential")
        return image.thumbnail_image(WIDTH).jpegsave_buffer(Q=QUALITY, keep="none")

    def pillow_draft() -> object:
        with Image.open(io.BytesIO(data)) as im:
            height = round(im.height * WIDTH / im.width)
            im.draft("RGB", (WIDTH, height))
            small = im.resize((WIDTH, height), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        small.save(out, "JPEG", quality=QUALITY)
        return out.getvalue()

    def opencv_reduced() -> object:
        array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_COLOR_8)
        assert array is not None
        height = round(array.shape[0] * WIDTH / array.shape[1])
        small = cv2.resize(array, (WIDTH, height), interpolation=cv2.INTER_AREA)
        return cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])[1]

    return {
        "pyvips thumbnail(file)": vips_thumbnail,
        "pyvips thumbnail_buffer": vips_thumbnail_buffer,
        "pyvips jpegload shrink=8 + thumbnail_image": vips_shrink8,
        "Pillow draft + LANCZOS resize": pillow_draft,
        "OpenCV IMREAD_REDUCED_COLOR_8 + INTER_AREA": opencv_reduced,
    }


def pixelmill_pipeline(path: Path) -> Callable[[], object]:
    from pixelmill.imaging import encode, pipeline
    from pixelmill.imaging.formats import ImageFormat
    from pixelmill.imaging.render import parse_render, to_steps

    steps = to_steps(parse_render({"w": str(WIDTH)}, max_side=8192))
    return lambda: encode.encode(pipeline.run(path, steps), ImageFormat.JPEG, quality=QUALITY)


def main() -> None:
    import cv2
    import pyvips

    path = Path(sys.argv[1])
    batches = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    only = sys.argv[3] if len(sys.argv) > 3 else ""  # one method (the benchmark's pairs)
    pyvips.concurrency_set(1)  # single-thread: a per-core figure
    pyvips.cache_set_max(0)  # no operation cache: every call decodes again
    cv2.setNumThreads(1)
    chosen = {n: fn for n, fn in methods(path).items() if not only or n == only}
    result = {name: batched(fn, batch=8, batches=batches) for name, fn in chosen.items()}
    if not only:
        result["pixelmill pipeline (in-process, no HTTP)"] = batched(
            pixelmill_pipeline(path), batch=8, batches=batches
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
