"""Change notifications for job events, so event streams wake on news instead of each
one polling the database.

* PostgreSQL (distributed mode): a trigger (migration 0006) sends
  ``NOTIFY pixelmill_job_events`` with the job id for every new job event. PostgreSQL
  delivers it at commit, from whichever process wrote the event (a gateway, a worker).
  One listener connection per gateway process, opened at the first wait, hands the
  notifications to the waiting streams.
* Any other database (SQLite: embedded mode): streams poll every ``jobs.events_poll_s``.

A subscriber re-reads the database after waking; a notification only says "look now".
Notifications sent while the listener is reconnecting are lost, so every waiter also
wakes after its timeout and when the listener (re)connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Protocol

log = logging.getLogger(__name__)

CHANNEL = "pixelmill_job_events"


class Subscription(Protocol):
    """News about one job, from the moment of subscribing: subscribe, then read the
    database, then wait, so nothing committed in between is missed."""

    async def wait(self, timeout: float) -> bool:
        """Return at once if news came since the last wait, else when it comes (True)
        or after ``timeout`` s (False)."""
        ...

    def close(self) -> None: ...


class JobChanges(Protocol):
    @property
    def pushed(self) -> bool:
        """True when waits end on news, not only on their timeout."""
        ...

    def subscribe(self, job_id: str) -> Subscription: ...

    def close(self) -> None: ...


class _Sleep:
    async def wait(self, timeout: float) -> bool:
        await asyncio.sleep(timeout)
        return False

    def close(self) -> None:
        pass


class PollingChanges:
    """No notifications: every wait lasts its timeout (the poll interval)."""

    pushed = False

    def subscribe(self, job_id: str) -> Subscription:
        return _Sleep()

    def close(self) -> None:
        pass


class _Waiter:
    def __init__(self, owner: PgJobChanges, job_id: str) -> None:
        self.owner, self.job_id = owner, job_id
        self.loop = asyncio.get_running_loop()
        self.event = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
        except TimeoutError:
            return False
        self.event.clear()
        return True

    def close(self) -> None:
        self.owner._unsubscribe(self)

    def wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # its loop is closed: the stream is gone
            self.loop.call_soon_threadsafe(self.event.set)


class PgJobChanges:
    """``LISTEN pixelmill_job_events`` on one connection of its own, in a thread started
    by the first subscription (processes that never stream events never connect)."""

    def __init__(self, url: str, *, reconnect_s: float = 1.0) -> None:
        self._url = _libpq_url(url)
        self._reconnect_s = reconnect_s
        self._waiters: dict[str, set[_Waiter]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.listening = threading.Event()

    @property
    def pushed(self) -> bool:
        return self.listening.is_set()

    def subscribe(self, job_id: str) -> Subscription:
        """Must be called on the event loop the waits will run on."""
        self._start()
        waiter = _Waiter(self, job_id)
        with self._lock:
            self._waiters.setdefault(job_id, set()).add(waiter)
        return waiter

    def _unsubscribe(self, waiter: _Waiter) -> None:
        with self._lock:
            waiting = self._waiters.get(waiter.job_id)
            if waiting is not None:
                waiting.discard(waiter)
                if not waiting:
                    del self._waiters[waiter.job_id]

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)

    # -- the listener thread ------------------------------------------------------------
    def _start(self) -> None:
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="pixelmill-job-changes", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    self._wake(None)  # anything sent while we were away: look now
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            self._wake(note.payload)
            except psycopg.Error as exc:
                if not self._stop.is_set():
                    log.warning("job event listener lost its connection: %s", exc)
            self.listening.clear()
            self._stop.wait(self._reconnect_s)

    def _wake(self, job_id: str | None) -> None:
        with self._lock:
            if job_id is None:
                waiters = [w for waiting in self._waiters.values() for w in waiting]
            else:
                waiters = list(self._waiters.get(job_id, ()))
        for waiter in waiters:
            waiter.wake()


def _libpq_url(url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://...``) as a libpq connection string."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def make_job_changes(database_url: str, *, notify: bool = True) -> JobChanges:
    """Notifications on PostgreSQL (unless ``notify`` is off), polling elsewhere."""
    if notify and database_url.startswith("postgresql"):
        return PgJobChanges(database_url)
    return PollingChanges()
