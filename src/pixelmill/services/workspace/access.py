"""Access to studies and images, decided by :func:`~.permissions.can` and ownership.

- A study is seen by its members (and site admins). Anyone else gets ``404``, never
  ``403``, so ids cannot be probed. A member without the right gets ``403``.
- An image is seen by its owner, by members of a study that holds it, and by admins;
  only its owner (or an admin) deletes it or adds it to a study: a member cannot pass
  on someone else's image, so its owner's sharing ends with their membership. Job results belong to the job's owner.
- Permission denials and admins' reads of other people's data go to the event log: an
  admin's reads of one thing once per :data:`ADMIN_READ_LOG_S` (a slide viewed tile by
  tile is one event, not one per tile).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from functools import partial

from cachetools import TTLCache

from pixelmill.backends.metadata.events import Actor, EventLog
from pixelmill.backends.metadata.records import ImageRecord
from pixelmill.backends.metadata.studies import StudyRecord, StudyRepository
from pixelmill.backends.metadata.study_images import StudyImageRepository
from pixelmill.errors import Forbidden, NotFound
from pixelmill.services.workspace.permissions import Action, StudyRole, StudyStatus, can
from pixelmill.services.workspace.principal import Principal

#: an admin's repeated reads of the same thing are logged once per this many seconds
ADMIN_READ_LOG_S = 600


def actor_of(principal: Principal | None, ip: str | None = None) -> Actor:
    if principal is None:
        return Actor(ip=ip)
    return Actor(principal.user_id or None, principal.key_id, ip)


class OncePer:
    """Whether a key is seen for the first time in ``ttl`` seconds: repeated events
    (an admin's reads of one target, a refused job's tasks) are logged once per while."""

    def __init__(self, ttl: float, maxsize: int = 4096) -> None:
        self._seen: TTLCache[Hashable, bool] = TTLCache(
            maxsize=maxsize, ttl=ttl, timer=time.monotonic
        )
        self._lock = threading.Lock()

    def first(self, key: Hashable) -> bool:
        with self._lock:
            seen = self._seen.get(key)
            self._seen[key] = True
        return not seen


class Access:
    def __init__(
        self,
        *,
        studies: StudyRepository,
        study_images: StudyImageRepository,
        record: Callable[[str], ImageRecord],
        events: EventLog,
    ) -> None:
        """``record`` finds an image's record (``ImageService.record``: its in-process
        cache, so a render's access check costs no query)."""
        self.studies = studies
        self.study_images = study_images
        self.record = record
        self.events = events
        self._admin_reads = OncePer(ADMIN_READ_LOG_S)

    def admin_read(
        self,
        principal: Principal,
        target_type: str,
        target_id: str,
        study_id: str | None = None,
        *,
        what: str | None = None,
    ) -> None:
        """Log an admin's read of someone else's data (once per while per target and
        ``what``: the action, such as ``annotation.read`` in a study, kept in ``after``)."""
        if not principal.user_id:
            return
        if self._admin_reads.first((principal.user_id, target_type, target_id, what or "")):
            self.events.record(
                actor_of(principal),
                "admin.read",
                target_type,
                target_id,
                study_id=study_id,
                after={"read": what} if what else None,
                security=True,
            )

    def owner_read(
        self,
        principal: Principal | None,
        owner_id: str | None,
        target_type: str,
        target_id: str,
    ) -> None:
        """Log it as :meth:`admin_read` when a site admin reads ``owner_id``'s data (a
        job, a dataset, a model): nothing for their own or for unowned data."""
        if principal is None or not owner_id or principal.owns(owner_id):
            return
        if principal.is_admin:
            self.admin_read(principal, target_type, target_id)

    def study(
        self,
        principal: Principal,
        study_id: str,
        action: Action,
        *,
        author_id: str | None = None,
    ) -> tuple[StudyRecord, StudyRole]:
        """The study and the caller's role, when the caller may take ``action`` in it."""
        study, member_role = self.studies.role_of(study_id, principal.user_id)
        role: StudyRole | None = member_role  # type: ignore[assignment]
        if role is None:
            if not principal.is_admin:
                raise NotFound(f"no study {study_id!r}")
            role = "owner"
            if action.endswith(".read"):
                self.admin_read(principal, "study", study_id, study_id, what=action)
        status: StudyStatus = study.status  # type: ignore[assignment]
        is_author = author_id is not None and author_id == principal.user_id
        if not can(role, action, status, is_author):
            self.events.record(
                actor_of(principal),
                "denied." + action,
                "study",
                study_id,
                study_id=study_id,
                after={"role": role, "status": status},
                security=True,
            )
            if status != "active" and can(role, action, "active", is_author):
                raise Forbidden(f"study {study_id!r} is {status}")
            article = "an" if role[0] in "aeiou" else "a"
            raise Forbidden(f"{article} {role} may not do {action!r} in study {study_id!r}")
        return study, role

    def linkable(self, principal: Principal, image_id: str, study_id: str) -> ImageRecord:
        """The image, when the caller may add it to a study: only its owner (and site
        admins, audited; or with authentication off) shares an image. A member of a
        study holding someone else's image reads it there but does not pass it on:
        ``403`` (logged) when they can read it, ``404`` when they cannot."""
        record = self.image(principal, image_id)
        if principal.owns(record.owner_id) or principal.is_admin or principal.via == "local":
            return record
        self.events.record(
            actor_of(principal),
            "denied.image.link",
            "image",
            image_id,
            study_id=study_id,
            security=True,
        )
        raise Forbidden(f"only its owner may add image {image_id!r} to a study")

    def input_check(self, principal: Principal | None) -> Callable[[str], object] | None:
        """For a job's inputs: raises ``NotFound`` for an image the submitter may not
        read (``None``: any image, for admins and with authentication off)."""
        if principal is None or principal.is_admin or principal.via == "local":
            return None
        return partial(self.image, principal)

    def image(
        self, principal: Principal | None, image_id: str, *, write: bool = False
    ) -> ImageRecord:
        """The image, when the caller may read it (or, with ``write``, delete it)."""
        record = self.record(image_id)
        if principal is None:
            raise NotFound(f"no image {image_id!r}")
        if principal.owns(record.owner_id) or principal.via == "local":
            return record
        if principal.is_admin:
            self.admin_read(principal, "image", image_id)
            return record
        if not write:
            for _study, status, role in self.study_images.studies_granting(
                image_id, principal.user_id
            ):
                if can(role, "image.read", status, False):  # type: ignore[arg-type]
                    return record
        raise NotFound(f"no image {image_id!r}")
