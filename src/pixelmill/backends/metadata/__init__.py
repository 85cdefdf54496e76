"""Metadata DB: SQLAlchemy 2 over SQLite (embedded, and ``sqlite://`` in memory) or
PostgreSQL (distributed). One SQL implementation serves both, so transaction and
state-guard semantics never diverge between embedded and distributed mode; the
in-memory variant is ``sqlite://``. Schema changes are Alembic migrations."""
