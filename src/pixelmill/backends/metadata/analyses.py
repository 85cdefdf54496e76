"""A study's analyses: a preset or a model run as one job on some of its images, with
its status and a per-image summary (state, object count, artifact links) refreshed from
the job. The images' ``analysis_status`` moves with it, in the same transaction."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pixelmill.backends.metadata import tables_workspace as tw
from pixelmill.backends.metadata._paging import study_page
from pixelmill.backends.metadata._time import now, utc
from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.events import Actor, append
from pixelmill.errors import NotFound

#: analysis states; an analysis in one of FINISHED never changes again
FINISHED = ("done", "failed", "cancelled")


@dataclass(frozen=True)
class AnalysisRecord:
    id: str
    study_id: str
    job_id: str | None
    kind: str
    target: str
    params: dict[str, Any]
    status: str
    image_ids: list[str]
    summary: dict[str, Any]
    created_by: str
    created_at: datetime
    updated_at: datetime

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def _images_done(summary: dict[str, Any]) -> int:
    """How many of an analysis's images are finished, as its summary says."""
    images = summary.get("images", {})
    return sum(1 for e in images.values() if e.get("state") in ("succeeded", "failed", "cancelled"))


def _record(row: Any) -> AnalysisRecord:
    data = dict(row._mapping)
    data["created_at"] = utc(data["created_at"])
    data["updated_at"] = utc(data["updated_at"])
    return AnalysisRecord(**data)


class AnalysisRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        actor: Actor,
        study_id: str,
        *,
        job_id: str,
        kind: str,
        target: str,
        params: dict[str, Any],
        image_ids: list[str],
        summary: dict[str, Any] | None = None,
    ) -> AnalysisRecord:
        """Record a submitted analysis (``running``) and mark its images running;
        ``summary`` starts the summary (e.g. the ``region`` the analysis covers)."""
        analysis_id = secrets.token_hex(8)
        at = now()
        si = tw.study_images
        with self.db.begin() as conn:
            conn.execute(
                tw.analyses.insert().values(
                    id=analysis_id,
                    study_id=study_id,
                    job_id=job_id,
                    kind=kind,
                    target=target,
                    params=params,
                    status="running",
                    image_ids=image_ids,
                    summary=summary or {},
                    created_by=actor.user_id,
                    created_at=at,
                    updated_at=at,
                )
            )
            conn.execute(
                si.update()
                .where(si.c.study_id == study_id, si.c.image_id.in_(image_ids))
                .values(analysis_status="running")
            )
            append(
                conn,
                actor,
                "analysis.run",
                "analysis",
                analysis_id,
                study_id=study_id,
                after={"job_id": job_id, "kind": kind, "target": target, "images": len(image_ids)},
            )
        return self.get(study_id, analysis_id)

    def not_in_study(self, study_id: str, image_ids: list[str]) -> list[str]:
        """Those of ``image_ids`` that the study does not hold."""
        si = tw.study_images
        with self.db.read() as conn:
            held = set(
                conn.execute(
                    sa.select(si.c.image_id).where(
                        si.c.study_id == study_id, si.c.image_id.in_(image_ids)
                    )
                ).scalars()
            )
        return [i for i in image_ids if i not in held]

    def get(self, study_id: str, analysis_id: str) -> AnalysisRecord:
        a = tw.analyses
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(a).where(a.c.id == analysis_id, a.c.study_id == study_id)
            ).first()
        if row is None:
            raise NotFound(f"no analysis {analysis_id!r} in this study")
        return _record(row)

    def for_jobs(self, job_ids: Sequence[str]) -> list[AnalysisRecord]:
        """The analyses that the jobs ``job_ids`` run (most jobs run none)."""
        a = tw.analyses
        found: list[AnalysisRecord] = []
        with self.db.read() as conn:
            for start in range(0, len(job_ids), 500):
                chunk = list(job_ids[start : start + 500])
                rows = conn.execute(sa.select(a).where(a.c.job_id.in_(chunk))).all()
                found += [_record(r) for r in rows]
        return found

    def page(
        self, study_id: str, *, limit: int = 50, offset: int = 0
    ) -> tuple[list[AnalysisRecord], int]:
        """A page of the study's analyses, newest first, and their total."""
        a = tw.analyses
        with self.db.read() as conn:
            order = (a.c.created_at.desc(), a.c.id)
            rows, total = study_page(conn, a, study_id, order, limit=limit, offset=offset)
        return [_record(r) for r in rows], total

    def running_for_study(self, study_id: str) -> list[AnalysisRecord]:
        """The study's analyses whose job has not finished (as last refreshed)."""
        a = tw.analyses
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(a)
                .where(a.c.study_id == study_id, a.c.status.not_in(list(FINISHED)))
                .order_by(a.c.created_at, a.c.id)
            ).all()
        return [_record(r) for r in rows]

    def finished_for_study(self, study_id: str) -> list[AnalysisRecord]:
        """The study's finished analyses that produced something (for exports)."""
        a = tw.analyses
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(a)
                .where(a.c.study_id == study_id, a.c.status == "done")
                .order_by(a.c.created_at, a.c.id)
            ).all()
        return [_record(r) for r in rows]

    def refresh(
        self,
        record: AnalysisRecord,
        *,
        status: str,
        summary: dict[str, Any],
        image_status: Mapping[str, str],
    ) -> AnalysisRecord:
        """Store what the job says now. Moves only forward: a finished analysis is not
        touched again (two readers refreshing at once write the same thing once)."""
        a, si = tw.analyses, tw.study_images
        with self.db.begin() as conn:
            done = conn.execute(
                a.update()
                .where(a.c.id == record.id, a.c.status.notin_(FINISHED))
                .values(status=status, summary=summary, updated_at=now())
            ).rowcount
            if not done:
                return self.get(record.study_id, record.id)
            by_state: dict[str, list[str]] = {}
            for image_id, state in image_status.items():
                by_state.setdefault(state, []).append(image_id)
            for state, ids in by_state.items():
                conn.execute(
                    si.update()
                    .where(si.c.study_id == record.study_id, si.c.image_id.in_(ids))
                    .values(analysis_status=state)
                )
            done_before, done_now = _images_done(record.summary), _images_done(summary)
            if status not in FINISHED and done_now != done_before:
                append(
                    conn,
                    Actor(),
                    "analysis.progress",
                    "analysis",
                    record.id,
                    study_id=record.study_id,
                    after={"images_done": done_now, "images": len(summary.get("images", {}))},
                )
            if status in FINISHED:
                append(
                    conn,
                    Actor(),
                    f"analysis.{status}",
                    "analysis",
                    record.id,
                    study_id=record.study_id,
                    after={"job_id": record.job_id, "images": dict(image_status)},
                )
        return self.get(record.study_id, record.id)
