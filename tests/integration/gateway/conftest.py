"""The people and study of the workspace's gateway tests (patients, analyses, imports,
exports): Olga owns the study, Ana is an analyst in it, Vic a viewer, Nobody no member."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.integration.gateway.workspace_helpers import study, user


@pytest.fixture
def people(container: Any) -> dict[str, dict[str, str]]:
    """Authorization headers by username."""
    return {name: user(container, name) for name in ("olga", "ana", "vic", "nobody")}


@pytest.fixture
def sid(client: TestClient, container: Any, people: dict[str, dict[str, str]]) -> str:
    """The id of Olga's study."""
    return study(client, people["olga"], {"ana": "analyst", "vic": "viewer"}, container=container)
