"""ASGI entry for server worker processes: settings come from the environment that the
CLI (the composition root) prepared, so every worker builds the same container."""

from __future__ import annotations

from fastapi import FastAPI

from pixelmill.runtime.container import build_container
from pixelmill.services.gateway.app import create_app
from pixelmill.settings import Settings


def app_factory() -> FastAPI:
    settings = Settings()
    return create_app(build_container(settings, migrate=False))
