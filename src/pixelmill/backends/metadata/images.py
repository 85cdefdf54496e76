"""Image metadata repository."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from pixelmill.backends.metadata import pg_prepared
from pixelmill.backends.metadata import tables as t
from pixelmill.backends.metadata._time import utc
from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.image_delete import delete_image
from pixelmill.backends.metadata.quotas import count_stored
from pixelmill.backends.metadata.records import ImageRecord
from pixelmill.errors import NotFound

#: the sources of images a job made (masks, overlays, model output); every other source
#: (an upload, a study import, a remote fetch) is an image a person brought
RESULT_SOURCES = ("job", "inference")

#: one prepared statement on the pooled psycopg connection (PostgreSQL): a worker looks
#: up every result image by its digest, and SQLAlchemy's per-statement work cost more
#: than the query (docs/benchmarks.md, "Async jobs")
_BY_SHA256_PG = (
    f"SELECT {', '.join(t.images.c.keys())} FROM images "
    "WHERE owner_id = %(owner_id)s AND sha256 = %(sha256)s"
)


#: statements built once with bound parameters: built per call, SQLAlchemy's construction
#: and cache-key walk cost more than SQLite's work (docs/benchmarks.md, "Storing a mask,
#: made cheaper")
_INSERT = t.images.insert()
_BY_ID = sa.select(t.images).where(t.images.c.id == sa.bindparam("id"))
_BY_SHA256 = sa.select(t.images).where(
    t.images.c.owner_id == sa.bindparam("owner_id"), t.images.c.sha256 == sa.bindparam("sha256")
)


Origin = Literal["upload", "result"]


def _of_origin(query: sa.Select[Any], origin: Origin | None) -> sa.Select[Any]:
    """``result``: the images jobs made (:data:`RESULT_SOURCES`); ``upload``: the others."""
    if origin is None:
        return query
    made = t.images.c.source.in_(RESULT_SOURCES)
    return query.where(made if origin == "result" else sa.not_(made))


def _record(row: Any) -> ImageRecord:
    data = dict(row if isinstance(row, dict) else row._mapping)
    data["created_at"] = utc(data["created_at"])
    return ImageRecord(**data)


class ImageRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self, *, max_stored_bytes: int | None = None, **fields: Any
    ) -> tuple[ImageRecord, bool]:
        """Insert an image row (every column); returns ``(record, created)``. The owner's
        existing row for the same sha256 wins. One transaction: the unique (owner,
        sha256) finds a duplicate first (so an owner at the quota still gets the row
        they have), then the owner's storage quota (``max_stored_bytes``, see
        :func:`.quotas.count_stored`) counts the new row's bytes; the new record is the
        row as given."""
        fields.setdefault("created_at", datetime.now(UTC))
        fields.setdefault("owner_id", "")
        try:
            with self.db.begin() as conn:
                conn.execute(_INSERT, fields)
                count_stored(conn, fields["owner_id"], fields["size_bytes"], max_stored_bytes)
        except IntegrityError:
            # these bytes are stored already (or a concurrent upload committed first)
            existing = self.find_by_sha256(fields["sha256"], fields["owner_id"])
            if existing is None:
                raise
            return existing, False
        return ImageRecord(**fields), True

    def get(self, image_id: str) -> ImageRecord:
        with self.db.read() as conn:
            row = conn.execute(_BY_ID, {"id": image_id}).first()
        if row is None:
            raise NotFound(f"no image {image_id!r}")
        return _record(row)

    def find_by_sha256(self, sha256: str, owner_id: str = "") -> ImageRecord | None:
        """The owner's image with these bytes (each owner has their own handle)."""
        if self.db.dialect == "postgresql":
            found = pg_prepared.run(
                self.db.engine, _BY_SHA256_PG, {"sha256": sha256, "owner_id": owner_id}
            )
            return None if found is None else _record(found)
        with self.db.read() as conn:
            row = conn.execute(_BY_SHA256, {"owner_id": owner_id, "sha256": sha256}).first()
        return None if row is None else _record(row)

    def stored(self, sha256: str) -> bool:
        """Whether any image row (any owner) still uses these bytes."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(t.images.c.id).where(t.images.c.sha256 == sha256)).first()
        return row is not None

    def list(
        self,
        *,
        limit: int = 50,
        after: str | None = None,
        owner_id: str | None = None,
        origin: Origin | None = None,
    ) -> list[ImageRecord]:
        """Newest first; ``after`` is the id of the last image of the previous page;
        ``owner_id``: only that owner's images (``None``: everyone's); ``origin``: only
        uploads or only job results (:func:`_of_origin`)."""
        query = sa.select(t.images).order_by(t.images.c.created_at.desc(), t.images.c.id.desc())
        query = _of_origin(query, origin)
        if owner_id is not None:
            query = query.where(t.images.c.owner_id == owner_id)
        with self.db.begin() as conn:
            if after is not None:
                find = sa.select(t.images.c.created_at, t.images.c.id).where(t.images.c.id == after)
                if owner_id is not None:  # another owner's image: as unknown as a made-up id
                    find = find.where(t.images.c.owner_id == owner_id)
                anchor = conn.execute(find).first()
                if anchor is None:
                    raise NotFound(f"no image {after!r} to page after")
                query = query.where(
                    sa.or_(
                        t.images.c.created_at < anchor.created_at,
                        sa.and_(
                            t.images.c.created_at == anchor.created_at, t.images.c.id < anchor.id
                        ),
                    )
                )
            rows = conn.execute(query.limit(limit)).all()
        return [_record(r) for r in rows]

    def count(self, *, owner_id: str | None = None, origin: Origin | None = None) -> int:
        query = _of_origin(sa.select(sa.func.count()).select_from(t.images), origin)
        if owner_id is not None:
            query = query.where(t.images.c.owner_id == owner_id)
        with self.db.begin() as conn:
            return int(conn.execute(query).scalar_one())

    def delete(self, image_id: str) -> ImageRecord:
        """Delete the image and what its studies derived from it (analysis results,
        overlays, a pinned thread's region), in one transaction: see
        :func:`.image_delete.delete_image`, which also says which objects to delete."""
        return delete_image(self.db, image_id).record
