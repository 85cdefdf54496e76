"""The inference service: ONNX Runtime serving of registry models (no torch)."""

from pixelmill.services.inference.service import InferenceService, LoadedModel

__all__ = ["InferenceService", "LoadedModel"]
