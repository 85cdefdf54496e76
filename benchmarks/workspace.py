"""The research workspace at scale: a study of 10,000 images and 200,000 annotation
polygons, on SQLite and PostgreSQL. Listing a page of 100 study images and a viewport
query (at most 500 features) through pixelmill's repositories, side by side with the bare
indexed SQL that returns the same rows on the same data.

    .venv/bin/python benchmarks/workspace.py            # 10,000 images, 200,000 polygons
    .venv/bin/python benchmarks/workspace.py --quick    # 1,000 images, 20,000 polygons

Both sides run the same statements' work: the page with its total count (two queries),
and the viewport's rows (limit + 1, to tell whether more matched); the repository adds
what a caller gets (records, timezones; for the viewport, the bytes of the GeoJSON
answer the route sends). A third side, bare SQL + decode, turns the bare rows into dicts
with their JSON columns parsed by orjson: the least any code returning objects does.
Annotation rows are seeded as ``values_of`` fills them (QuPath properties, measurements).
Before timing, every viewport's answer is checked to hold the bare rows' features (ids,
order, ``truncated``). Rounds interleave the sides; medians of wall time and of this
process's CPU per call. The bare side uses the driver's cursor directly (no SQLAlchemy).
Goal: repository <= 2x bare. Every database is made for the run and removed after it.
"""

from __future__ import annotations

import json
import random
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from _harness import interleaved, median, parse, parser, save, table
from _harness.services import fresh_database, missing

SLIDE = 20_000  # level-0 side of each annotated slide, pixels
#: an annotation's JSON columns (the geometry and what describes it)
_FEATURE_JSON = ("geometry", "color", "properties", "measurements")


def _rows(n: int, make: Callable[[int], dict[str, Any]], batch: int = 5000) -> Iterator[list]:
    for start in range(0, n, batch):
        yield [make(i) for i in range(start, min(n, start + batch))]


def _image(i: int, image_id: str, owner: str, t0: datetime) -> dict[str, Any]:
    return {
        "id": image_id, "sha256": secrets.token_hex(32), "format": "tiff", "width": SLIDE,
        "height": SLIDE, "bands": 3, "bit_depth": 8, "pages": 1, "orientation": 1,
        "interpretation": "srgb", "size_bytes": 1 << 30, "pixel_size_um": 0.5,
        "filename": f"slide-{i:05d}.svs", "exif": {}, "source": "upload", "job_id": None,
        "created_at": t0 + timedelta(seconds=i), "owner_id": owner,
    }  # fmt: skip


def _link(i: int, image_id: str, study_id: str, owner: str, t0: datetime) -> dict[str, Any]:
    return {
        "study_id": study_id, "image_id": image_id, "display_name": f"slide {i}",
        "stain": "HE", "magnification": 20.0, "analysis_status": "none", "added_by": owner,
        "added_at": t0 + timedelta(seconds=i),
    }  # fmt: skip


def _polygon(
    rng: random.Random, image_id: str, study_id: str, owner: str, t0: datetime
) -> dict[str, Any]:
    """A drawn square, its columns as ``annotation_records.values_of`` fills them (the
    QuPath properties, the measurements at 0.5 µm/px)."""
    x, y = rng.uniform(0, SLIDE - 40), rng.uniform(0, SLIDE - 40)
    s = rng.uniform(10, 40)
    ring = [[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]]
    tumor = {"name": "Tumor", "color": [200, 0, 0]}
    measurements = {
        "area_px": s * s,
        "perimeter_px": 4 * s,
        "area_um2": s * s / 4,
        "perimeter_um": 2 * s,
        "centroid_x": x + s / 2,
        "centroid_y": y + s / 2,
        "bbox_min_x": x,
        "bbox_min_y": y,
        "bbox_max_x": x + s,
        "bbox_max_y": y + s,
    }
    return {
        "id": secrets.token_hex(16), "study_id": study_id, "image_id": image_id,
        "version": 1, "geom_type": "polygon",
        "geometry": {"type": "Polygon", "coordinates": [ring]}, "object_type": "annotation",
        "class_name": "Tumor", "color": [200, 0, 0], "name": None,
        "properties": {"qupath": {"objectType": "annotation", "classification": tumor},
                       "members": {}},
        "measurements": measurements, "min_x": x, "min_y": y, "max_x": x + s,
        "max_y": y + s, "source": "manual", "analysis_id": None, "author_id": owner,
        "created_at": t0, "updated_by": owner, "updated_at": t0, "deleted_at": None,
    }  # fmt: skip


