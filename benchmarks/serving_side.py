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
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from _harness import median, parse, parser, save, table

CALLS = ("store a mask", "drift observe (CPU)")


def _median_ms(fn: Callable[[int], object], calls: int, clock: Any = time.perf_counter) -> float:
    spent = []
    for i in range(calls):
        started = clock()
        fn(i)
        spent.append(clock() - started)
    return round(median(spent) * 1000, 4)


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
            "store a mask": _median_ms(store, calls),
            "drift observe (CPU)": _median_ms(
                lambda i: monitor.observe(images[i][0]), calls, time.thread_time
            ),
        }
        container.close()
    return out


def main() -> None:
    if "--child" in sys.argv:
        print(json.dumps(measure(int(sys.argv[-1]))))
        return
    p = parser(__doc__, "2 rounds of 60 calls")
    p.add_argument("--base", type=Path, help="another checkout's src/, measured beside")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=200)
    args = parse(p, {"rounds": 2, "calls": 60})
    sides: dict[str, list[dict[str, float]]] = {"this tree": []}
    if args.base:
        sides["base"] = []
    for _ in range(args.rounds):
        sides["this tree"].append(measure(args.calls))
        if args.base:
            env = {**os.environ, "PYTHONPATH": str(args.base)}
            child = [sys.executable, __file__, "--child", str(args.calls)]
            done = subprocess.run(child, env=env, capture_output=True, text=True, check=True)
            sides["base"].append(json.loads(done.stdout.strip().splitlines()[-1]))
    result: dict[str, Any] = {
        side: {c: median(r[c] for r in rounds) for c in CALLS} for side, rounds in sides.items()
    }
    rows = []
    for c in CALLS:
        row: list[object] = [c, f"{result['this tree'][c]:.3f}"]
        if args.base:
            row += [f"{result['base'][c]:.3f}", f"{result['this tree'][c] / result['base'][c]:.2f}"]
        rows.append(row)
    header = ["256² prediction, in-process", "this tree, ms"]
    if args.base:
        header += ["base, ms", "this / base"]
    print(table(header, rows, "l" + "r" * (len(header) - 1)))
    headline = [f"{c}: {result['this tree'][c]:.3f} ms" for c in CALLS]
    save("serving_side", {"medians_ms": result, "rounds": args.rounds}, headline)


if __name__ == "__main__":
    main()
