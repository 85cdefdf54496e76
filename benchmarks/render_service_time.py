"""The render service time the autoscaling simulator uses, measured: CPU ms of each
cache-miss render of the render table (benchmarks/render.py's five rows), in-process,
one libvips and one OpenCV thread (a per-core figure, as benchmarks/floor.py), every
render timed on its own, the rows interleaved.

    PYTHONPATH=src .venv/bin/python benchmarks/render_service_time.py [--rounds 40]

Prints per row the median, p90, p99 and max CPU ms, the load average before and after,
and the lognormal fitted to all renders (equal rows, as the simulator's trace mixes
them); saves ``benchmarks/.work/render_service_time-results.json``. Why in-process and
not the server's CPU per request: on this shared 2-core machine the server's figure
moves with the load by up to 4x (docs/benchmarks.md, "Quiet rerun"); the HTTP and
framework cost a miss adds on top is measured there (~1.4 ms) and added here.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from pathlib import Path

from _harness import parse, parser, save

#: what a miss pays outside the render in the server (docs/benchmarks.md: a 64x64 JPEG
#: miss 2.3 ms of CPU through the server against 0.9 ms in-process)
FRAMEWORK_MS = 1.4

ROWS = {
    "2.5 MP JPEG → 300x200 JPEG": ("jpeg_2mp", {"w": "300", "h": "200"}, "jpeg"),
    "12 MP JPEG → 300 px JPEG": ("jpeg_12mp", {"w": "300"}, "jpeg"),
    "12 MP JPEG → 800 px WebP": ("jpeg_12mp", {"w": "800"}, "webp"),
    "2 MP PNG → 300x200 JPEG": ("png_2mp", {"w": "300", "h": "200"}, "jpeg"),
    "2.5 MP JPEG → 300x200 + blur sigma 2": (
        "jpeg_2mp",
        {"w": "300", "h": "200", "blur": "2"},
        "jpeg",
    ),
}


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.floor(q * len(ordered)))]


def main() -> None:
    p = parser(__doc__, "5 rounds")
    p.add_argument("--rounds", type=int, default=40)
    args = parse(p, {"rounds": 5})
    import cv2
    import pyvips
    from images import ensure

    from pixelmill.imaging import encode, pipeline
    from pixelmill.imaging.formats import ImageFormat
    from pixelmill.imaging.render import parse_render, to_steps

    pyvips.concurrency_set(1)
    pyvips.cache_set_max(0)
    cv2.setNumThreads(1)
    paths = ensure(Path(__file__).parent / ".work" / "images", ["jpeg_2mp", "jpeg_12mp", "png_2mp"])
    renders = {}
    for title, (image, query, fmt) in ROWS.items():
        steps = to_steps(parse_render(query, max_side=8192))
        kind = ImageFormat.JPEG if fmt == "jpeg" else ImageFormat.WEBP
        renders[title] = (paths[image], steps, kind)
    load_before = os.getloadavg()
    samples: dict[str, list[float]] = {t: [] for t in ROWS}
    for r in range(args.rounds + 1):
        for title, (path, steps, kind) in renders.items():
            started = time.process_time()
            encode.encode(pipeline.run(path, steps), kind, quality=82)
            if r:  # the first round warms up
                samples[title].append((time.process_time() - started) * 1000)
    load_after = os.getloadavg()
    every = [ms + FRAMEWORK_MS for s in samples.values() for ms in s]
    logs = [math.log(ms) for ms in every]
    median, sigma = math.exp(statistics.fmean(logs)), statistics.stdev(logs)
    rows = {
        t: {
            "median": statistics.median(s),
            "p90": _quantile(s, 0.9),
            "p99": _quantile(s, 0.99),
            "max": max(s),
        }
        for t, s in samples.items()
    }
    for title, row in rows.items():
        print(f"{title}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in row.items()))
    beyond = 1 - 0.5 * math.erfc(-math.log(150 / median) / (sigma * math.sqrt(2)))
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(
        f"fit (+{FRAMEWORK_MS} ms framework): lognormal median {median:.2f} ms, sigma "
        f"{sigma:.3f}, mean {median * math.exp(sigma**2 / 2):.2f} ms, "
        f"P(S > 150 ms) {beyond:.2e}"
    )
    save(
        "render_service_time",
        {"rows": rows, "samples": samples, "load": [load_before, load_after],
         "fit": {"median_ms": median, "sigma": sigma}},
        [f"render service time: lognormal median {median:.2f} ms, sigma {sigma:.3f}"],
    )  # fmt: skip


if __name__ == "__main__":
    main()