def seed(db: Any, images: int, polygons: int, slides: int) -> tuple[str, list[str]]:
    """A user, a study of ``images`` images, ``polygons`` annotations over ``slides`` of
    them; returns the study id and the annotated image ids."""
    from pixelmill.backends.metadata import tables as t
    from pixelmill.backends.metadata import tables_workspace as tw
    from pixelmill.backends.metadata.events import Actor
    from pixelmill.backends.metadata.studies import StudyRepository
    from pixelmill.backends.metadata.users import UserRepository

    user = UserRepository(db).create("bench")
    sid = (
        StudyRepository(db)
        .create(Actor(user.id), name="scale", description="", modality="histology", options={})
        .id
    )
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [secrets.token_hex(16) for _ in range(images)]
    annotated = ids[:slides]
    rng = random.Random(7)
    with db.begin() as conn:
        for rows in _rows(images, lambda i: _image(i, ids[i], user.id, t0)):
            conn.execute(t.images.insert(), rows)
        for rows in _rows(images, lambda i: _link(i, ids[i], sid, user.id, t0)):
            conn.execute(tw.study_images.insert(), rows)
        for rows in _rows(
            polygons, lambda i: _polygon(rng, annotated[i % slides], sid, user.id, t0)
        ):
            conn.execute(tw.annotation_rows.insert(), rows)
    if db.dialect == "postgresql":
        with db.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    return sid, annotated


def _bare(db: Any, sql: str, params: Any, decode: tuple[str, ...] | None = None) -> list[Any]:
    """The rows of ``sql`` straight from the driver's cursor; with ``decode``, each row
    as a dict with those JSON columns parsed (orjson) — the least a caller must do to
    use them."""
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(sql, params)
        rows = cur.fetchall()
        names = [d[0] for d in cur.description]
        cur.close()
        raw.commit()
    finally:
        raw.close()
    if decode is None:
        return rows
    out = []
    for row in rows:
        item = dict(zip(names, row, strict=True))
        for name in decode:
            if isinstance(item[name], (str, bytes)):
                item[name] = orjson.loads(item[name])
        out.append(item)
    return out


def _sql(db: Any) -> tuple[str, str, str]:
    from pixelmill.backends.metadata.study_images import LISTED

    p = "%s" if db.dialect == "postgresql" else "?"
    count = f"SELECT count(*) FROM study_images WHERE study_id = {p}"
    listed = ", ".join(f"im.{name}" for name in LISTED)
    page = (
        f"SELECT si.*, {listed} FROM study_images si JOIN images im ON im.id = si.image_id "
        f"WHERE si.study_id = {p} ORDER BY si.added_at DESC, si.image_id DESC "
        f"LIMIT {p} OFFSET {p}"
    )
    viewport = (
        f"SELECT * FROM annotations WHERE image_id = {p} AND study_id = {p} "
        "AND deleted_at IS NULL "
        f"AND min_x <= {p} AND max_x >= {p} AND min_y <= {p} AND max_y >= {p} LIMIT {p}"
    )
    return count, page, viewport


def measure(db: Any, study_id: str, slides: list[str], images: int, rounds: int) -> dict[str, Any]:
    from pixelmill.backends.metadata.annotation_geojson import collection_json
    from pixelmill.backends.metadata.annotations import AnnotationRepository
    from pixelmill.backends.metadata.study_images import StudyImageRepository

    repo, annotations = StudyImageRepository(db), AnnotationRepository(db)
    count_sql, page_sql, viewport_sql = _sql(db)
    rng = random.Random(11)
    pages = [rng.randrange(0, max(1, images - 100)) for _ in range(64)]
    views = [
        (rng.choice(slides), rng.uniform(0, SLIDE - 4000), rng.uniform(0, SLIDE - 4000))
        for _ in range(64)
    ]
    # each side walks the same pages and viewports in the same order
    it = dict.fromkeys(
        ("repo_page", "bare_page", "decoded_page", "repo_view", "bare_view", "decoded_view"), 0
    )

    def next_page(side: str) -> int:
        it[side] += 1
        return pages[it[side] % len(pages)]

    def next_view(side: str) -> tuple[str, float, float]:
        it[side] += 1
        return views[it[side] % len(views)]

    found: dict[str, list[int]] = {name: [] for name in it}

    def repo_page() -> None:
        rows, total = repo.images(study_id, limit=100, offset=next_page("repo_page"))
        found["repo_page"].append(len(rows))
        assert total == images

    def bare_page() -> None:
        total = _bare(db, count_sql, (study_id,))[0][0]
        rows = _bare(db, page_sql, (study_id, 100, next_page("bare_page")))
        found["bare_page"].append(len(rows))
        assert total == images

    def decoded_page() -> None:
        total = _bare(db, count_sql, (study_id,))[0][0]
        offset = next_page("decoded_page")
        rows = _bare(db, page_sql, (study_id, 100, offset), decode=())  # as dicts
        found["decoded_page"].append(len(rows))
        assert total == images

    def repo_view() -> None:
        image_id, x, y = next_view("repo_view")
        # what GET .../annotations?x=&y=&w=&h= runs: the query, then the answer's bytes
        page, more = annotations.viewport_geojson(study_id, image_id, (x, y, 4000, 4000), limit=500)
        collection_json(page, truncated=more)
        found["repo_view"].append(len(page))

    def bare_view() -> None:
        image_id, x, y = next_view("bare_view")
        # the repository reads limit + 1 rows (to say whether more matched): so does this
        rows = _bare(db, viewport_sql, (image_id, study_id, x + 4000, x, y + 4000, y, 501))
        found["bare_view"].append(min(len(rows), 500))

    def decoded_view() -> None:
        image_id, x, y = next_view("decoded_view")
        params = (image_id, study_id, x + 4000, x, y + 4000, y, 501)
        rows = _bare(db, viewport_sql, params, decode=_FEATURE_JSON)
        found["decoded_view"].append(min(len(rows), 500))

    same_features(annotations, db, study_id, views, viewport_sql)
    out: dict[str, Any] = {}
    sides = {
        "page": (repo_page, bare_page, decoded_page),
        "viewport": (repo_view, bare_view, decoded_view),
    }
    for what, (repo_fn, bare_fn, decoded_fn) in sides.items():
        for clock_name, clock in (("wall", time.perf_counter), ("cpu", time.process_time)):
            it.update(dict.fromkeys(it, 0))
            fns = {"repo": repo_fn, "bare": bare_fn, "decoded": decoded_fn}
            samples = interleaved(fns, rounds, clock=clock)
            out[f"{what}_{clock_name}_ms"] = {k: median(v) * 1000 for k, v in samples.items()}
    # both sides returned the same number of rows (the same pages and viewports)
    out["rows"] = {k: median(v) for k, v in found.items()}
    return out


