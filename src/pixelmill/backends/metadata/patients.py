"""The patients (subjects) of a study: a pseudonymous code per study (``S-0001`` ...),
an allow-list of attributes and, optionally, the keyed HMAC of an external id (the id
itself is never stored). Every change appends its event in the same transaction."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from pixelmill.backends.metadata import tables_workspace as tw
from pixelmill.backends.metadata._paging import study_page
from pixelmill.backends.metadata._time import now, utc
from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.events import Actor, append
from pixelmill.errors import Conflict, NotFound

#: the attributes a patient may carry (nothing free-form that could identify someone)
ATTRIBUTES = ("sex", "age_band", "diagnosis", "arm", "tags")


@dataclass(frozen=True)
class PatientRecord:
    id: str
    study_id: str
    code: str
    has_external_id: bool
    sex: str | None
    age_band: str | None
    diagnosis: str | None
    arm: str | None
    tags: list[str]
    created_by: str
    created_at: datetime
    updated_at: datetime
    image_count: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "has_external_id": self.has_external_id,
            "sex": self.sex,
            "age_band": self.age_band,
            "diagnosis": self.diagnosis,
            "arm": self.arm,
            "tags": list(self.tags),
            "image_count": self.image_count,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def code_of(seq: int) -> str:
    """The pseudonymous code of a study's ``seq``-th patient: ``S-0001``, ``S-10000``."""
    return f"S-{seq:04d}"


def _record(row: Any, image_count: int = 0) -> PatientRecord:
    data = dict(row._mapping)
    return PatientRecord(
        id=data["id"],
        study_id=data["study_id"],
        code=data["code"],
        has_external_id=data["external_id_hmac"] is not None,
        sex=data["sex"],
        age_band=data["age_band"],
        diagnosis=data["diagnosis"],
        arm=data["arm"],
        tags=list(data["tags"] or []),
        created_by=data["created_by"],
        created_at=utc(data["created_at"]),
        updated_at=utc(data["updated_at"]),
        image_count=image_count,
    )


def _audit(attrs: dict[str, Any]) -> dict[str, Any]:
    """What the event log keeps of a change: the attributes, never the external id."""
    out = {k: v for k, v in attrs.items() if k in ATTRIBUTES}
    if "external_id_hmac" in attrs:
        out["external_id"] = "set" if attrs["external_id_hmac"] else "cleared"
    return out


class PatientRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        actor: Actor,
        study_id: str,
        *,
        external_id_hmac: str | None = None,
        code: str | None = None,
        **attrs: Any,
    ) -> PatientRecord:
        """Add a patient with the study's next code (or ``code``, e.g. ``S-0007`` from a
        study archive: the counter then moves past it). The code comes from an atomic
        ``UPDATE ... RETURNING`` of the study's counter, so concurrent creates in one
        study never share a code (the row lock serialises them)."""
        s = tw.studies
        patient_id = secrets.token_hex(8)
        at = now()
        bump: Any = s.c.patient_seq + 1
        if code is not None:
            given = int(code.removeprefix("S-"))
            bump = sa.case((s.c.patient_seq < given, given), else_=s.c.patient_seq)
        try:
            with self.db.begin() as conn:
                seq = conn.execute(
                    s.update()
                    .where(s.c.id == study_id)
                    .values(patient_seq=bump)
                    .returning(s.c.patient_seq)
                ).scalar_one_or_none()
                if seq is None:
                    raise NotFound(f"no study {study_id!r}")
                code = code or code_of(int(seq))
                conn.execute(
                    tw.patients.insert().values(
                        id=patient_id,
                        study_id=study_id,
                        code=code,
                        external_id_hmac=external_id_hmac,
                        tags=attrs.pop("tags", None) or [],
                        created_by=actor.user_id,
                        created_at=at,
                        updated_at=at,
                        **attrs,
                    )
                )
                after = {"code": code, **_audit({**attrs, "external_id_hmac": external_id_hmac})}
                append(
                    conn,
                    actor,
                    "patient.create",
                    "patient",
                    patient_id,
                    study_id=study_id,
                    after=after,
                )
        except IntegrityError:
            raise Conflict(
                "a patient with this external id (or code) is already in the study"
            ) from None
        return self.get(study_id, patient_id)

    def get(self, study_id: str, patient_id: str) -> PatientRecord:
        p = tw.patients
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(p).where(p.c.id == patient_id, p.c.study_id == study_id)
            ).first()
            if row is None:
                raise NotFound(f"no patient {patient_id!r} in this study")
            return _record(row, self._image_counts(conn, [patient_id]).get(patient_id, 0))

    def find_by_external(self, study_id: str, external_id_hmac: str) -> PatientRecord:
        p = tw.patients
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(p).where(
                    p.c.study_id == study_id, p.c.external_id_hmac == external_id_hmac
                )
            ).first()
            if row is None:
                raise NotFound("no patient with this external id in this study")
            return _record(row, self._image_counts(conn, [row.id]).get(row.id, 0))

    def page(
        self, study_id: str, *, limit: int = 100, offset: int = 0
    ) -> tuple[list[PatientRecord], int]:
        """A page of the study's patients in code order, with their image counts."""
        p = tw.patients
        with self.db.read() as conn:
            order = (sa.func.length(p.c.code), p.c.code)
            rows, total = study_page(conn, p, study_id, order, limit=limit, offset=offset)
            counts = self._image_counts(conn, [r.id for r in rows])
        return [_record(r, counts.get(r.id, 0)) for r in rows], total

    def update(self, actor: Actor, study_id: str, patient_id: str, **changes: Any) -> PatientRecord:
        p = tw.patients
        try:
            with self.db.begin() as conn:
                row = conn.execute(
                    sa.select(p).where(p.c.id == patient_id, p.c.study_id == study_id)
                ).first()
                if row is None:
                    raise NotFound(f"no patient {patient_id!r} in this study")
                before = _audit({k: row._mapping[k] for k in changes})
                conn.execute(
                    p.update().where(p.c.id == patient_id).values(updated_at=now(), **changes)
                )
                append(
                    conn,
                    actor,
                    "patient.update",
                    "patient",
                    patient_id,
                    study_id=study_id,
                    before=before,
                    after=_audit(changes),
                )
        except IntegrityError:
            raise Conflict("a patient with this external id is already in the study") from None
        return self.get(study_id, patient_id)

    def delete(self, actor: Actor, study_id: str, patient_id: str) -> None:
        """Delete the patient; the study's images of the patient stay, unlinked."""
        p, si = tw.patients, tw.study_images
        with self.db.begin() as conn:
            row = conn.execute(
                sa.select(p.c.code).where(p.c.id == patient_id, p.c.study_id == study_id)
            ).first()
            if row is None:
                raise NotFound(f"no patient {patient_id!r} in this study")
            unlinked = conn.execute(
                si.update()
                .where(si.c.study_id == study_id, si.c.patient_id == patient_id)
                .values(patient_id=None)
            ).rowcount
            conn.execute(p.delete().where(p.c.id == patient_id))
            append(
                conn,
                actor,
                "patient.delete",
                "patient",
                patient_id,
                study_id=study_id,
                before={"code": row.code, "images_unlinked": int(unlinked or 0)},
            )

    def exists(self, study_id: str, patient_id: str) -> bool:
        p = tw.patients
        with self.db.read() as conn:
            return (
                conn.execute(
                    sa.select(p.c.id).where(p.c.id == patient_id, p.c.study_id == study_id)
                ).first()
                is not None
            )

    @staticmethod
    def _image_counts(conn: Connection, patient_ids: list[str]) -> dict[str, int]:
        if not patient_ids:
            return {}
        si = tw.study_images
        rows = conn.execute(
            sa.select(si.c.patient_id, sa.func.count())
            .where(si.c.patient_id.in_(patient_ids))
            .group_by(si.c.patient_id)
        ).all()
        return {pid: int(n) for pid, n in rows}


def image_attributes(db: Database, study_id: str) -> dict[str, dict[str, Any]]:
    """Per image of the study: its study attributes and its patient's, for exports."""
    from pixelmill.backends.metadata import tables as t

    si, p, im = tw.study_images, tw.patients, t.images
    query = (
        sa.select(
            si.c.image_id,
            sa.func.coalesce(sa.func.nullif(si.c.display_name, ""), im.c.filename).label(
                "display_name"
            ),
            si.c.stain,
            si.c.magnification,
            sa.func.coalesce(si.c.pixel_size_um, im.c.pixel_size_um).label("pixel_size_um"),
            p.c.code.label("patient_code"),
            p.c.sex,
            p.c.age_band,
            p.c.diagnosis,
            p.c.arm,
        )
        .join(im, im.c.id == si.c.image_id)
        .outerjoin(p, p.c.id == si.c.patient_id)
        .where(si.c.study_id == study_id)
    )
    with db.read() as conn:
        return {row.image_id: dict(row._mapping) for row in conn.execute(query).all()}
