"""Accounts: users, passwords (argon2id), browser sessions with CSRF tokens, and
login throttling (slowed after a failure, then locked for a while)."""

from __future__ import annotations

import functools
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pixelmill.backends.metadata._time import now
from pixelmill.backends.metadata.events import Actor, EventLog
from pixelmill.backends.metadata.users import (
    SessionRecord,
    SiteRole,
    UserRecord,
    UserRepository,
    digest,
)
from pixelmill.errors import AuthError, InvalidInput, RateLimited
from pixelmill.settings import WorkspaceSettings

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 10
_MAX_LOCK_S = 3600
#: a submitted name's failed logins are forgotten this long after its last one
_FORGET = timedelta(days=1)


def check_username(username: str) -> str:
    if not _USERNAME.match(username):
        raise InvalidInput(
            "a username is 2-64 characters: lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return username


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= 1024:
        raise InvalidInput(f"a password is {MIN_PASSWORD} to 1024 characters long")
    return password


def new_password() -> str:
    return secrets.token_urlsafe(15)


@dataclass(frozen=True)
class LoginResult:
    user: UserRecord
    session: SessionRecord
    secret: str
    csrf: str


class LoginFailed(AuthError):
    """Wrong username or password; ``delay_s``: how long the gateway waits before saying
    so (each failure in a row waits longer)."""

    def __init__(self, detail: str, *, delay_s: float) -> None:
        super().__init__(detail)
        self.delay_s = delay_s


class Accounts:
    def __init__(self, users: UserRepository, events: EventLog, settings: WorkspaceSettings):
        self.users = users
        self.events = events
        self.settings = settings
        # argon2id with the library's (RFC 9106 low-memory) defaults
        self._hasher = PasswordHasher()

    @functools.cached_property
    def _dummy(self) -> str:
        """A hash to verify an unknown user's password against (as long as a real one
        takes), made at the first such login: a hash costs a fifth of a second, which
        every process would otherwise pay at start-up."""
        return self._hasher.hash(secrets.token_urlsafe(16))

    @property
    def session_ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.session_ttl_s)

    def hash(self, password: str) -> str:
        return self._hasher.hash(check_password(password))

    def create_user(
        self,
        actor: Actor,
        username: str,
        *,
        password: str | None = None,
        site_role: SiteRole = "member",
        display_name: str = "",
    ) -> tuple[UserRecord, str]:
        """A new user; returns it and its password (``password`` or a random one)."""
        password = password or new_password()
        user = self.users.create(
            check_username(username),
            site_role=site_role,
            display_name=display_name[:200],
            password_hash=self.hash(password),
        )
        self.events.record(
            actor,
            "user.create",
            "user",
            user.id,
            after={"username": username, "site_role": site_role},
            security=True,
        )
        return user, password

    def reset_password(self, actor: Actor, user_id: str, password: str | None = None) -> str:
        password = password or new_password()
        self.users.set_password(user_id, self.hash(password))
        self.events.record(actor, "user.password", "user", user_id, security=True)
        return password

    def set_disabled(self, actor: Actor, user_id: str, disabled: bool) -> UserRecord:
        user = self.users.set_disabled(user_id, disabled)
        self.events.record(
            actor, "user.disable" if disabled else "user.enable", "user", user_id, security=True
        )
        return user

    # -- login --------------------------------------------------------------------------
    def _verify(self, stored: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    def _lock_for(self, failures: int) -> datetime | None:
        over = failures - self.settings.login_max_failures
        if over < 0:
            return None
        return now() + timedelta(seconds=min(self.settings.login_lockout_s * 2**over, _MAX_LOCK_S))

    def login(self, username: str, password: str, *, ip: str | None = None) -> LoginResult:
        """A session for the user whose password this is. Unknown users cost the same
        time as known ones (a dummy hash is checked), and failures are counted and
        locked per submitted name whether a user has it or not, so usernames cannot be
        probed by the answers, their delays or the lockout."""
        name = username.strip().lower()[:64]
        failures, locked_until = self.users.login_throttle(name)
        user = self.users.find(name)  # usernames are lower case: "Alice " is alice
        actor = Actor(user.id if user else None, ip=ip)
        if locked_until is not None and locked_until > now():
            self._verify(None, password)
            wait = int((locked_until - now()).total_seconds()) + 1
            self.events.record(
                actor, "login.locked", "user", user.id if user else None, security=True
            )
            raise RateLimited(
                "too many failed logins: the account is locked for a while", retry_after=wait
            )
        ok = self._verify(self.users.password_hash(user.id) if user else None, password)
        if user is None or not ok or user.disabled_at is not None:
            failures += 1
            lock = self._lock_for(failures)
            self.users.name_failed(name, failures, lock)
            self.users.purge_login_failures(_FORGET)
            if user is not None:  # what admins see of the user (``locked``)
                self.users.login_failed(user.id, lock)
            self.events.record(
                actor,
                "login.failed",
                "user",
                user.id if user else None,
                after={"username": username[:64]},
                security=True,
            )
            raise LoginFailed("wrong username or password", delay_s=min(0.25 * failures, 2.0))
        self.users.name_succeeded(name)
        user = self.users.login_succeeded(user.id)
        session, secret, csrf = self.users.create_session(user.id, self.session_ttl)
        self.users.purge_sessions()  # ended sessions go (one indexed delete a login)
        self.events.record(actor, "login", "user", user.id, security=True)
        return LoginResult(user, session, secret, csrf)

    def logout(self, secret: str, actor: Actor) -> None:
        self.users.end_session(secret)
        self.events.record(actor, "logout", "user", actor.user_id, security=True)

    def session(self, secret: str) -> tuple[SessionRecord, UserRecord] | None:
        """The live session and its (enabled) user; extends the sliding expiry when
        more than a minute has passed since it was last extended."""
        found = self.users.session(secret)
        if found is None:
            return None
        user = self.users.get(found.user_id)
        if user.disabled_at is not None:
            return None
        if (now() - found.last_seen_at).total_seconds() > 60:
            self.users.touch_session(found.id, now() + self.session_ttl)
        return found, user

    @staticmethod
    def csrf_ok(session: SessionRecord, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(digest(token or ""), session.csrf_hash)

    # -- the first admin ----------------------------------------------------------------
    def ensure_first_admin(self) -> tuple[UserRecord, str] | None:
        """Create the first admin (or give the one a migration made a password); returns
        it and its one-time password, or ``None`` when an admin can already log in."""
        password = self.settings.first_admin_password or new_password()
        waiting = self.users.admin_without_password()
        if waiting is not None:
            self.reset_password(Actor(), waiting.id, password)
            return self.users.get(waiting.id), password
        if self.users.any_admin():
            return None
        return self.create_user(
            Actor(), "admin", password=password, site_role="admin", display_name="Administrator"
        )