def same_features(
    annotations: Any, db: Any, study_id: str, views: list[tuple[str, float, float]], sql: str
) -> None:
    """Before any timing: on every viewport, the repository's answer (parsed back) holds
    the same features, by id and in the same order, as the bare query's rows."""
    from pixelmill.backends.metadata.annotation_geojson import collection_json

    for image_id, x, y in views:
        page, more = annotations.viewport_geojson(study_id, image_id, (x, y, 4000, 4000), limit=500)
        answer = orjson.loads(collection_json(page, truncated=more))
        rows = _bare(db, sql, (image_id, study_id, x + 4000, x, y + 4000, y, 501), decode=())
        got = [f["pixelmill"]["id"] for f in answer["features"]]
        assert got == [r["id"] for r in rows[:500]], "the two sides answer different features"
        assert answer["truncated"] == (len(rows) > 500)


@contextmanager
def database(kind: str) -> Iterator[Any]:
    from pixelmill.backends.metadata.database import Database

    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
            db.upgrade()
            yield db
            db.dispose()
        return
    with fresh_database("pm_bench_ws") as url:
        db = Database(url)
        db.upgrade()
        yield db
        db.dispose()


def main() -> int:
    p = parser(__doc__, "1,000 images and 20,000 polygons, 30 rounds")
    p.add_argument("--images", type=int, default=10_000)
    p.add_argument("--polygons", type=int, default=200_000)
    p.add_argument("--slides", type=int, default=20, help="images the polygons are spread over")
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--db", default="sqlite,postgresql")
    args = parse(p, {"images": 1000, "polygons": 20_000, "slides": 2, "rounds": 30})
    results: dict[str, Any] = {}
    for kind in args.db.split(","):
        if kind == "postgresql" and (why := missing("postgres")):
            print(f"skipping PostgreSQL: {why}", file=sys.stderr)
            continue
        with database(kind) as db:
            started = time.perf_counter()
            study_id, slides = seed(db, args.images, args.polygons, args.slides)
            seeded = time.perf_counter() - started
            results[kind] = {
                **measure(db, study_id, slides, args.images, args.rounds),
                "seed_s": seeded,
            }
    rows, headline = [], []
    for kind, r in results.items():
        for what in ("page", "viewport"):
            wall, cpu = r[f"{what}_wall_ms"], r[f"{what}_cpu_ms"]
            raw, decoded = wall["repo"] / wall["bare"], wall["repo"] / wall["decoded"]
            rows.append((
                kind, what, f"{wall['repo']:.2f}", f"{wall['bare']:.2f}",
                f"{wall['decoded']:.2f}", f"{raw:.2f}x", f"{decoded:.2f}x",
                f"{cpu['repo']:.2f}", f"{cpu['bare']:.2f}", f"{cpu['decoded']:.2f}",
            ))  # fmt: skip
            headline.append(
                f"{kind} {what}: repository {wall['repo']:.2f} ms; bare SQL {raw:.2f}x "
                f"faster as rows, {decoded:.2f}x with JSON decoded"
            )
    header = (
        "db", "query", "repo ms", "bare ms", "bare+decode ms", "repo/bare",
        "repo/bare+decode", "repo CPU ms", "bare CPU ms", "bare+decode CPU ms",
    )  # fmt: skip
    print(table(header, rows, "llrrrrrrrr"))
    print(json.dumps({k: v["rows"] for k, v in results.items()}))
    save("workspace", {"args": vars(args), "results": results}, headline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
