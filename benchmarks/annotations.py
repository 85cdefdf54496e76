"""Annotation viewport queries: the repository against the bare indexed SQL query.

    .venv/bin/python benchmarks/annotations.py            # 200,000 polygons, 10,000 images
    .venv/bin/python benchmarks/annotations.py --quick    # 20,000 polygons, 1,000 images

One study with ``--images`` linked images; ``--annotations`` cell-sized polygons (about
30 px, 8 vertices) spread uniformly over ``--annotated`` 20,000 x 20,000 px images, so a
3,000 x 3,000 viewport meets about 450 of them. On a SQLite file and on a fresh
PostgreSQL database (dropped afterwards), ``--queries`` random viewports (limit 500),
interleaved:

* **bare SQL**: the DBAPI cursor runs the same SELECT (same WHERE on the bbox columns of
  ``ix_annotations_viewport``, same LIMIT) and fetches the rows;
* **repository**: ``AnnotationRepository.viewport`` (SQLAlchemy Core, records built);
* **bare SQL + JSON columns decoded**: the same, JSON columns cast to text and decoded
  with orjson (the least that code returning objects does);
* **repository + response body**: the same, each record's ``to_json()`` and the
  ``orjson`` body, as the route answers.

Prints Markdown: median and p95 ms per query, features per query, ratio to bare SQL.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).parent))

SIDE = 20_000
VIEW = 3_000
LIMIT = 500


def _setup(url: str, images: int, annotated: int, annotations: int) -> tuple[Any, str, list[str]]:
    import hashlib

    from pixelmill.backends.metadata import tables as t
    from pixelmill.backends.metadata import tables_workspace as tw
    from pixelmill.backends.metadata._time import now
    from pixelmill.backends.metadata.annotations import AnnotationRepository
    from pixelmill.backends.metadata.database import Database
    from pixelmill.backends.metadata.events import Actor
    from pixelmill.backends.metadata.studies import StudyRepository
    from pixelmill.backends.metadata.users import UserRepository
    from pixelmill.imaging.annotations import Limits, parse_feature

    db = Database(url)
    db.upgrade()
    actor = Actor(UserRepository(db).create("bench").id)
    study = StudyRepository(db).create(
        actor, name="bench", description="", modality="histology", options={}
    )
    at = now()
    ids = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(images)]
    image_rows = [
        {"id": sha[:32], "sha256": sha, "format": "tiff", "width": SIDE, "height": SIDE,
         "bands": 3, "bit_depth": 8, "pages": 1, "orientation": 1, "interpretation": "srgb",
         "size_bytes": 1, "pixel_size_um": 0.25, "filename": f"s{i}.tif", "exif": {},
         "source": "upload", "job_id": None, "created_at": at, "owner_id": actor.user_id}
        for i, sha in enumerate(ids)
    ]  # fmt: skip
    links = [
        {"study_id": study.id, "image_id": r["id"], "display_name": r["filename"],
         "added_by": actor.user_id, "added_at": at}
        for r in image_rows
    ]  # fmt: skip
    with db.begin() as conn:
        conn.execute(t.images.insert(), image_rows)
        conn.execute(tw.study_images.insert(), links)
    repo = AnnotationRepository(db)
    rng = random.Random(1)
    targets = [r["id"] for r in image_rows[:annotated]]
    per_image = annotations // annotated
    started = time.perf_counter()
    limits = Limits()
    for image_id in targets:
        batch = []
        for _ in range(per_image):
            cx, cy, r = rng.uniform(20, SIDE - 20), rng.uniform(20, SIDE - 20), rng.uniform(8, 18)
            ring = [
                [round(cx + r * math.cos(a * math.pi / 4), 2), round(cy + r * math.sin(a * math.pi / 4), 2)]
                for a in range(8)
            ]  # fmt: skip
            ring.append(ring[0])
            feature = {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {"objectType": "detection", "classification": {"name": "Nucleus"}},
            }
            batch.append(parse_feature(feature, limits))
        repo.create_many(actor, study.id, image_id, batch, pixel_size_um=0.25, source="import")
    load = time.perf_counter() - started
    print(f"  loaded {per_image * annotated} polygons in {load:.1f} s", file=sys.stderr)
    if db.dialect == "postgresql":
        with db.begin() as conn:
            conn.exec_driver_sql("ANALYZE annotations")
    return repo, study.id, targets


def _bare(repo: Any) -> Callable[[str, str, tuple[float, float, float, float]], int]:
    from pixelmill.backends.metadata import tables_workspace as tw

    columns = ", ".join(c.name for c in tw.annotation_rows.c)
    mark = "%s" if repo.db.dialect == "postgresql" else "?"
    sql = (
        f"SELECT {columns} FROM annotations WHERE image_id = {mark} AND study_id = {mark} "
        f"AND deleted_at IS NULL AND min_x <= {mark} AND max_x >= {mark} "
        f"AND min_y <= {mark} AND max_y >= {mark} LIMIT {LIMIT + 1}"
    )
    raw = repo.db.engine.raw_connection()

    def run(study_id: str, image_id: str, box: tuple[float, float, float, float]) -> int:
        x, y, w, h = box
        cur = raw.cursor()
        cur.execute(sql, (image_id, study_id, x + w, x, y + h, y))
        rows = cur.fetchall()
        cur.close()
        return min(len(rows), LIMIT)

    return run


def _bare_decoded(repo: Any) -> Callable[[str, str, tuple[float, float, float, float]], int]:
    """The bare query, and its four JSON columns decoded with orjson (the least any
    code returning objects does)."""
    import orjson

    from pixelmill.backends.metadata import tables_workspace as tw

    columns = [c.name for c in tw.annotation_rows.c]
    json_at = [
        i for i, c in enumerate(columns) if c in ("geometry", "color", "properties", "measurements")
    ]
    mark = "%s" if repo.db.dialect == "postgresql" else "?"
    select = ", ".join(f"CAST({c} AS TEXT)" if i in json_at else c for i, c in enumerate(columns))
    sql = (
        f"SELECT {select} FROM annotations WHERE image_id = {mark} AND study_id = {mark} "
        f"AND deleted_at IS NULL AND min_x <= {mark} AND max_x >= {mark} "
        f"AND min_y <= {mark} AND max_y >= {mark} LIMIT {LIMIT + 1}"
    )
    raw = repo.db.engine.raw_connection()

    def run(study_id: str, image_id: str, box: tuple[float, float, float, float]) -> int:
        x, y, w, h = box
        cur = raw.cursor()
        cur.execute(sql, (image_id, study_id, x + w, x, y + h, y))
        rows = [[orjson.loads(r[i]) for i in json_at] for r in cur.fetchall()]
        cur.close()
        return min(len(rows), LIMIT)

    return run


def _measure(repo: Any, study_id: str, targets: list[str], queries: int) -> dict[str, Any]:
    import orjson

    bare = _bare(repo)

    def via_repo(study_id: str, image_id: str, box: tuple[float, float, float, float]) -> int:
        return len(repo.viewport(study_id, image_id, box, limit=LIMIT)[0])

    def via_json(study_id: str, image_id: str, box: tuple[float, float, float, float]) -> int:
        found, _ = repo.viewport(study_id, image_id, box, limit=LIMIT)
        features = [r.to_json() for r in found]
        orjson.dumps({"type": "FeatureCollection", "features": features})
        return len(features)

    ways = {
        "bare SQL": bare,
        "bare SQL + JSON columns decoded": _bare_decoded(repo),
        "repository": via_repo,
        "repository + response body": via_json,
    }
    times: dict[str, list[float]] = {k: [] for k in ways}
    counts: list[int] = []
    rng = random.Random(2)
    for i in range(queries + 10):
        image_id = rng.choice(targets)
        box = (rng.uniform(0, SIDE - VIEW), rng.uniform(0, SIDE - VIEW), VIEW, VIEW)
        order = list(ways.items())
        rng.shuffle(order)
        for name, way in order:
            started = time.perf_counter()
            n = way(study_id, image_id, box)
            if i >= 10:  # the first ten warm the caches
                times[name].append(time.perf_counter() - started)
                if name == "bare SQL":
                    counts.append(n)
    return {"times": times, "features": statistics.mean(counts)}


def _report(label: str, result: dict[str, Any]) -> None:
    times = result["times"]
    base = statistics.median(times["bare SQL"])
    print(f"\n**{label}** ({result['features']:.0f} features per viewport on average)\n")
    print("| query | median ms | p95 ms | ratio to bare SQL |")
    print("|---|---:|---:|---:|")
    for name, values in times.items():
        values = sorted(values)
        median = statistics.median(values)
        p95 = values[int(0.95 * (len(values) - 1))]
        print(f"| {name} | {median * 1000:.2f} | {p95 * 1000:.2f} | {median / base:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--annotations", type=int, default=200_000)
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--annotated", type=int, default=10)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["sqlite", "postgresql"])
    args = ap.parse_args()
    if args.quick:
        args.annotations, args.images, args.annotated, args.queries = 20_000, 1_000, 1, 50
    print(
        f"{args.annotations} polygons on {args.annotated} of {args.images} study images, "
        f"viewports of {VIEW} x {VIEW} px on {SIDE} x {SIDE} px images, limit {LIMIT}, "
        f"{args.queries} queries each"
    )
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            repo, study_id, targets = _setup(url, args.images, args.annotated, args.annotations)
            _report("SQLite (file)", _measure(repo, study_id, targets, args.queries))
            repo.db.dispose()
    if args.only != "sqlite":
        from _harness.services import fresh_database, missing

        why = missing("postgres")
        if why:
            print(f"\nPostgreSQL skipped: {why}")
            return
        with fresh_database("pm_bench_annot") as url:
            repo, study_id, targets = _setup(url, args.images, args.annotated, args.annotations)
            _report("PostgreSQL", _measure(repo, study_id, targets, args.queries))
            repo.db.dispose()


if __name__ == "__main__":
    main()
