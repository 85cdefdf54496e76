"""The difference between two versions of an annotation, as its history shows it."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pixelmill.imaging.annotations import Change, diff, parse_geojson, to_feature

V1 = {
    "type": "Feature",
    "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [9, 0], [9, 9], [0, 0]]]},
    "properties": {
        "objectType": "annotation",
        "name": "first draft",
        "classification": {"name": "Tumor", "color": [200, 0, 0]},
        "isLocked": False,
    },
}


def test_equal_versions_have_no_changes() -> None:
    assert diff(V1, copy.deepcopy(V1)) == []


def test_reclassification_rename_and_unlock_are_reported_per_member() -> None:
    v2 = copy.deepcopy(V1)
    v2["properties"]["classification"] = {"name": "Stroma", "color": [200, 0, 0]}
    v2["properties"]["name"] = "reviewed"
    del v2["properties"]["isLocked"]
    v2["properties"]["measurements"] = {"area": 40.5}
    assert diff(V1, v2) == [
        {
            "path": "/properties/classification/name",
            "op": "changed",
            "old": "Tumor",
            "new": "Stroma",
        },
        {"path": "/properties/isLocked", "op": "removed", "old": False, "new": None},
        {"path": "/properties/measurements", "op": "added", "old": None, "new": {"area": 40.5}},
        {"path": "/properties/name", "op": "changed", "old": "first draft", "new": "reviewed"},
    ]


def test_a_moved_vertex_is_one_geometry_change_with_both_versions() -> None:
    v2 = copy.deepcopy(V1)
    v2["geometry"]["coordinates"][0][1] = [10, 0]
    (change,) = diff(V1, v2)
    assert change["path"] == "/geometry" and change["op"] == "changed"
    assert change["old"] == V1["geometry"] and change["new"] == v2["geometry"]


def test_a_colour_or_a_flag_type_change_counts() -> None:
    v2 = copy.deepcopy(V1)
    v2["properties"]["classification"]["color"] = [200, 0, 1]
    v2["properties"]["isLocked"] = 0
    paths = [c["path"] for c in diff(V1, v2)]
    assert paths == ["/properties/classification/color", "/properties/isLocked"]


def test_diff_of_exported_annotations_ignores_nothing_but_what_changed() -> None:
    (a,) = parse_geojson(V1)
    (b,) = parse_geojson({**V1, "properties": {**V1["properties"], "isLocked": True}})
    old, new = to_feature(a), to_feature(b)
    new["id"] = old["id"]
    assert diff(old, new) == [
        {"path": "/properties/isLocked", "op": "added", "old": None, "new": True}
    ]


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=3))
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from("abc"), inner, max_size=3)
    ),
    max_leaves=8,
)
json_object = st.dictionaries(
    st.sampled_from(["geometry", "properties", "id", "Std.Dev.", "a/b~c"]), json_value
)


def apply(doc: dict[str, Any], changes: list[Change]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for change in changes:
        keys = [k.replace("~1", "/").replace("~0", "~") for k in change["path"].split("/")[1:]]
        *parents, leaf = keys
        node = out
        for key in parents:
            node = node.setdefault(key, {})
        if change["op"] == "removed":
            del node[leaf]
        else:
            node[leaf] = change["new"]
    return out


@settings(max_examples=200, deadline=None)
@given(old=json_object, new=json_object)
def test_applying_the_changes_to_the_old_version_gives_the_new_one(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    changes = diff(old, new)
    assert apply(old, changes) == new
    if not changes:
        assert old == new


def test_measurement_names_with_dots_and_slashes_have_unambiguous_paths() -> None:
    old = {"properties": {"measurements": {"Eosin: Cell: Std.Dev.": 0.1, "H/E ratio": 2}}}
    new = {"properties": {"measurements": {"Eosin: Cell: Std.Dev.": 0.2, "H/E ratio": 3}}}
    assert [c["path"] for c in diff(old, new)] == [
        "/properties/measurements/Eosin: Cell: Std.Dev.",
        "/properties/measurements/H~1E ratio",
    ]
