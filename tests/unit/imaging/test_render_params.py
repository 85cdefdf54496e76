"""Render query parsing: every accepted query yields valid steps; every bad one a 422."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixelmill.errors import InvalidParameter
from pixelmill.imaging import ops
from pixelmill.imaging.formats import ImageFormat
from pixelmill.imaging.render import cache_key, parse_render, to_steps

MAX_SIDE = 8192


@pytest.mark.parametrize(
    "query",
    [
        {"w": "0"},
        {"w": "1000000"},
        {"h": "-5"},
        {"w": "abc"},
        {"q": "101"},
        {"q": "0"},
        {"blur": "NaN"},
        {"blur": "inf"},
        {"rotate": "nan"},
        {"format": "bmp"},
        {"fit": "squash"},
        {"gravity": "up"},
        {"fp": "0.5"},
        {"fp": "1.5,0.5"},
        {"crop": "1,2,3"},
        {"crop": "0,0,0,10"},
        {"bg": "not-a-colour"},
        {"zoom": "0"},
        {"dpr": "5"},
        {"dpr": "0.5"},
        {"min-w": "0"},
        {"crop": "1.5,0,10,10"},
        {"crop": "10"},
        {"offset": "1"},
        {"pad": "1,2,3"},
        {"pad": "-1"},
        {"pad": "3000"},
        {"pad": "1500", "dpr": "2"},
        {"trim": "300"},
        {"frame": "1", "page": "1"},
        {"frame": "-1"},
        {"max_bytes": "10"},
        {"fit": "fill-up"},
        {"preset": "nope"},
        {"unknown": "1"},
        {"wm": "abc", "wm_text": "x"},
        {"wm_opacity": "2"},
        {"depth": "12"},
        {"icc": "cmyk"},
        {"enlarge": "maybe"},
    ],
)
def test_bad_parameters_are_422_with_a_reason(query: dict[str, str]) -> None:
    with pytest.raises(InvalidParameter) as err:
        parse_render(query, max_side=MAX_SIDE)
    assert err.value.status == 422
    assert err.value.detail


def test_size_above_the_configured_limit_names_the_limit() -> None:
    with pytest.raises(InvalidParameter) as err:
        parse_render({"w": "9000"}, max_side=MAX_SIDE)
    assert "8192" in err.value.detail


def test_steps_come_in_canonical_order() -> None:
    params = parse_render(
        {"sharpen": "1", "w": "100", "crop": "0,0,50,50", "grayscale": "1", "flip": "1"},
        max_side=MAX_SIDE,
    )
    assert [s.op.name for s in to_steps(params)] == [
        "crop",
        "resize",
        "flip",
        "grayscale",
        "sharpen",
    ]


def test_signature_and_cache_buster_are_not_render_parameters() -> None:
    params = parse_render({"w": "10", "sig": "abc", "v": "3"}, max_side=MAX_SIDE)
    assert params.w == 10


side = st.integers(min_value=1, max_value=MAX_SIDE).map(str)
query_strategy = st.fixed_dictionaries(
    {},
    optional={
        "w": side,
        "h": side,
        "fit": st.sampled_from(["cover", "contain", "fill", "inside", "outside"]),
        "gravity": st.sampled_from(["centre", "north", "southeast", "attention", "entropy"]),
        "fp": st.tuples(st.floats(0, 1), st.floats(0, 1)).map(lambda t: f"{t[0]},{t[1]}"),
        "rotate": st.floats(-360, 360).map(str),
        "blur": st.floats(0.3, 500).map(str),
        "sharpen": st.floats(0.3, 10).map(str),
        "q": st.integers(1, 100).map(str),
        "format": st.sampled_from(["jpeg", "jpg", "png", "webp", "avif", "tiff", "auto"]),
        "flip": st.sampled_from(["1", "0", "true", "false"]),
        "bg": st.sampled_from(["fff", "#00ff00", "ff000080", "white"]),
        "brightness": st.floats(0, 10).map(str),
        "gamma": st.floats(0.1, 10).map(str),
    },
)


@settings(max_examples=300, deadline=None)
@given(query_strategy)
def test_any_in_range_query_parses_into_valid_steps(query: dict[str, str]) -> None:
    params = parse_render(query, max_side=MAX_SIDE)
    steps = to_steps(params)
    names = [s.op.name for s in steps]
    assert ("resize" in names) == ("w" in query or "h" in query)
    # every step is a valid registry step: its JSON form validates again to the same step
    for step in steps:
        again = ops.parse_step(step.to_json())
        assert again.params == step.params


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["w", "h", "q", "blur", "rotate", "gamma", "wm_opacity", "fp", "crop"]),
        st.one_of(
            st.text(max_size=12),
            st.floats(allow_nan=True, allow_infinity=True).map(str),
            st.integers().map(str),
        ),
        min_size=1,
    )
)
def test_arbitrary_values_either_parse_in_range_or_raise_422(query: dict[str, str]) -> None:
    try:
        params = parse_render(query, max_side=MAX_SIDE)
    except InvalidParameter as exc:
        assert exc.status == 422
        return
    for name in ("w", "h"):
        value = getattr(params, name)
        assert value is None or 1 <= value <= MAX_SIDE
    assert params.q is None or 1 <= params.q <= 100
    for name in ("blur", "rotate", "gamma", "wm_opacity"):
        value = getattr(params, name)
        assert value is None or math.isfinite(value)


@pytest.mark.parametrize(
    "extra",
    [{"enlarge": "1"}, {"icc": "keep"}, {"depth": "8"}, {"bg": "ff0000"}],
)
def test_each_output_choice_has_its_own_cache_entry(extra: dict[str, str]) -> None:
    plain = parse_render({"w": "100"}, max_side=MAX_SIDE)
    other = parse_render({"w": "100", **extra}, max_side=MAX_SIDE)
    assert cache_key("img", plain, ImageFormat.PNG, 80) != cache_key(
        "img", other, ImageFormat.PNG, 80
    )


def test_enlarge_reaches_the_resize_step_and_is_off_by_default() -> None:
    (off,) = to_steps(parse_render({"w": "100"}, max_side=MAX_SIDE))
    (on,) = to_steps(parse_render({"w": "100", "enlarge": "1"}, max_side=MAX_SIDE))
    assert off.to_json().get("enlarge", False) is False
    assert on.to_json()["enlarge"] is True
