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
import tempfile
import uuid
from pathlib import Path

from _harness.beside import median_ms, run_beside

CALLS = ("image add", "image by digest", "image by id", "job create", "job start", "job finish")


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
            "image add": median_ms(lambda i: images.add(**rows[i]), calls),
            "image by digest": median_ms(
                lambda i: images.find_by_sha256(rows[i]["sha256"], "bench-user"), calls
            ),
            "image by id": median_ms(lambda i: images.get(rows[i]["id"]), calls),
            "job create": median_ms(create, calls),
            "job start": median_ms(lambda i: jobs.start_task(job_ids[i], 0), calls),
            "job finish": median_ms(
                lambda i: jobs.finish_task(job_ids[i], 0, Finish(state="succeeded")), calls
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
        title="call (SQLite, in-process)",
        name="metadata_rows",
        defaults=(5, 300),
        quick=(2, 100),
    )


if __name__ == "__main__":
    main()
