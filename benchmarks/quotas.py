"""What the storage quota costs an upload: recording an image row with the stored-bytes
check (lock the user, sum their images, datasets and model versions, compare, insert,
in one transaction) side by side with the same insert without it, for a user who
already owns N images, on a SQLite file and on PostgreSQL.

    .venv/bin/python benchmarks/quotas.py            # N = 10,000 images, 300 rounds
    .venv/bin/python benchmarks/quotas.py --quick    # N = 1,000 images, 60 rounds

Rounds interleave the two sides (each inserts a new row of the same user); medians of
wall time and of this process's CPU per insert. Every database is made for the run and
removed after it.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _harness import interleaved, median, parse, parser, save, table
from _harness.services import fresh_database, missing


def _image(owner: str) -> dict[str, Any]:
    return {
        "id": secrets.token_hex(16), "sha256": secrets.token_hex(32), "format": "png",
        "width": 64, "height": 64, "bands": 3, "bit_depth": 8, "pages": 1,
        "orientation": 1, "interpretation": "srgb", "size_bytes": 12_345,
        "pixel_size_um": None, "filename": "a.png", "exif": {}, "source": "upload",
        "job_id": None, "created_at": datetime.now(UTC), "owner_id": owner,
    }  # fmt: skip


def measure(url: str, n: int, rounds: int) -> dict[str, dict[str, float]]:
    """Medians (ms) of one insert with and without the check, wall and CPU."""
    from pixelmill.backends.metadata import tables as t
    from pixelmill.backends.metadata.database import Database
    from pixelmill.backends.metadata.images import ImageRepository
    from pixelmill.backends.metadata.users import UserRepository

    db = Database(url)
    try:
        db.upgrade()
        owner = UserRepository(db).create("uploader").id
        with db.begin() as conn:
            for start in range(0, n, 5000):
                conn.execute(
                    t.images.insert(), [_image(owner) for _ in range(start, min(n, start + 5000))]
                )
        repo = ImageRepository(db)
        limit = 1 << 60  # never reached: the cost of checking, not of refusing
        sides: dict[str, Callable[[], Any]] = {
            "with the quota check": lambda: repo.add(max_stored_bytes=limit, **_image(owner)),
            "without": lambda: repo.add(**_image(owner)),
        }
        out: dict[str, dict[str, float]] = {}
        for clock_name, clock in (("wall_ms", time.perf_counter), ("cpu_ms", time.process_time)):
            samples = interleaved(sides, rounds, clock=clock)
            for side, values in samples.items():
                out.setdefault(side, {})[clock_name] = median(values) * 1000
        return out
    finally:
        db.dispose()


def main() -> int:
    p = parser(__doc__, "1,000 images, 60 rounds")
    p.add_argument("--images", type=int, default=10_000, help="images the user owns already")
    p.add_argument("--rounds", type=int, default=300)
    args = parse(p, {"images": 1_000, "rounds": 60})
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="pm-quota-") as tmp:
        results["sqlite"] = measure(f"sqlite:///{Path(tmp) / 'pm.db'}", args.images, args.rounds)
    why = missing("postgres")
    if why is None:
        with fresh_database("pm_quota") as url:
            results["postgresql"] = measure(url, args.images, args.rounds)
    else:
        print(f"PostgreSQL skipped: {why}", file=sys.stderr)
    rows, headline = [], []
    for dbname, sides in results.items():
        check, plain = sides["with the quota check"], sides["without"]
        ratio = check["wall_ms"] / plain["wall_ms"]
        rows.append(
            [
                dbname,
                f"{check['wall_ms']:.2f} / {check['cpu_ms']:.2f}",
                f"{plain['wall_ms']:.2f} / {plain['cpu_ms']:.2f}",
                f"{ratio:.2f}x",
            ]
        )
        headline.append(
            f"{dbname}: insert with the storage-quota check {ratio:.2f}x the plain insert "
            f"(user owns {args.images} images; {check['wall_ms']:.2f} vs {plain['wall_ms']:.2f} ms)"
        )
    print(
        table(
            ["database", "with check: wall / CPU ms", "without: wall / CPU ms", "ratio (wall)"],
            rows,
            "lrrr",
        )
    )
    save("quotas", {"images": args.images, "rounds": args.rounds, "results": results}, headline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
