"""Metadata DB: SQLAlchemy 2 over SQLite (embedded, and ``sqlite://`` in memory) or
PostgreSQL (distributed). One SQL implementation serves both, so transaction and
state-guard semantics never diverge between embedded and distributed mode. The job store
(:mod:`.jobs`) also has an in-memory implementation, held to the same contract
(``tests/contract/test_jobs_contract.py``). Schema changes are Alembic migrations."""
