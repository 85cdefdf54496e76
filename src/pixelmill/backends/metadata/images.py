"""Image metadata repository."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from pixelmill.backends.metadata import pg_prepared
from pixelmill.backends.metadata import tables as t
from pixelmill.backends.metadata._time import utc
from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.records import ImageRecord
from pixelmill.errors import NotFound

#: one prepared statement on the pooled psycopg connection (PostgreSQL): a worker looks
#: up every result image by its digest, and SQLAlchemy's per-statement work cost more
#: than the query (docs/benchmarks.md, "Async jobs")
_BY_SHA256_PG = f"SELECT {', '.join(t.images.c.keys())} FROM images WHERE sha256 = %(sha256)s"


def _record(row: Any) -> ImageRecord:
    data = dict(row if isinstance(row, dict) else row._mapping)
    data["created_at"] = utc(data["created_at"])
    return ImageRecord(**data)


class ImageRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, **fields: Any) -> tuple[ImageRecord, bool]:
        """Insert an image row (every column); returns ``(record, created)``. An
        existing sha256 wins. One transaction: the unique sha256 finds a duplicate, and
        the new record is the row as given (no read after the write)."""
        fields.setdefault("created_at", datetime.now(UTC))
        try:
            with self.db.begin() as conn:
                conn.execute(t.images.insert().values(**fields))
        except IntegrityError:
            # these bytes are stored already (or a concurrent upload committed first)
            existing = self.find_by_sha256(fields["sha256"])
            if existing is None:
                raise
            return existing, False
        return ImageRecord(**fields), True

    def get(self, image_id: str) -> ImageRecord:
        with self.db.read() as conn:
            row = conn.execute(sa.select(t.images).where(t.images.c.id == image_id)).first()
        if row is None:
            raise NotFound(f"no image {image_id!r}")
        return _record(row)

    def find_by_sha256(self, sha256: str) -> ImageRecord | None:
        if self.db.dialect == "postgresql":
            found = pg_prepared.run(self.db.engine, _BY_SHA256_PG, {"sha256": sha256})
            return None if found is None else _record(found)
        with self.db.read() as conn:
            row = conn.execute(sa.select(t.images).where(t.images.c.sha256 == sha256)).first()
        return None if row is None else _record(row)

    def list(self, *, limit: int = 50, after: str | None = None) -> list[ImageRecord]:
        """Newest first; ``after`` is the id of the last image of the previous page."""
        query = sa.select(t.images).order_by(t.images.c.created_at.desc(), t.images.c.id.desc())
        with self.db.begin() as conn:
            if after is not None:
                anchor = conn.execute(
                    sa.select(t.images.c.created_at, t.images.c.id).where(t.images.c.id == after)
                ).first()
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

    def count(self) -> int:
        with self.db.begin() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(t.images)).scalar_one())

    def delete(self, image_id: str) -> ImageRecord:
        record = self.get(image_id)
        with self.db.begin() as conn:
            conn.execute(t.images.delete().where(t.images.c.id == image_id))
        return record
