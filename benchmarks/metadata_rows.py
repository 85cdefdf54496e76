"""Wall time of the metadata store's hot rows in-process, on the embedded SQLite file
(WAL): an image's insert, its look-ups by digest and by id, and a one-task job's create,
start and finish — what every stored prediction, upload and job pays for its rows.

    PYTHONPATH=src .venv/bin/python benchmarks/metadata_rows.py --base /tmp/base/src

``--base`` runs the same calls from another checkout's ``src`` in a child process, after
this tree's, ``--rounds`` times alternating; medians of each call's per-round medians.
Each round makes a fresh data folder (the container's default settings) and
``--calls`` rows of each kind.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _harness import median, parse, parser, save, table

CALLS = ("image add", "image by digest", "image by id", "job create", "job start", "job finish")


def _median_ms(fn: Callable[[int], object], calls: int) -> float:
    spent = []
    for i in range(calls):
        started = time.perf_counter()
        fn(i)
        spent.append(time.perf_counter() - started)
    return round(median(spent) * 1000, 4)


def measure(calls: int) -> dict[str, float]:
    """One round in this process (``pixelmill`` from ``PYTHONPATH``)."""
    from pixelmill.backends.metadata.jobs.base import Finish
    from pixelmill.imaging.formats import ImageFormat
    from pixelmill.imaging.probe import ImageInfo
    from pixelmill.runtime.container import build_container
    from pixelmill.services.image_types import new_image_id
    from pixelmill.settings import Settings

    with tempfile.TemporaryDirectory() as folder:
        container = build_container(Settings(data_dir=Path(folder)))
        images, jobs = container.images, container.job_store
        # a stored 256² mask's description, built from what every tree has (``--base``
        # may be a checkout older than ``answers.mask_info``)
        described = ImageInfo(ImageFormat.PNG, 256, 256, 1, 8, 1, 1, "b-w").columns()
        rows = []
        for i in range(calls):
            digest = hashlib.sha256(f"{folder}{i}".encode()).hexdigest()
            rows.append(
                {
                    "id": new_image_id(),
                    "sha256": digest,
                    **described,
                    "size_bytes": 1800,
                    "filename": None,
                    "exif": {},
                    "source": "inference",
                    "job_id": None,
                    "owner_id": "bench-user",
                }
            )
        job_ids = [uuid.uuid4().hex for _ in range(calls)]

        def create(i: int) -> None:
            job = {
                "id": job_ids[i],
                "kind": "pipeline",
                "queue": "default",
                "priority": 0,
                "params": {"pipeline": [{"op": "flip"}]},
                "inputs": [],
                "owner": "bench-user",
                "time_limit_s": 60.0,
                "max_retries": 3,
            }
            jobs.create(job, [(0, None)])

        out = {
            "image add": _median_ms(lambda i: images.add(**rows[i]), calls),
            "image by digest": _median_ms(
                lambda i: images.find_by_sha256(rows[i]["sha256"], "bench-user"), calls
            ),
            "image by id": _median_ms(lambda i: images.get(rows[i]["id"]), calls),
            "job create": _median_ms(create, calls),
            "job start": _median_ms(lambda i: jobs.start_task(job_ids[i], 0), calls),
            "job finish": _median_ms(
                lambda i: jobs.finish_task(job_ids[i], 0, Finish(state="succeeded")), calls
            ),
        }
        container.close()
    return out


def main() -> None:
    if "--child" in sys.argv:
        print(json.dumps(measure(int(sys.argv[-1]))))
        return
    p = parser(__doc__, "2 rounds of 100 calls")
    p.add_argument("--base", type=Path, help="another checkout's src/, measured beside")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=300)
    args = parse(p, {"rounds": 2, "calls": 100})
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
    header = ["call (SQLite, in-process)", "this tree, ms"]
    if args.base:
        header += ["base, ms", "this / base"]
    print(table(header, rows, "l" + "r" * (len(header) - 1)))
    headline = [f"{c}: {result['this tree'][c]:.3f} ms" for c in CALLS]
    save("metadata_rows", {"medians_ms": result, "rounds": args.rounds}, headline)


if __name__ == "__main__":
    main()
