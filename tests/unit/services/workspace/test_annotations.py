"""The annotation routes' pure helpers: the version an If-Match names, and JSON merge
patches (RFC 7396)."""

from __future__ import annotations

import pytest

from pixelmill.errors import InvalidParameter, PreconditionRequired
from pixelmill.services.workspace.annotations import etag, expected_version, merge_patch


@pytest.mark.parametrize("header", ['"v12"', 'W/"v12"', "v12", ' "v12" '])
def test_if_match_names_a_version(header: str) -> None:
    assert expected_version(header) == 12
    assert expected_version(etag(12)) == 12


@pytest.mark.parametrize("header", [None, "", "  "])
def test_a_missing_if_match_is_428(header: str | None) -> None:
    with pytest.raises(PreconditionRequired):
        expected_version(header)


@pytest.mark.parametrize("header", ["*", '"12"', '"vx"', '"v1", "v2"', "v" + "9" * 20])
def test_an_if_match_that_names_no_version_is_refused(header: str) -> None:
    with pytest.raises(InvalidParameter):
        expected_version(header)


def test_merge_patch_follows_rfc_7396() -> None:
    target = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [1, 2]},
        "properties": {"name": "a", "classification": {"name": "Tumor", "color": [1, 2, 3]}},
    }
    patch = {
        "properties": {"name": None, "classification": {"color": [9, 9, 9]}, "isLocked": True},
        "geometry": {"type": "Point", "coordinates": [5, 6]},
    }
    assert merge_patch(target, patch) == {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [5, 6]},
        "properties": {"classification": {"name": "Tumor", "color": [9, 9, 9]}, "isLocked": True},
    }
    assert target["properties"]["name"] == "a"  # the target is not changed in place
    assert merge_patch(target, [1]) == [1]
