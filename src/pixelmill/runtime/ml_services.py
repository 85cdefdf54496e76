"""Composition of the ML services (registry, inference, trainer) into a Container.

Nothing here imports torch or onnxruntime: both load lazily when a model is trained or
first served.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pixelmill.backends.metadata.models import DatasetRepository, ModelRepository
from pixelmill.ml.dataset_limits import DatasetLimits
from pixelmill.services.inference.service import InferenceService
from pixelmill.services.registry import ModelRegistry
from pixelmill.services.trainer.service import TrainerService

if TYPE_CHECKING:
    from pixelmill.runtime.container import Container
    from pixelmill.settings import Settings


def dataset_limits(settings: Settings) -> DatasetLimits:
    """A dataset archive gets the limits of ``POST /v1/images`` per image (bytes and
    pixels) and ``ml.max_dataset_bytes`` for all its members uncompressed."""
    return DatasetLimits(
        max_member_bytes=settings.server.max_upload_bytes,
        max_total_bytes=settings.ml.max_dataset_bytes,
        max_image_pixels=settings.render.max_pixels,
    )


def install_ml(container: Container) -> None:
    """Add ``models`` (registry), ``inference``, ``trainer`` and ``resolve_model`` to
    ``container.extras`` and give the image service its model resolver."""
    settings = container.settings.ml
    registry = ModelRegistry(storage=container.storage, models=ModelRepository(container.db))
    inference = InferenceService(
        registry=registry, images=container.image_service, settings=settings
    )
    trainer = TrainerService(
        storage=container.storage,
        datasets=DatasetRepository(container.db),
        registry=registry,
        settings=settings,
        limits=dataset_limits(container.settings),
    )
    container.extras["models"] = registry
    container.extras["inference"] = inference
    container.extras["trainer"] = trainer
    container.extras["resolve_model"] = inference.resolver
    container.image_service.resolve_model = inference.resolver
