"""Annotations of study images, every version kept.

A row of ``annotations`` is the current version; ``annotation_versions`` holds each
version's whole feature (its *snapshot*), so history, diff and revert read one table.
Writes carry the version they change: a stale one gets
:class:`~pixelmill.errors.PreconditionFailed` and changes nothing. Deletes are soft (a
new version with ``deleted_at``); a revert is a new version whose snapshot is an old
one's. Model and classical output (``source="analysis"``) is read-only. Every change
appends its event in the same transaction. Columns: see ``annotation_records``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pixelmill.backends.metadata import tables_workspace as tw
from pixelmill.backends.metadata._time import now
from pixelmill.backends.metadata.annotation_geojson import (
    feature_of,
    viewport_query,
)
from pixelmill.backends.metadata.annotation_records import (
    SELECT,
    VALUE_COLUMNS,
    AnnotationRecord,
    VersionRecord,
    record_of,
    record_of_row,
    row_dict,
    stale,
    summary,
    values_of,
    version_record,
)
from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.events import Actor, append
from pixelmill.errors import Forbidden, NotFound
from pixelmill.imaging.annotations import Annotation, Change, Limits, diff, parse_feature

Source = Literal["manual", "import", "analysis"]
#: the most features one viewport query returns
MAX_VIEWPORT = 5000
_BATCH = 1000
_A = tw.annotation_rows
_V = tw.annotation_versions


class AnnotationRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- writes ---------------------------------------------------------------------------
    def create_many(
        self,
        actor: Actor,
        study_id: str,
        image_id: str,
        annotations: Sequence[Annotation],
        *,
        pixel_size_um: float | None = None,
        source: Source = "manual",
        analysis_id: str | None = None,
    ) -> list[str]:
        """Insert ``annotations`` (all or none, one transaction) and their first
        versions; their ids in order. One event for the lot."""
        at = now()
        author = actor.user_id or ""
        rows, versions = [], []
        for annotation in annotations:
            aid = uuid.uuid4().hex
            values = values_of(annotation, pixel_size_um)
            row = {
                "id": aid,
                "study_id": study_id,
                "image_id": image_id,
                "version": 1,
                "source": source,
                "analysis_id": analysis_id,
                "author_id": author,
                "created_at": at,
                "updated_by": author,
                "updated_at": at,
                "deleted_at": None,
                **values,
            }
            rows.append(row)
            snapshot = record_of(row).snapshot()
            versions.append(
                {
                    "annotation_id": aid,
                    "version": 1,
                    "op": "create",
                    "snapshot": snapshot,
                    "author_id": author,
                    "created_at": at,
                }
            )
        if not rows:
            return []
        with self.db.begin() as conn:
            for start in range(0, len(rows), _BATCH):
                conn.execute(_A.insert(), rows[start : start + _BATCH])
                conn.execute(_V.insert(), versions[start : start + _BATCH])
            if len(rows) == 1:
                after = summary(rows[0], 1, "create")
                append(
                    conn,
                    actor,
                    "annotation.create",
                    "annotation",
                    rows[0]["id"],
                    study_id=study_id,
                    after={**after, "image_id": image_id, "source": source},
                )
            else:
                after = {
                    "image_id": image_id,
                    "count": len(rows),
                    "source": source,
                    "analysis_id": analysis_id,
                    "first_ids": [r["id"] for r in rows[:100]],
                }
                append(
                    conn,
                    actor,
                    "annotation.import",
                    "image",
                    image_id,
                    study_id=study_id,
                    after=after,
                )
        return [r["id"] for r in rows]

    def update(
        self,
        actor: Actor,
        annotation_id: str,
        annotation: Annotation,
        *,
        expected_version: int,
        pixel_size_um: float | None = None,
    ) -> AnnotationRecord:
        """Replace the annotation, when ``expected_version`` is still the current one
        (the same content again makes no new version)."""
        with self.db.begin() as conn:
            current = self._current(conn, annotation_id, expected_version)
            values = values_of(annotation, pixel_size_um)
            if all(getattr(current, k) == values[k] for k in VALUE_COLUMNS):
                return current
            self._write(conn, actor, current, values, "update", deleted=False)
        return self.get(annotation_id)

    def delete(
        self, actor: Actor, annotation_id: str, *, expected_version: int
    ) -> AnnotationRecord:
        """Soft delete: a new version, with ``deleted_at``; history and revert still work."""
        with self.db.begin() as conn:
            current = self._current(conn, annotation_id, expected_version)
            values = {k: getattr(current, k) for k in VALUE_COLUMNS}
            self._write(conn, actor, current, values, "delete", deleted=True)
        return self.get(annotation_id, include_deleted=True)

    def revert(
        self,
        actor: Actor,
        annotation_id: str,
        to_version: int,
        *,
        expected_version: int | None = None,
        pixel_size_um: float | None = None,
    ) -> AnnotationRecord:
        """A new version whose content is version ``to_version``'s (undeletes too)."""
        with self.db.begin() as conn:
            current = self._current(conn, annotation_id, expected_version, include_deleted=True)
            old = self._version(conn, annotation_id, to_version)
            annotation = parse_feature(old.snapshot, Limits(max_vertices=10**9))
            values = values_of(annotation, pixel_size_um)
            self._write(
                conn, actor, current, values, "revert", deleted=False, reverted_to=to_version
            )
        return self.get(annotation_id)

    def _current(
        self,
        conn: Connection,
        annotation_id: str,
        expected: int | None,
        *,
        include_deleted: bool = False,
    ) -> AnnotationRecord:
        current = self._get(conn, annotation_id, include_deleted=include_deleted)
        if current.source == "analysis":
            raise Forbidden(
                "analysis output is read-only: promote it to an editable annotation",
                annotation_id=annotation_id,
            )
        if expected is not None and current.version != expected:
            raise stale(current)
        return current

    def _write(
        self,
        conn: Connection,
        actor: Actor,
        current: AnnotationRecord,
        values: dict[str, Any],
        op: str,
        *,
        deleted: bool,
        reverted_to: int | None = None,
    ) -> None:
        at = now()
        version = current.version + 1
        author = actor.user_id or ""
        done = conn.execute(
            _A.update()
            .where(_A.c.id == current.id, _A.c.version == current.version)
            .values(
                version=version,
                updated_by=author,
                updated_at=at,
                deleted_at=at if deleted else None,
                **values,
            )
        )
        if done.rowcount != 1:  # another write won the race since we read it
            raise stale(self._get(conn, current.id, include_deleted=True))
        snapshot = record_of({**row_dict(current), **values}).snapshot()
        row = {"annotation_id": current.id, "version": version, "op": op, "created_at": at}
        conn.execute(_V.insert().values(snapshot=snapshot, author_id=author, **row))
        before = summary(row_dict(current), current.version, "")
        before.pop("op")
        after = summary(values, version, op)
        if reverted_to is not None:
            after["reverted_to"] = reverted_to
        append(conn, actor, f"annotation.{op}", "annotation", current.id,
               study_id=current.study_id, before=before, after=after)  # fmt: skip

    # -- reads ----------------------------------------------------------------------------
    def get(self, annotation_id: str, *, include_deleted: bool = False) -> AnnotationRecord:
        with self.db.read() as conn:
            return self._get(conn, annotation_id, include_deleted=include_deleted)

    def _get(
        self, conn: Connection, annotation_id: str, *, include_deleted: bool = False
    ) -> AnnotationRecord:
        row = conn.execute(SELECT.where(_A.c.id == annotation_id)).first()
        if row is None or (row.deleted_at is not None and not include_deleted):
            raise NotFound(f"no annotation {annotation_id!r}")
        return record_of_row(row)

    def get_many(self, annotation_ids: Sequence[str]) -> list[AnnotationRecord]:
        """Live annotations by id, in the order given (missing ones left out)."""
        found: dict[str, AnnotationRecord] = {}
        with self.db.read() as conn:
            for start in range(0, len(annotation_ids), _BATCH):
                chunk = list(annotation_ids[start : start + _BATCH])
                query = SELECT.where(_A.c.id.in_(chunk), _A.c.deleted_at.is_(None))
                found.update((r.id, record_of_row(r)) for r in conn.execute(query).all())
        return [found[i] for i in annotation_ids if i in found]

    def history(self, annotation_id: str) -> list[VersionRecord]:
        """Every version, oldest first."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(_V).where(_V.c.annotation_id == annotation_id).order_by(_V.c.version)
            ).all()
        return [version_record(r) for r in rows]

    def version(self, annotation_id: str, version: int) -> VersionRecord:
        with self.db.read() as conn:
            return self._version(conn, annotation_id, version)

    def _version(self, conn: Connection, annotation_id: str, version: int) -> VersionRecord:
        row = conn.execute(
            sa.select(_V).where(_V.c.annotation_id == annotation_id, _V.c.version == version)
        ).first()
        if row is None:
            raise NotFound(f"annotation {annotation_id!r} has no version {version}")
        return version_record(row)

    def diff(self, annotation_id: str, old: int, new: int) -> list[Change]:
        """What changed from version ``old`` to version ``new``."""
        with self.db.read() as conn:
            a = self._version(conn, annotation_id, old)
            b = self._version(conn, annotation_id, new)
        return diff(a.snapshot, b.snapshot)

    def page(
        self,
        study_id: str,
        image_id: str,
        *,
        after: str | None = None,
        limit: int = 100,
        classes: Sequence[str] | None = None,
    ) -> list[AnnotationRecord]:
        """The image's annotations in id order, ``limit`` after the id ``after``."""
        query = self._of_image(study_id, image_id, classes)
        if after:
            query = query.where(_A.c.id > after)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(_A.c.id).limit(limit)).all()
        return [record_of_row(r) for r in rows]

    def iterate(self, study_id: str, image_id: str) -> Iterator[AnnotationRecord]:
        """Every live annotation of the image, in pages (for exports)."""
        after = None
        while True:
            page = self.page(study_id, image_id, after=after, limit=_BATCH)
            yield from page
            if len(page) < _BATCH:
                return
            after = page[-1].id

    def count(self, study_id: str, image_id: str) -> int:
        query = sa.select(sa.func.count()).where(
            _A.c.study_id == study_id, _A.c.image_id == image_id, _A.c.deleted_at.is_(None)
        )
        with self.db.read() as conn:
            return int(conn.execute(query).scalar_one())

    def viewport(
        self,
        study_id: str,
        image_id: str,
        box: tuple[float, float, float, float],
        *,
        limit: int = 1000,
        classes: Sequence[str] | None = None,
    ) -> tuple[list[AnnotationRecord], bool]:
        """Live annotations whose bounding box meets ``box`` = ``(x, y, w, h)`` (level-0
        pixels), at most ``limit`` (<= :data:`MAX_VIEWPORT`); and whether more matched.
        Uses ``ix_annotations_viewport``."""
        x, y, w, h = box
        query = self._of_image(study_id, image_id, classes).where(
            _A.c.min_x <= x + w, _A.c.max_x >= x, _A.c.min_y <= y + h, _A.c.max_y >= y
        )
        limit = max(1, min(limit, MAX_VIEWPORT))
        with self.db.read() as conn:
            rows = conn.execute(query.limit(limit + 1)).all()
        return [record_of_row(r) for r in rows[:limit]], len(rows) > limit

    def viewport_geojson(
        self,
        study_id: str,
        image_id: str,
        box: tuple[float, float, float, float],
        *,
        limit: int = 1000,
        classes: Sequence[str] | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """:meth:`viewport` as the API's features, built straight from the rows, the
        stored JSON spliced in as it is (orjson fragments): for
        :func:`~pixelmill.backends.metadata.annotation_geojson.collection_json`."""
        limit = max(1, min(limit, MAX_VIEWPORT))
        query, params = viewport_query(self.db.dialect, study_id, image_id, box, limit, classes)
        with self.db.read() as conn:
            rows = conn.execute(query, params).all()
        return [feature_of(r, study_id, image_id) for r in rows[:limit]], len(rows) > limit

    @staticmethod
    def _of_image(
        study_id: str,
        image_id: str,
        classes: Sequence[str] | None,
    ) -> sa.Select[Any]:
        query = SELECT.where(
            _A.c.image_id == image_id, _A.c.study_id == study_id, _A.c.deleted_at.is_(None)
        )
        if classes:
            query = query.where(_A.c.class_name.in_(list(classes)))
        return query


__all__ = [
    "MAX_VIEWPORT",
    "AnnotationRecord",
    "AnnotationRepository",
    "Source",
    "VersionRecord",
]
