"""The trainer service: datasets, training runs (as ``train`` jobs or embedded), and
registration of the trained, exported model."""

from pixelmill.services.trainer.service import TrainerService

__all__ = ["TrainerService"]
