"""A page of one study's rows of a table, with the total: what the study listings share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row


def study_page(
    conn: Connection,
    table: sa.Table,
    study_id: str,
    order_by: Sequence[sa.ColumnElement[Any]],
    *,
    limit: int,
    offset: int,
) -> tuple[Sequence[Row[Any]], int]:
    """``table``'s rows of ``study_id`` in ``order_by`` order, ``limit`` from ``offset``,
    and how many rows the study has in all."""
    of_study = table.c.study_id == study_id
    total = conn.execute(sa.select(sa.func.count()).select_from(table).where(of_study))
    rows = conn.execute(
        sa.select(table).where(of_study).order_by(*order_by).limit(limit).offset(offset)
    ).all()
    return rows, int(total.scalar_one())


def contains_text(column: sa.ColumnElement[Any], q: str) -> sa.ColumnElement[bool]:
    """``column`` holds ``q``, ignoring case: a listing's ``q`` search. ``q`` is text, not
    a pattern: ``%``, ``_`` and the escape character match only themselves."""
    return sa.func.lower(column).contains(q.lower(), autoescape=True)
