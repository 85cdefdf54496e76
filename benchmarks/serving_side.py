"""What a served prediction pays beside the runtime, in-process, side by side with
another checkout: storing a 256² mask as the stored answer does (its PNG, the object
with its fsyncs, its row, on the embedded SQLite file and local folder) and the drift
observation of the 256² input against the shipped ``nuclei`` reference (CPU on the
bookkeeping thread, beside the next runtime call).

    PYTHONPATH=src .venv/bin/python benchmarks/serving_side.py --base /tmp/base/src

``--base`` runs the same calls from another checkout's ``src`` in a child process, after
this tree's, ``--rounds`` times alternating; medians of each call's per-round medians.
Every stored mask is new (a different image each call), as in ``serving.py``.
"""

from __future__ import annotations

import json
import tempfile
import time
from importlib import resources
from pathlib import Path

from _harness.beside import median_ms, run_beside

CALLS = ("store a mask", "drift observe (CPU)")


def measure(calls: int) -> dict[str, float]:
    """One round in this process (``pixelmill`` from ``PYTHONPATH``)."""
    from pixelmill.ml.drift import DriftMonitor
    from pixelmill.ml.synthetic import NucleiConfig, nuclei_sample
    from pixelmill.runtime.container import build_container
    from pixelmill.services.inference.answers import encode_mask, mask_info
    from pixelmill.settings import Settings

    images = [nuclei_sample(seed, 0, NucleiConfig(size=(256, 256))) for seed in range(calls)]
    masks = [((labels > 0) * 255).astype("uint8") for _, labels in images]
    card = json.loads((resources.files("pixelmill.ml") / "models" / "nuclei.json").read_text())
    monitor = DriftMonitor(card["reference"])
    for image, _ in images:  # a full window, as on a server that has answered a while
        monitor.observe(image)
    with tempfile.TemporaryDirectory() as folder:
        container = build_container(Settings(data_dir=Path(folder)))
        service = container.image_service

        def store(i: int) -> None:
            service.ingest_bytes(
                encode_mask(masks[i]),
                source="inference",
                owner_id="bench-user",
                info=mask_info(masks[i]),
            )

        out = {
            "store a mask": median_ms(store, calls),
            "drift observe (CPU)": median_ms(
                lambda i: monitor.observe(images[i][0]), calls, time.thread_time
            ),
        }
        container.close()
    return out


def main() -> None:
    run_beside(
        __file__,
        __doc__,
        measure,
        CALLS,
        title="256² prediction, in-process",
        name="serving_side",
        defaults=(5, 200),
        quick=(2, 60),
    )


if __name__ == "__main__":
    main()
