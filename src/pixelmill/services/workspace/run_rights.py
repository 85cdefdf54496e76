"""Whether a job's owner may still have it run: the worker asks as each task starts.

A job is accepted while its owner may read its inputs (``Access.input_check``), but it
may wait in its queue for a while, and rights change meanwhile: an account is disabled,
a study membership removed, an image taken out of the study that shared it. A task
then runs only if its owner is still an active user who may read every image it reads,
by the same rule as a request (:meth:`Access.image`); otherwise it fails with the reason
(``403``), writes nothing, and the refusal is logged once per job (``denied.job.run``).

One check per task: the owner's account (remembered for ``security.key_cache_s``, as a
gateway remembers a key, and dropped at any account change made in this process), and
each image's record from the image service's cache, plus one membership query for an
image the owner does not own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NoReturn

from pixelmill.backends.metadata.events import Actor
from pixelmill.backends.metadata.users import UserRecord, UserRepository
from pixelmill.errors import Forbidden, NotFound
from pixelmill.services.remembered import Remembered
from pixelmill.services.workspace.access import Access, OncePer
from pixelmill.services.workspace.principal import Principal, session_scope

#: a job refused for many tasks is logged once per this many seconds
REFUSAL_LOG_S = 600
#: owners remembered at most (a bound on memory, not a tuning knob)
MAX_OWNERS = 4096


class RunRights:
    def __init__(self, *, users: UserRepository, access: Access, ttl: float = 0.0) -> None:
        """``ttl``: how long an owner's account is remembered (``security.key_cache_s``,
        as a gateway remembers a checked key): a change made in this process is seen at
        once, one made elsewhere within ``ttl``; no query per task meanwhile."""
        self.users = users
        self.access = access
        self._logged = OncePer(REFUSAL_LOG_S)
        self._owners: Remembered[str, UserRecord] = Remembered(
            ttl, lambda: users.revision, MAX_OWNERS
        )

    def check(self, owner_id: str, job_id: str, image_ids: Iterable[str]) -> None:
        """Raise ``Forbidden`` when ``owner_id`` may no longer run job ``job_id``'s task
        reading ``image_ids``: the account is gone or disabled, or an image is no longer
        theirs to read. An image that no longer exists is ``NotFound``, as when a task
        opens it. Blocking."""
        try:
            user = self._owners.get(owner_id, lambda: self.users.get(owner_id))
        except NotFound:
            self._refuse(owner_id, job_id, "the job's owner no longer has an account")
        if user.disabled_at is not None:
            self._refuse(owner_id, job_id, f"the job's owner {user.username!r} is disabled")
        if user.is_admin:  # a site admin reads every image
            return
        owner = _principal(user)
        for image_id in dict.fromkeys(image_ids):
            self.access.record(image_id)  # NotFound: the image is gone
            try:
                self.access.image(owner, image_id)
            except NotFound:
                self._refuse(
                    owner_id,
                    job_id,
                    f"the job's owner {user.username!r} may no longer read image {image_id!r}",
                    image_id=image_id,
                )

    def _refuse(self, owner_id: str, job_id: str, reason: str, **after: str) -> NoReturn:
        if self._logged.first(job_id):
            self.access.events.record(
                Actor(owner_id),
                "denied.job.run",
                "job",
                job_id,
                after={"reason": reason, **after},
                security=True,
            )
        raise Forbidden(f"not run: {reason}")


def _principal(user: UserRecord) -> Principal:
    """The owner as a request of theirs would be: their site role's full scope."""
    return Principal(
        user_id=user.id,
        username=user.username,
        site_role=user.site_role,
        scope=session_scope(user.site_role),
        via="session",
    )
