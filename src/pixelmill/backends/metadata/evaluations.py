"""Evaluations (a model version's scores on a dataset) and promotion gates (an alias
that only moves to a version beating its holder on a dataset). See docs/ml.md."""

from __future__ import annotations

import builtins
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from pixelmill.backends.metadata import tables_ml as t
from pixelmill.backends.metadata._time import utc
from pixelmill.backends.metadata.database import Database
from pixelmill.errors import NotFound


def _row(row: Any) -> dict[str, Any]:
    return {k: utc(v) for k, v in row._mapping.items()}


def _json(record: Any) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(record).items()}


@dataclass(frozen=True)
class EvaluationRecord:
    id: str
    model: str
    version: int
    dataset_id: str
    dataset_sha256: str
    dataset_name: str
    #: which items were scored: ``all``, or the dataset's ``val`` / ``train`` split
    split: str
    scores: dict[str, Any]
    created_by: str | None
    job_id: str | None
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return _json(self)


@dataclass(frozen=True)
class GateRecord:
    model: str
    alias: str
    dataset_id: str
    metric: str
    updated_by: str | None
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return _json(self)


class EvaluationRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, **fields: Any) -> EvaluationRecord:
        fields.setdefault("id", uuid.uuid4().hex)
        fields.setdefault("created_at", datetime.now(UTC))
        with self.db.begin() as conn:
            conn.execute(t.model_evaluations.insert().values(**fields))
        return self.get(fields["id"])

    def get(self, evaluation_id: str) -> EvaluationRecord:
        with self.db.begin() as conn:
            row = conn.execute(
                sa.select(t.model_evaluations).where(t.model_evaluations.c.id == evaluation_id)
            ).first()
        if row is None:
            raise NotFound(f"no evaluation {evaluation_id!r}")
        return EvaluationRecord(**_row(row))

    def list(
        self, model: str, version: int | None = None, *, dataset_id: str | None = None
    ) -> list[EvaluationRecord]:
        """Newest first."""
        c = t.model_evaluations.c
        query = sa.select(t.model_evaluations).where(c.model == model)
        if version is not None:
            query = query.where(c.version == version)
        if dataset_id is not None:
            query = query.where(c.dataset_id == dataset_id)
        with self.db.begin() as conn:
            rows = conn.execute(query.order_by(c.created_at.desc(), c.id)).all()
        return [EvaluationRecord(**_row(r)) for r in rows]

    def latest(self, model: str, version: int, dataset_id: str) -> EvaluationRecord | None:
        found = self.list(model, version, dataset_id=dataset_id)
        return found[0] if found else None

    def delete_version(self, model: str, version: int) -> None:
        c = t.model_evaluations.c
        with self.db.begin() as conn:
            conn.execute(t.model_evaluations.delete().where(c.model == model, c.version == version))

    # -- gates --------------------------------------------------------------------------
    def gate(self, model: str, alias: str) -> GateRecord | None:
        c = t.model_gates.c
        with self.db.begin() as conn:
            row = conn.execute(
                sa.select(t.model_gates).where(c.model == model, c.alias == alias)
            ).first()
        return None if row is None else GateRecord(**_row(row))

    def gates(self, model: str) -> builtins.list[GateRecord]:
        c = t.model_gates.c
        with self.db.begin() as conn:
            rows = conn.execute(
                sa.select(t.model_gates).where(c.model == model).order_by(c.alias)
            ).all()
        return [GateRecord(**_row(r)) for r in rows]

    def set_gate(
        self, model: str, alias: str, *, dataset_id: str, metric: str, actor: str | None
    ) -> GateRecord:
        c = t.model_gates.c
        values = {
            "dataset_id": dataset_id,
            "metric": metric,
            "updated_by": actor,
            "updated_at": datetime.now(UTC),
        }
        with self.db.begin() as conn:
            where = (c.model == model, c.alias == alias)
            if conn.execute(sa.select(c.alias).where(*where)).first() is None:
                conn.execute(t.model_gates.insert().values(model=model, alias=alias, **values))
            else:
                conn.execute(t.model_gates.update().where(*where).values(**values))
        gate = self.gate(model, alias)
        assert gate is not None
        return gate

    def delete_gate(self, model: str, alias: str) -> None:
        c = t.model_gates.c
        with self.db.begin() as conn:
            done = conn.execute(t.model_gates.delete().where(c.model == model, c.alias == alias))
        if not done.rowcount:
            raise NotFound(f"model {model!r} has no gate on alias {alias!r}")
