"""What the gateway needs from the composition root, as one typed Protocol.

``pixelmill.runtime.container.Container`` provides it; a test or another runtime may
provide anything else with the same members. Routes read it with :func:`deps`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from fastapi import Request

    from pixelmill.backends.metadata.annotations import AnnotationRepository
    from pixelmill.backends.metadata.events import EventLog
    from pixelmill.backends.metadata.images import ImageRepository
    from pixelmill.backends.metadata.keys import KeyRepository
    from pixelmill.backends.metadata.messages import MessageRepository
    from pixelmill.backends.metadata.patients import PatientRepository
    from pixelmill.backends.metadata.studies import StudyRepository
    from pixelmill.backends.metadata.study_images import StudyImageRepository
    from pixelmill.backends.metadata.users import UserRepository
    from pixelmill.backends.storage.base import Storage
    from pixelmill.services.deepzoom import DeepZoomTiles
    from pixelmill.services.evaluation import EvaluationService
    from pixelmill.services.images import ImageService
    from pixelmill.services.inference.service import InferenceService
    from pixelmill.services.jobs.service import JobService
    from pixelmill.services.model_registry import ModelRegistry
    from pixelmill.services.sources import RemoteImages
    from pixelmill.services.trainer.service import TrainerService
    from pixelmill.services.workspace.access import Access
    from pixelmill.services.workspace.accounts import Accounts
    from pixelmill.services.workspace.analyses import Analyses
    from pixelmill.services.workspace.annotations import AnnotationDesk
    from pixelmill.services.workspace.archive import StudyArchives
    from pixelmill.services.workspace.exports import Exports
    from pixelmill.services.workspace.imports import StudyImports
    from pixelmill.services.workspace.pseudonyms import ExternalIds
    from pixelmill.services.workspace.quotas import Quotas
    from pixelmill.settings import Settings


class GatewayDeps(Protocol):
    """The services and settings the gateway's routes use."""

    @property
    def settings(self) -> Settings: ...

    @property
    def keys(self) -> KeyRepository: ...

    @property
    def images(self) -> ImageRepository: ...

    @property
    def image_service(self) -> ImageService: ...

    @property
    def tiles(self) -> DeepZoomTiles: ...

    @property
    def storage(self) -> Storage: ...

    @property
    def jobs(self) -> JobService: ...

    @property
    def models(self) -> ModelRegistry: ...

    @property
    def inference(self) -> InferenceService: ...

    @property
    def trainer(self) -> TrainerService: ...

    @property
    def evaluation(self) -> EvaluationService: ...

    @property
    def users(self) -> UserRepository: ...

    @property
    def events(self) -> EventLog: ...

    @property
    def accounts(self) -> Accounts: ...

    @property
    def studies(self) -> StudyRepository: ...

    @property
    def study_images(self) -> StudyImageRepository: ...

    @property
    def access(self) -> Access: ...

    @property
    def messages(self) -> MessageRepository: ...

    # patients, study imports, analyses, exports
    @property
    def patients(self) -> PatientRepository: ...

    @property
    def external_ids(self) -> ExternalIds: ...

    @property
    def analyses(self) -> Analyses: ...

    @property
    def imports(self) -> StudyImports: ...

    @property
    def exports(self) -> Exports: ...

    @property
    def archives(self) -> StudyArchives: ...

    @property
    def annotations(self) -> AnnotationRepository: ...

    @property
    def annotation_desk(self) -> AnnotationDesk: ...

    @property
    def sources(self) -> RemoteImages | None:
        """Remote sources by URL (``None`` unless ``sources.enabled``)."""

    @property
    def quotas(self) -> Quotas: ...

    def readiness_checks(self) -> Mapping[str, Callable[[], None]]:
        """Name -> a check that raises when that dependency is unreachable."""

    def startup(self) -> None:
        """Called once when the app starts serving (e.g. start running jobs in-process)."""

    def shutdown(self) -> None:
        """Called once when the app stops serving."""


def deps(request: Request) -> GatewayDeps:
    """The gateway's dependencies, as :func:`~pixelmill.services.gateway.app.create_app`
    stored them on the app."""
    found: GatewayDeps = request.app.state.deps
    return found
