"""Engine, sessions and migrations for the metadata DB."""

from __future__ import annotations

import functools
import logging
import os
import select
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.pool import StaticPool

from pixelmill.errors import BackendUnavailable
from pixelmill.observability import metrics, tracing

log = logging.getLogger(__name__)
_MIGRATIONS = Path(__file__).with_name("migrations")
_IN_MEMORY = ("sqlite://", "sqlite:///:memory:")


def _alembic_config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


@functools.cache
def _head() -> str | None:
    """The newest revision of the migrations shipped with this code."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _private_file(path: Path) -> None:
    """Create the SQLite file readable by its owner only (it holds key hashes and patient
    image metadata); SQLite gives its -wal and -shm files the database file's mode."""
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)  # a file an older version created 0644


def _hung_up(dbapi_conn: Any) -> bool:
    """True when the server already closed this idle connection (a restart, an idle
    timeout, ``pg_terminate_backend``): its socket is readable — the goodbye message and
    EOF are waiting — although no query is in flight. One ``poll`` syscall, no round trip."""
    pgconn = getattr(dbapi_conn, "pgconn", None)
    if pgconn is None:  # not psycopg: nothing to look at
        return False
    try:
        fd = pgconn.socket
    except Exception:  # psycopg raises once the connection is closed
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def _refuse_hung_up(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    # the pool discards a connection refused here and checks out another (or a new one)
    if _hung_up(dbapi_conn):
        raise DisconnectionError("the server closed this pooled connection")


def make_engine(
    url: str,
    *,
    echo: bool = False,
    connect_args: dict[str, Any] | None = None,
    pool_size: int = 20,
    pool: str = "metadata",
) -> Engine:
    """An engine tuned per dialect: WAL + busy timeout for SQLite; for servers, pooled
    connections that the server hung up on are replaced at checkout.

    No ``pool_pre_ping``: its ``SELECT 1`` round trip on every checkout cost about as
    much as the statement it guarded. A restart of PostgreSQL closes every connection's
    socket, which :func:`_hung_up` sees without a round trip; a connection that dies
    unseen fails its statement instead, SQLAlchemy then invalidates the whole pool, and
    the caller's retry (a worker's task retry; the job repository retries its statements
    once) gets a fresh one.

    ``pool`` names the engine in the pool metrics (and its statements get spans when
    tracing is on).
    """
    if url.startswith("sqlite"):
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 10}}
        if url in _IN_MEMORY:
            kwargs["poolclass"] = StaticPool
        else:
            path = Path(url.split("///", 1)[1])
            path.parent.mkdir(parents=True, exist_ok=True)
            _private_file(path)
        engine = sa.create_engine(url, echo=echo, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return _observed(engine, pool)
    engine = sa.create_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=20,
        pool_recycle=1800,
        connect_args=connect_args or {},
    )
    event.listen(engine, "checkout", _refuse_hung_up)
    return _observed(engine, pool)


def _observed(engine: Engine, pool: str) -> Engine:
    """Pool usage as metrics; a span per statement when tracing is on."""
    in_use = metrics.DB_POOL_IN_USE.labels(pool)
    event.listen(engine, "checkout", lambda *_: in_use.inc())
    event.listen(engine, "checkin", lambda *_: in_use.dec())
    size = getattr(engine.pool, "size", None)
    if callable(size):
        metrics.DB_POOL_SIZE.labels(pool).set(size())
    tracing.instrument_engine(engine, engine.dialect.name)
    return engine


@contextmanager
def unavailable_as_503() -> Iterator[None]:
    """Driver errors that mean the server is gone (cannot connect, connection lost) as
    :class:`BackendUnavailable`; anything else (a constraint, bad SQL) passes through."""
    try:
        yield
    except OperationalError as exc:
        raise BackendUnavailable(f"metadata DB unavailable: {exc.orig}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise BackendUnavailable(f"metadata DB connection lost: {exc.orig}") from exc
        raise


class Database:
    """The metadata DB: ``begin()`` yields a connection inside one transaction."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 20) -> None:
        self.url = url
        self.pool_size = pool_size
        self.engine = make_engine(url, echo=echo, pool_size=pool_size)
        # an in-memory SQLite DB is ONE connection (StaticPool); transactions from
        # several threads on it would interleave, so they take turns instead
        self._serial = threading.RLock() if url in _IN_MEMORY else None

    @contextmanager
    def _turn(self) -> Iterator[None]:
        if self._serial is None:
            yield
            return
        with self._serial:
            yield

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with unavailable_as_503(), self._turn(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection without a transaction, for reads: each statement is one round
        trip (no ``BEGIN``/``COMMIT`` around it). Use :meth:`begin` to read what you
        are about to write."""
        with unavailable_as_503(), self._turn(), self.engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    def upgrade(self, revision: str = "head") -> None:
        """Apply Alembic migrations up to ``revision`` (idempotent). A database at the
        newest revision already is left alone without loading Alembic's environment, as
        every process start finds it."""
        from alembic import command

        if revision == "head" and self.current_revision() == _head():
            return
        cfg = _alembic_config()
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self._turn(), self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self._turn(), self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def ping(self) -> None:
        try:
            with self._turn(), self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except (OperationalError, DBAPIError) as exc:
            raise BackendUnavailable(f"metadata DB unreachable: {exc.orig}") from exc

    def dispose(self) -> None:
        self.engine.dispose()
