"""The metadata DB every contract suite runs over: SQLite in memory, a SQLite file and
PostgreSQL (a real server), each migrated with Alembic."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pixelmill.backends.metadata.database import Database

DATABASES = ["sqlite-memory", "sqlite-file", pytest.param("postgresql", marks=pytest.mark.server)]


@pytest.fixture(params=DATABASES)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite-memory":
        url = "sqlite://"
    elif request.param == "sqlite-file":
        url = f"sqlite:///{tmp_path / 'meta' / 'pixelmill.db'}"
    else:
        # one database for the module, emptied per test
        url = request.getfixturevalue("postgres_module_url")
    database = Database(url)
    database.upgrade()
    if database.dialect == "postgresql":
        empty_every_table(database)
    yield database
    database.dispose()


def empty_every_table(database: Database) -> None:
    """Every migrated table emptied (the migrations seed no rows; Alembic's own kept)."""
    names = set(sa.inspect(database.engine).get_table_names()) - {"alembic_version"}
    quoted = ", ".join(f'"{name}"' for name in sorted(names))
    with database.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {quoted} CASCADE"))
