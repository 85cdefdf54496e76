"""Group commit on PostgreSQL (``backends/metadata/pg_group.py``): statements of
concurrent callers share a transaction, yet each caller gets its own answer or its own
error, and only once what it wrote is committed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
import sqlalchemy as sa

from pixelmill.backends.metadata.pg_group import GroupCommit
from tests.jobs_helpers import run_concurrently

pytestmark = pytest.mark.server

INSERT = "INSERT INTO items (id, n) VALUES (%(id)s, %(n)s) ON CONFLICT DO NOTHING RETURNING id, n"
FAILING = "INSERT INTO items (id, n) VALUES (%(id)s, 1 / %(n)s) RETURNING id, n"


@pytest.fixture
def engine(postgres_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(postgres_url, pool_size=20)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE items (id text PRIMARY KEY, n int NOT NULL)"))
    yield engine
    engine.dispose()


def committed(engine: sa.Engine, item: str) -> bool:
    with engine.connect() as conn:
        found = conn.execute(sa.text("SELECT 1 FROM items WHERE id = :id"), {"id": item})
        return found.first() is not None


def test_concurrent_callers_each_get_their_own_row_or_error_once_committed(
    engine: sa.Engine,
) -> None:
    # given one group commit and 40 callers at once: one runs a statement that fails
    # (division by zero), two insert the same id (the second finds it taken)
    group = GroupCommit(engine)
    barrier = threading.Barrier(40)
    answers: dict[int, Any] = {}
    seen_committed: dict[int, bool] = {}

    def caller(n: int) -> None:
        barrier.wait(10)
        item = "dup" if n in (10, 11) else f"item-{n}"
        try:
            row = group.run(FAILING if n == 7 else INSERT, {"id": item, "n": 0 if n == 7 else n})
        except Exception as exc:
            answers[n] = exc
            return
        answers[n] = row
        if row is not None:  # once run returns, another connection sees the row
            seen_committed[n] = committed(engine, item)

    errors = run_concurrently(*[partial(caller, n) for n in range(40)])
    # then only the failing caller got an error, each other caller its own row (or none
    # for the id taken by the other), and every row returned was already committed
    assert errors == []
    assert "division by zero" in str(answers.pop(7))
    dup = [answers.pop(10), answers.pop(11)]
    assert [row is None for row in dup].count(True) == 1
    assert all(answers[n] == {"id": f"item-{n}", "n": n} for n in answers)
    assert seen_committed and all(seen_committed.values())
    assert not committed(engine, "item-7")
