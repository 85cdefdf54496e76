"""The render path's image records (``services/record_cache.py``): an image just
uploaded is rendered without reading its row back from the database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pyvips
import sqlalchemy as sa

from pixelmill.imaging.render import RenderParams
from pixelmill.runtime.container import Container, build_container
from tests.conftest import make_settings


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    c = build_container(make_settings(tmp_path, cache={"url": "none://"}))
    yield c
    c.close()


def test_an_upload_is_rendered_without_reading_its_row_back(container: Container) -> None:
    # given an image just uploaded
    png = bytes(pyvips.Image.black(64, 48).write_to_buffer(".png"))
    record, created = container.image_service.ingest_bytes(png)
    assert created
    reads: list[str] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM images" in statement:
            reads.append(statement)

    sa.event.listen(container.db.engine, "before_cursor_execute", on_execute)
    try:
        # when its first render is asked for
        body = container.image_service.render(record.id, RenderParams(w=32, format="png")).body
    finally:
        sa.event.remove(container.db.engine, "before_cursor_execute", on_execute)
    # then it renders, and no statement read the images table for it
    assert pyvips.Image.new_from_buffer(body, "").width == 32
    assert reads == []
