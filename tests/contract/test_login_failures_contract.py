"""Failed logins counted per submitted name (known or not), on every database."""

from __future__ import annotations

from datetime import timedelta

from pixelmill.backends.metadata._time import now
from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.users import UserRepository


def test_failures_by_name_are_stored_cleared_and_forgotten(db: Database) -> None:
    users = UserRepository(db)
    assert users.login_throttle("nobody") == (0, None)
    lock = now() + timedelta(seconds=60)
    users.name_failed("nobody", 1, None)
    users.name_failed("nobody", 5, lock)
    failures, until = users.login_throttle("nobody")
    assert failures == 5 and until is not None and abs((until - lock).total_seconds()) < 1
    users.name_succeeded("nobody")
    assert users.login_throttle("nobody") == (0, None)
    # a name idle past the window goes, unless it is still locked
    users.name_failed("idle", 2, None)
    users.name_failed("held", 9, lock)
    assert users.purge_login_failures(timedelta(seconds=-5)) == 1
    assert users.login_throttle("idle") == (0, None)
    assert users.login_throttle("held")[0] == 9


def test_a_new_password_ends_the_lock_of_the_users_name(db: Database) -> None:
    users = UserRepository(db)
    user = users.create("carol", password_hash="x")
    users.name_failed("carol", 6, now() + timedelta(seconds=60))
    users.name_failed("someone", 6, now() + timedelta(seconds=60))
    users.set_password(user.id, "y")
    assert users.login_throttle("carol") == (0, None)
    assert users.login_throttle("someone")[0] == 6
