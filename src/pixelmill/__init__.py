"""pixelmill: image processing and image ML as scalable microservices."""

__version__ = "0.1.0"

__all__ = ["__version__"]
