"""CPU of a render's stop handler (the render budget / client-gone kill switch) on a
400x300 JPEG encode, with and without it, in-process; medians of 1500 encodes, the two
interleaved. Run it from two trees for a before/after::

    PYTHONPATH=src .venv/bin/python benchmarks/stop_handler.py
    PYTHONPATH=/tmp/old/src .venv/bin/python benchmarks/stop_handler.py
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

os.environ["VIPS_CONCURRENCY"] = "1"  # before libvips starts

import numpy as np
import pyvips

from pixelmill.imaging.encode import encode
from pixelmill.imaging.formats import ImageFormat

MEM = (np.random.default_rng(0).random((300, 400, 3)) * 255).astype(np.uint8).tobytes()


def one(stop: Callable[[], bool] | None) -> float:
    """CPU seconds of one encode of a fresh (uncached) 400x300 image."""
    src = pyvips.Image.new_from_memory(MEM, 400, 300, 3, "uchar").copy(interpretation="srgb")
    start = time.process_time()
    encode(src, ImageFormat.JPEG, quality=82, stop=stop)
    return time.process_time() - start


def main() -> None:
    with_stop, without = [], []
    for _ in range(1500):
        with_stop.append(one(lambda: False))
        without.append(one(None))
    m1, m0 = statistics.median(with_stop) * 1000, statistics.median(without) * 1000
    print(
        f"400x300 JPEG encode, CPU ms, median of 1500: with a stop handler {m1:.3f}, "
        f"without {m0:.3f}, difference {(m1 - m0) * 1000:.0f} us"
    )


if __name__ == "__main__":
    main()
