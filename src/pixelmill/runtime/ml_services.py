"""Composition of the ML services (registry, inference, trainer) into a Container.

Nothing here imports torch or onnxruntime: both load lazily when a model is trained or
first served.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pixelmill.backends.metadata.models import DatasetRepository, ModelRepository
from pixelmill.services.inference.service import InferenceService
from pixelmill.services.model_registry import ModelRegistry
from pixelmill.services.trainer.service import TrainerService

if TYPE_CHECKING:
    from pixelmill.runtime.container import Container


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
    )
    container.extras["models"] = registry
    container.extras["inference"] = inference
    container.extras["trainer"] = trainer
    container.extras["resolve_model"] = inference.resolver
    container.image_service.resolve_model = inference.resolver
