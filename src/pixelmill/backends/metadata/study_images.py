"""The images of a study: links to images (which belong to their owners), with the
study's own attributes (display name, stain, magnification, pixel size, patient)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from pixelmill.backends.metadata import tables as t
from pixelmill.backends.metadata import tables_workspace as tw
from pixelmill.backends.metadata._paging import contains_text
from pixelmill.backends.metadata._time import now
from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.events import Actor, append
from pixelmill.backends.metadata.studies import StudyImageRecord, study_image_record, with_utc
from pixelmill.errors import NotFound
from pixelmill.imaging.annotations import with_pixel_size

#: the image columns a study's listing carries
LISTED = (
    "id", "sha256", "filename", "format", "width", "height", "bands", "bit_depth", "pages",
    "pixel_size_um", "size_bytes", "source", "owner_id",
)  # fmt: skip


_SI, _IM = tw.study_images, t.images
_SELECT = sa.select(_SI, *[_IM.c[name] for name in LISTED]).join(_IM, _IM.c.id == _SI.c.image_id)


def _ordered(query: sa.Select[Any]) -> sa.Select[Any]:
    return (
        query.order_by(_SI.c.added_at.desc(), _SI.c.image_id.desc())
        .limit(sa.bindparam("limit"))
        .offset(sa.bindparam("offset"))
    )


_COUNT = (
    sa.select(sa.func.count()).select_from(_SI).where(_SI.c.study_id == sa.bindparam("study_id"))
)
_PAGE = _ordered(_SELECT.where(_SI.c.study_id == sa.bindparam("study_id")))


@dataclass(frozen=True)
class ForeignLink:
    """A study's link to an image that a member added without owning it (nor being a
    site admin now): made before only owners could share, it still lets the study's
    members read the image. ``owner`` is ``None`` for an unowned image."""

    study_id: str
    study_name: str
    image_id: str
    filename: str | None
    owner_id: str
    owner: str | None
    added_by_id: str
    added_by: str
    added_at: datetime

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["added_at"] = self.added_at.isoformat()
        return body


class StudyImageRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add_image(self, actor: Actor, study_id: str, image_id: str, **attrs: Any) -> bool:
        """Link an image; ``False`` when it was linked already."""
        try:
            with self.db.begin() as conn:
                conn.execute(
                    tw.study_images.insert().values(
                        study_id=study_id,
                        image_id=image_id,
                        added_by=actor.user_id,
                        added_at=now(),
                        **attrs,
                    )
                )
                append(conn, actor, "image.add", "image", image_id, study_id=study_id, after=attrs)
        except IntegrityError:
            if self.study_image(study_id, image_id) is not None:
                return False
            raise
        return True

    def study_image(self, study_id: str, image_id: str) -> StudyImageRecord | None:
        si = tw.study_images
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(si).where(si.c.study_id == study_id, si.c.image_id == image_id)
            ).first()
        return None if row is None else study_image_record(row)

    def update_image(self, actor: Actor, study_id: str, image_id: str, **attrs: Any) -> None:
        si = tw.study_images
        with self.db.begin() as conn:
            row = conn.execute(
                sa.select(si).where(si.c.study_id == study_id, si.c.image_id == image_id)
            ).first()
            if row is None:
                raise NotFound(f"no image {image_id!r} in this study")
            before = {k: row._mapping[k] for k in attrs}
            conn.execute(
                si.update()
                .where(si.c.study_id == study_id, si.c.image_id == image_id)
                .values(**attrs)
            )
            if "pixel_size_um" in attrs and attrs["pixel_size_um"] != before["pixel_size_um"]:
                _remeasure(conn, study_id, image_id, attrs["pixel_size_um"])
            append(
                conn,
                actor,
                "image.update",
                "image",
                image_id,
                study_id=study_id,
                before=before,
                after=attrs,
            )

    def remove_image(
        self, actor: Actor, study_id: str, image_id: str, *, reason: str | None = None
    ) -> None:
        """Unlink an image. The study's threads pinned to it lose the pin (image and
        region), as when the image is deleted; its annotations in the study stay, as
        history, and show again if it is linked again (the event counts both, and says
        the ``reason`` when one is given, e.g. ``foreign-link`` for an operator's
        remediation)."""
        si, th, an = tw.study_images, tw.threads, tw.annotation_rows
        with self.db.begin() as conn:
            done = conn.execute(
                si.delete().where(si.c.study_id == study_id, si.c.image_id == image_id)
            )
            if not done.rowcount:
                raise NotFound(f"no image {image_id!r} in this study")
            unpinned = conn.execute(
                th.update()
                .where(th.c.study_id == study_id, th.c.image_id == image_id)
                .values(image_id=None, region=None)
            ).rowcount
            kept = conn.execute(
                sa.select(sa.func.count())
                .select_from(an)
                .where(an.c.study_id == study_id, an.c.image_id == image_id)
                .where(an.c.deleted_at.is_(None))
            ).scalar_one()
            after: dict[str, Any] = {"threads_unpinned": unpinned, "annotations_kept": int(kept)}
            if reason:
                after["reason"] = reason
            append(conn, actor, "image.remove", "image", image_id, study_id=study_id, after=after)

    def images(
        self,
        study_id: str,
        *,
        limit: int = 100,
        offset: int = 0,
        patient_id: str | None = None,
        q: str | None = None,
    ) -> tuple[list[tuple[StudyImageRecord, Any]], int]:
        """A page of the study's images (newest first) with what a listing shows of
        their image rows (:data:`LISTED`; not the EXIF)."""
        si, im = tw.study_images, t.images
        params: dict[str, Any] = {"study_id": study_id, "limit": limit, "offset": offset}
        if not (patient_id or q):  # the common case: statements built once, reused
            total_q, page = _COUNT, _PAGE
        else:
            base = _SELECT.where(si.c.study_id == sa.bindparam("study_id"))
            if patient_id:
                base = base.where(si.c.patient_id == patient_id)
            if q:
                base = base.where(
                    sa.or_(contains_text(si.c.display_name, q), contains_text(im.c.filename, q))
                )
            total_q = sa.select(sa.func.count()).select_from(base.subquery())
            page = _ordered(base)
        with self.db.read() as conn:
            total = int(conn.execute(total_q, params).scalar_one())
            rows = conn.execute(page, params).all()
        # positional: the link's columns, then LISTED (no per-row key lookups)
        keys = si.c.keys()
        n = len(keys)
        out = []
        for row in rows:
            link = dict(zip(keys, row[:n], strict=True))
            out.append(
                (
                    StudyImageRecord(**with_utc(link, "added_at")),
                    dict(zip(LISTED, row[n:], strict=True)),
                )
            )
        return out, total

    def studies_granting(self, image_id: str, user_id: str) -> list[tuple[str, str, str]]:
        """(study id, status, role) of each study ``user_id`` is a member of that holds
        ``image_id``."""
        si, m, s = tw.study_images, tw.study_members, tw.studies
        query = (
            sa.select(s.c.id, s.c.status, m.c.role)
            .join(si, si.c.study_id == s.c.id)
            .join(m, sa.and_(m.c.study_id == s.c.id, m.c.user_id == user_id))
            .where(si.c.image_id == image_id)
        )
        with self.db.read() as conn:
            return [(r.id, r.status, r.role) for r in conn.execute(query).all()]

    def foreign_links(self) -> list[ForeignLink]:
        """The links whose ``added_by`` is neither the image's owner nor a site admin
        now, oldest first. A study import's links are not foreign (the job's owner
        links what it imports, which they own), nor is a job's result linked by the
        job's owner, nor (were the column ever empty) a link with no ``added_by``."""
        si, im, s = tw.study_images, t.images, tw.studies
        adder, owner = tw.users.alias("adder"), tw.users.alias("owner")
        query = (
            sa.select(
                si.c.study_id,
                s.c.name.label("study_name"),
                si.c.image_id,
                im.c.filename,
                im.c.owner_id,
                owner.c.username.label("owner"),
                si.c.added_by.label("added_by_id"),
                adder.c.username.label("added_by"),
                si.c.added_at,
            )
            .select_from(si)
            .join(im, im.c.id == si.c.image_id)
            .join(s, s.c.id == si.c.study_id)
            .join(adder, adder.c.id == si.c.added_by)  # NULL added_by: no row
            .outerjoin(owner, owner.c.id == im.c.owner_id)
            .where(si.c.added_by != im.c.owner_id, adder.c.site_role != "admin")
            .order_by(si.c.added_at, si.c.study_id, si.c.image_id)
        )
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [ForeignLink(**with_utc(dict(r._mapping), "added_at")) for r in rows]

    def public_render(self, image_id: str) -> bool:
        """True when a study holding the image opted in to anonymous renders."""
        si, s = tw.study_images, tw.studies
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(s.c.options)
                .join(si, si.c.study_id == s.c.id)
                .where(si.c.image_id == image_id, s.c.status != "archived")
            ).all()
        return any(bool((r.options or {}).get("public_renders")) for r in rows)


def _remeasure(conn: sa.Connection, study_id: str, image_id: str, pixel_size: float | None) -> None:
    """The µm measurements of the study image's annotations, computed again for its new
    pixel size (the study's, else the image's own): they follow the size the study shows,
    as a newly drawn annotation is measured (no new versions: measurements are not
    content)."""
    an = tw.annotation_rows
    if pixel_size is None:
        pixel_size = conn.execute(
            sa.select(t.images.c.pixel_size_um).where(t.images.c.id == image_id)
        ).scalar_one_or_none()
    rows = conn.execute(
        sa.select(an.c.id, an.c.measurements).where(
            an.c.study_id == study_id, an.c.image_id == image_id
        )
    ).all()
    if rows:
        conn.execute(
            an.update().where(an.c.id == sa.bindparam("rid")),
            [
                {"rid": r.id, "measurements": with_pixel_size(r.measurements, pixel_size)}
                for r in rows
            ],
        )
