"""Fixtures of the ML integration tests: a tiny trained model (once per module) and a
registry container over SQLite or PostgreSQL."""

from __future__ import annotations

import pytest

from tests.ml_helpers import TinyModel, train_tiny


@pytest.fixture(scope="session")
def tiny_model() -> TinyModel:
    pytest.importorskip("torch")
    return train_tiny()
