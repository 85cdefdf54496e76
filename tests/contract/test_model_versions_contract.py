"""The model repository over every metadata DB: a version number no column can hold is a
version that does not exist (404), never the database's own error."""

from __future__ import annotations

import uuid

import pytest

from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.models import ModelRepository
from pixelmill.errors import NotFound
from tests.ml_helpers import add_model_version


@pytest.mark.parametrize("number", [2**31, 2**63, 10**23, 0, -1])
def test_a_version_past_the_column_is_not_found(db: Database, number: int) -> None:
    models = ModelRepository(db)
    name = f"m-{uuid.uuid4().hex[:8]}"
    add_model_version(models, name)
    with pytest.raises(NotFound, match=f"has no version {number}"):
        models.version(name, number)
    with pytest.raises(NotFound):
        models.move_alias(name, "production", number, action="promote", actor="t")
    with pytest.raises(NotFound):
        models.delete_version(name, number, actor="t")
    assert models.version(name, 1).version == 1
    with pytest.raises(NotFound, match="no model"):
        models.version("ghost", number)
