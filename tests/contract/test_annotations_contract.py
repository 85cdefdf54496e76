"""The annotation repository's contract on SQLite and PostgreSQL (a real server): every
version kept, stale writes refused with nothing lost, soft delete, revert, diff, the
viewport query, read-only analysis output, events in the same transaction."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from math import inf, nan
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from pixelmill.backends.metadata import tables_workspace as tw
from pixelmill.backends.metadata.annotation_geojson import collection_json
from pixelmill.backends.metadata.annotations import MAX_VIEWPORT, AnnotationRepository
from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.events import Actor, EventLog
from pixelmill.backends.metadata.images import ImageRepository
from pixelmill.backends.metadata.studies import StudyRepository
from pixelmill.backends.metadata.study_images import StudyImageRepository
from pixelmill.backends.metadata.users import UserRepository
from pixelmill.errors import Forbidden, InvalidAnnotation, NotFound, PreconditionFailed
from pixelmill.imaging.annotations import Annotation, parse_feature, parse_geojson
from pixelmill.imaging.annotations._geometry import Limits

QUPATH = Path(__file__).parents[1] / "unit/imaging/annotations/data"


@dataclass
class World:
    repo: AnnotationRepository
    events: EventLog
    alice: Actor
    bob: Actor
    study_id: str
    image_id: str


@pytest.fixture
def world(db: Database) -> World:
    users = UserRepository(db)
    alice = Actor(users.create("alice").id)
    bob = Actor(users.create("bob").id)
    study = StudyRepository(db).create(
        alice, name="Liver", description="", modality="histology", options={}
    )
    sha = hashlib.sha256(b"slide").hexdigest()
    image, _ = ImageRepository(db).add(
        id=sha[:32], sha256=sha, format="tiff", width=10_000, height=8_000, bands=3,
        bit_depth=8, pages=1, orientation=1, interpretation="srgb", size_bytes=1,
        pixel_size_um=0.5, filename="slide.tif", exif={}, source="upload", job_id=None,
        owner_id=alice.user_id,
    )  # fmt: skip
    StudyImageRepository(db).add_image(alice, study.id, image.id)
    return World(AnnotationRepository(db), EventLog(db), alice, bob, study.id, image.id)


def square(x: float, y: float, size: float = 10, **props: Any) -> Annotation:
    ring = [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]
    feature = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"objectType": "annotation", **props},
    }
    return parse_feature(feature, Limits())


def test_create_stores_the_feature_its_box_and_measurements_in_microns(world: World) -> None:
    (aid,) = world.repo.create_many(
        world.alice, world.study_id, world.image_id,
        [square(100, 200, 20, name="gland", classification={"name": "Tumor", "color": [255, 0, 0]})],
        pixel_size_um=0.5,
    )  # fmt: skip
    record = world.repo.get(aid)
    assert record.version == 1
    assert (record.min_x, record.min_y, record.max_x, record.max_y) == (100, 200, 120, 220)
    assert record.class_name == "Tumor" and record.name == "gland"
    assert record.measurements["area_px"] == 400
    assert record.measurements["area_um2"] == pytest.approx(100.0)
    assert record.measurements["perimeter_um"] == pytest.approx(40.0)
    assert (record.measurements["centroid_x"], record.measurements["centroid_y"]) == (110, 210)
    feature = record.feature()
    assert feature["properties"]["classification"] == {"name": "Tumor", "color": [255, 0, 0]}
    assert record.author_id == world.alice.user_id
    [event] = world.events.list(study_id=world.study_id, limit=1)
    assert (event.action, event.target_id) == ("annotation.create", aid)


def test_a_stale_version_is_refused_and_both_edits_survive(world: World) -> None:
    (aid,) = world.repo.create_many(world.alice, world.study_id, world.image_id, [square(0, 0)])
    first = world.repo.update(
        world.alice, aid, square(0, 0, name="alice's name"), expected_version=1
    )
    assert first.version == 2
    with pytest.raises(PreconditionFailed) as stale:
        world.repo.update(
            world.bob, aid, square(0, 0, classification={"name": "Stroma"}), expected_version=1
        )
    assert stale.value.extra["current_version"] == 2
    assert world.repo.get(aid).name == "alice's name"
    # bob re-reads and re-applies his change on top of alice's
    current = world.repo.get(aid)
    merged = square(0, 0, name=current.name, classification={"name": "Stroma"})
    final = world.repo.update(world.bob, aid, merged, expected_version=current.version)
    assert (final.version, final.name, final.class_name) == (3, "alice's name", "Stroma")
    assert [v.op for v in world.repo.history(aid)] == ["create", "update", "update"]


def test_writing_the_same_content_again_makes_no_version(world: World) -> None:
    (aid,) = world.repo.create_many(
        world.alice, world.study_id, world.image_id, [square(3, 4, name="n")]
    )
    same = world.repo.update(world.bob, aid, square(3, 4, name="n"), expected_version=1)
    assert same.version == 1 and same.updated_by == world.alice.user_id
    assert len(world.repo.history(aid)) == 1


def test_concurrent_writers_of_the_same_version_one_wins(world: World) -> None:
    (aid,) = world.repo.create_many(world.alice, world.study_id, world.image_id, [square(0, 0)])
    results: list[str] = []
    barrier = threading.Barrier(4)

    def write(n: int) -> None:
        barrier.wait()
        try:
            world.repo.update(world.alice, aid, square(0, 0, name=f"w{n}"), expected_version=1)
            results.append("ok")
        except PreconditionFailed:
            results.append("stale")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok", "stale", "stale", "stale"]
    assert len(world.repo.history(aid)) == 2


def test_history_diff_and_revert(world: World) -> None:
    (aid,) = world.repo.create_many(
        world.alice, world.study_id, world.image_id, [square(0, 0, name="a")]
    )
    world.repo.update(world.alice, aid, square(50, 50, name="b"), expected_version=1)
    changes = world.repo.diff(aid, 1, 2)
    assert {c["path"] for c in changes} == {"/geometry", "/properties/name"}
    name = next(c for c in changes if c["path"] == "/properties/name")
    assert (name["old"], name["new"]) == ("a", "b")
    reverted = world.repo.revert(world.bob, aid, 1, expected_version=2)
    assert (reverted.version, reverted.name, reverted.min_x) == (3, "a", 0)
    assert reverted.updated_by == world.bob.user_id
    history = world.repo.history(aid)
    assert [v.op for v in history] == ["create", "update", "revert"]
    assert history[2].snapshot == history[0].snapshot
    assert world.repo.diff(aid, 1, 3) == []
    with pytest.raises(NotFound):
        world.repo.revert(world.bob, aid, 9)


def test_delete_is_soft_versioned_and_undone_by_a_revert(world: World) -> None:
    (aid,) = world.repo.create_many(world.alice, world.study_id, world.image_id, [square(5, 5)])
    with pytest.raises(PreconditionFailed):
        world.repo.delete(world.alice, aid, expected_version=7)
    gone = world.repo.delete(world.alice, aid, expected_version=1)
    assert gone.version == 2 and gone.deleted_at is not None
    with pytest.raises(NotFound):
        world.repo.get(aid)
    assert world.repo.viewport(world.study_id, world.image_id, (0, 0, 100, 100))[0] == []
    assert world.repo.count(world.study_id, world.image_id) == 0
    back = world.repo.revert(world.alice, aid, 1)
    assert back.version == 3 and back.deleted_at is None
    assert world.repo.count(world.study_id, world.image_id) == 1


def test_viewport_returns_only_intersecting_features_and_respects_the_limit(
    world: World,
) -> None:
    grid = [square(x * 100, y * 100, 50) for x in range(10) for y in range(10)]
    grid.append(square(1000, 1000, 5, classification={"name": "Immune"}))
    world.repo.create_many(world.alice, world.study_id, world.image_id, grid)
    found, truncated = world.repo.viewport(world.study_id, world.image_id, (120, 120, 200, 90))
    boxes = sorted((r.min_x, r.min_y) for r in found)
    # x in [120, 320] meets squares starting at 100, 200, 300; y in [120, 210] at 100, 200
    assert boxes == [(x, y) for x in (100, 200, 300) for y in (100, 200)]
    assert not truncated
    some, truncated = world.repo.viewport(
        world.study_id, world.image_id, (0, 0, 2000, 2000), limit=7
    )
    assert len(some) == 7 and truncated
    # the route's fast path writes the same features straight from the rows' text
    texts, _ = world.repo.viewport_geojson(world.study_id, world.image_id, (120, 120, 200, 90))
    features = orjson.loads(collection_json(texts, truncated=False))["features"]
    assert features == [r.to_json() for r in found]
    assert features[0]["pixelmill"]["created_at"].endswith("+00:00")
    immune, _ = world.repo.viewport(
        world.study_id, world.image_id, (0, 0, 2000, 2000), classes=["Immune"]
    )
    assert [r.min_x for r in immune] == [1000]
    capped, _ = world.repo.viewport(world.study_id, world.image_id, (0, 0, 9000, 9000), limit=10**6)
    assert len(capped) == min(101, MAX_VIEWPORT)


def test_pages_walk_every_annotation_once(world: World) -> None:
    ids = world.repo.create_many(
        world.alice, world.study_id, world.image_id, [square(i, i, 3) for i in range(25)]
    )
    seen: list[str] = []
    after = None
    while True:
        page = world.repo.page(world.study_id, world.image_id, after=after, limit=10)
        seen += [r.id for r in page]
        if len(page) < 10:
            break
        after = page[-1].id
    assert sorted(seen) == sorted(ids)
    assert [r.id for r in world.repo.iterate(world.study_id, world.image_id)] == sorted(ids)


def test_analysis_output_is_read_only(world: World) -> None:
    (aid,) = world.repo.create_many(
        world.alice, world.study_id, world.image_id, [square(0, 0)],
        source="analysis", analysis_id="an1",
    )  # fmt: skip
    record = world.repo.get(aid)
    assert (record.source, record.analysis_id) == ("analysis", "an1")
    for write in (
        lambda: world.repo.update(world.alice, aid, square(1, 1), expected_version=1),
        lambda: world.repo.delete(world.alice, aid, expected_version=1),
        lambda: world.repo.revert(world.alice, aid, 1),
    ):
        with pytest.raises(Forbidden):
            write()
    assert world.repo.get(aid).version == 1


def test_an_import_is_all_or_nothing(world: World, db: Database) -> None:
    good = square(0, 0)
    too_long = square(0, 0, classification={"name": "x" * 101})
    with pytest.raises(InvalidAnnotation):
        world.repo.create_many(world.alice, world.study_id, world.image_id, [good, too_long])
    with db.read() as conn:
        rows = conn.execute(sa.select(sa.func.count()).select_from(tw.annotation_rows)).scalar()
        versions = conn.execute(
            sa.select(sa.func.count()).select_from(tw.annotation_versions)
        ).scalar()
    assert (rows, versions) == (0, 0)


def test_qupath_cells_keep_their_members_and_measurements(world: World) -> None:
    cells = parse_geojson((QUPATH / "luna_qupath_cells_v03.geojson").read_bytes())
    ids = world.repo.create_many(
        world.alice, world.study_id, world.image_id, cells, source="import"
    )
    [event] = world.events.list(study_id=world.study_id, limit=1)
    assert event.action == "annotation.import" and event.after["count"] == len(cells)
    for aid, cell in zip(ids, cells, strict=True):
        feature = world.repo.get(aid).feature()
        assert feature["properties"].get("measurements", {}) == cell.measurements
        assert feature.get("nucleusGeometry") == cell.extra.get("nucleusGeometry")
        assert parse_feature(feature, Limits()).geometry == cell.geometry
    # a viewport over them answers what one read does, members and QuPath's NaNs too
    box = (0.0, 0.0, 1e9, 1e9)
    found, _ = world.repo.viewport(world.study_id, world.image_id, box, limit=MAX_VIEWPORT)
    texts, _ = world.repo.viewport_geojson(world.study_id, world.image_id, box, limit=MAX_VIEWPORT)
    answer = orjson.loads(collection_json(texts, truncated=False))
    assert answer["features"] == [r.to_json() for r in found] and len(found) == len(cells)


def test_a_nan_property_is_stored_and_answered_as_null(world: World) -> None:
    # QuPath writes NaN, which is not JSON (PostgreSQL's json refuses it)
    feature = square(5, 5, score=nan, extra={"values": [1.0, inf]})
    (aid,) = world.repo.create_many(world.alice, world.study_id, world.image_id, [feature])
    texts, _ = world.repo.viewport_geojson(world.study_id, world.image_id, (0, 0, 50, 50))
    [answer] = orjson.loads(collection_json(texts, truncated=False))["features"]
    assert answer["properties"]["score"] is None
    assert answer["properties"]["extra"] == {"values": [1.0, None]}
    assert answer == world.repo.get(aid).to_json()


def test_a_viewport_stays_json_over_nan_stored_before_it_was_refused(
    world: World, db: Database
) -> None:
    if db.dialect != "sqlite":
        pytest.skip("PostgreSQL's json never held NaN")
    (aid,) = world.repo.create_many(world.alice, world.study_id, world.image_id, [square(5, 5)])
    with db.begin() as conn:  # a row an older release wrote
        conn.execute(
            sa.text("UPDATE annotations SET properties = :p WHERE id = :id"),
            {
                "p": '{"qupath": {"objectType": "annotation", "score": NaN}, "members": {}}',
                "id": aid,
            },
        )
    texts, _ = world.repo.viewport_geojson(world.study_id, world.image_id, (0, 0, 50, 50))
    [answer] = orjson.loads(collection_json(texts, truncated=False))["features"]
    assert answer["properties"] == {"objectType": "annotation", "score": None}
    assert answer == orjson.loads(orjson.dumps(world.repo.get(aid).to_json()))
