"""Deleting an image with what was derived from it, in ONE transaction.

What a study made of the image goes with it (as in OMERO): each analysis that ran on it
loses the image (its ``image_ids``, its per-image summary entry, and its object count
is recounted), the job tasks of those analyses forget the image's artifacts and result
image, and the result images (the overlays: the image's pixels with outlines drawn) are
deleted. A thread pinned to the image loses its ``region`` as the pin goes (the foreign
key sets ``image_id`` to NULL; a region means nothing without its image).

Everything here is rows: the caller deletes the objects (originals of the deleted
images, the artifacts' keys) once the transaction has committed. A crash in between
leaves only unreferenced objects behind, never a served pixel of a deleted image."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pixelmill.backends.metadata import tables as t
from pixelmill.backends.metadata import tables_jobs as tj
from pixelmill.backends.metadata import tables_workspace as tw
from pixelmill.backends.metadata._time import now, utc
from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.quotas import count_stored
from pixelmill.backends.metadata.records import ImageRecord
from pixelmill.errors import NotFound


@dataclass(frozen=True)
class DeletedImage:
    """The deleted image, the result images deleted with it, and the storage keys of
    the per-image artifacts its analyses' jobs had (for the caller to delete)."""

    record: ImageRecord
    derived: list[ImageRecord] = field(default_factory=list)
    artifact_keys: list[str] = field(default_factory=list)


def _image(row: Any) -> ImageRecord:
    data = dict(row._mapping)
    data["created_at"] = utc(data["created_at"])
    return ImageRecord(**data)


def _mentions(column: Any, image_id: str) -> Any:
    """``column`` (JSON) holds the string ``image_id`` somewhere (a coarse, portable
    pre-filter: the caller checks each row)."""
    escaped = image_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return sa.cast(column, sa.Text).like(f'%"{escaped}"%', escape="\\")


def delete_image(db: Database, image_id: str) -> DeletedImage:
    """Delete the image row and what was derived from it (see the module); 404 when
    there is no such image. The owners' stored bytes are recounted."""
    with db.begin() as conn:
        row = conn.execute(sa.select(t.images).where(t.images.c.id == image_id)).first()
        if row is None:
            raise NotFound(f"no image {image_id!r}")
        record = _image(row)
        result_ids, keys = _forget_in_analyses(conn, image_id)
        derived = [r for r in _still_unused(conn, result_ids) if r.id != image_id]
        ids = [image_id] + [r.id for r in derived]
        th = tw.threads
        conn.execute(th.update().where(th.c.image_id.in_(ids)).values(region=None))
        for gone in (record, *derived):
            deleted = conn.execute(t.images.delete().where(t.images.c.id == gone.id)).rowcount
            if deleted:  # (a concurrent delete of the same row counts once)
                count_stored(conn, gone.owner_id, -gone.size_bytes)
    return DeletedImage(record, derived, keys)


def _forget_in_analyses(conn: Connection, image_id: str) -> tuple[set[str], list[str]]:
    """Drop the image from every analysis that ran on it (and from their jobs' tasks);
    returns the result image ids and artifact keys those held."""
    a, jt = tw.analyses, tj.job_tasks
    rows = conn.execute(
        sa.select(a).where(_mentions(a.c.image_ids, image_id)).with_for_update()
    ).all()
    result_ids: set[str] = set()
    keys: list[str] = []
    for row in rows:
        if image_id not in row.image_ids:
            continue
        summary = dict(row.summary or {})
        images = dict(summary.get("images") or {})
        entry = images.pop(image_id, None) or {}
        if entry.get("result_image"):
            result_ids.add(str(entry["result_image"]))
        if "images" in summary:
            summary["images"] = images
            summary["object_count"] = sum(
                e.get("object_count") or 0 for e in images.values() if e.get("state") == "succeeded"
            )
        conn.execute(
            a.update()
            .where(a.c.id == row.id)
            .values(
                image_ids=[i for i in row.image_ids if i != image_id],
                summary=summary,
                updated_at=now(),
            )
        )
        if row.job_id is None:
            continue
        mine = sa.and_(jt.c.job_id == row.job_id, jt.c.input == image_id)
        for task in conn.execute(sa.select(jt.c.result_image, jt.c.artifacts).where(mine)):
            keys += [m["key"] for m in task.artifacts or [] if m.get("key")]
            if task.result_image:
                result_ids.add(task.result_image)
        conn.execute(jt.update().where(mine).values(artifacts=None, result_image=None))
    return result_ids, keys


def _still_unused(conn: Connection, result_ids: set[str]) -> list[ImageRecord]:
    """The records of those result images no remaining analysis refers to (the same
    overlay bytes of the same runner are one image row, which may serve another image's
    analysis too)."""
    a = tw.analyses
    found: list[ImageRecord] = []
    for result_id in sorted(result_ids):
        used = conn.execute(
            sa.select(a.c.summary).where(_mentions(a.c.summary, result_id))
        ).scalars()
        if any(_refers(summary, result_id) for summary in used):
            continue
        row = conn.execute(sa.select(t.images).where(t.images.c.id == result_id)).first()
        if row is not None:
            found.append(_image(row))
    return found


def _refers(summary: Any, result_id: str) -> bool:
    images = (summary or {}).get("images") or {}
    return any(e.get("result_image") == result_id for e in images.values())
