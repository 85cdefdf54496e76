"""Render query parameters accept exactly the range of the operation field they feed:
a bound lives in the operation's spec, and the query grammar follows it."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pixelmill.errors import InvalidParameter
from pixelmill.imaging import ops
from pixelmill.imaging.render import RenderParams, parse_render, to_steps

#: render query key -> (operation, field) it feeds, and a value in range to follow it by
FEEDS: dict[str, tuple[str, str, str]] = {
    "w": ("resize", "width", "120"),
    "h": ("resize", "height", "80"),
    "min-w": ("resize", "min_width", "150"),
    "min-h": ("resize", "min_height", "90"),
    "trim": ("trim", "threshold", "12.5"),
    "rotate": ("rotate", "angle", "30"),
    "blur": ("blur", "sigma", "2.5"),
    "sharpen": ("sharpen", "sigma", "1.5"),
    "brightness": ("adjust", "brightness", "1.2"),
    "contrast": ("adjust", "contrast", "0.8"),
    "gamma": ("adjust", "gamma", "2.2"),
    "wm": ("watermark", "image", "abc123"),
    "wm_text": ("watermark", "text", "(c) lab"),
    "wm_opacity": ("watermark", "opacity", "0.3"),
    "wm_scale": ("watermark", "scale", "0.4"),
    "clahe": ("clahe", "clip_limit", "3"),
    "analysis": ("preset", "name", "he-nuclei"),
    "pixelate_faces": ("pixelate_faces", "block", "12"),
}
#: what a parameter needs beside it to make its step (the watermark's content)
COMPANIONS: dict[str, dict[str, str]] = {
    "wm_opacity": {"wm_text": "x"},
    "wm_scale": {"wm_text": "x"},
}
#: bounded render parameters that feed no operation field
NOT_OP_FIELDS = {
    "q",  # encoder quality: an output option, not a step
    "max_bytes",  # an encoder option too
    "dpr",  # multipliers of the resize sizes, not fields of their own
    "zoom",
    "frame",  # which source pages the pipeline reads, before any step
    "page",
    "channels",  # split into the composite op's channels and colours (its bound from there)
}
#: large enough that only the resize op bounds w and h
NO_CONFIGURED_LIMIT = 10**9

BOUND_KEYS = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")
LENGTH_KEYS = ("minLength", "maxLength")


def op_field_schema(op: str, name: str) -> dict[str, Any]:
    """The field's JSON schema as GET /v1/operations publishes it (optional unwrapped)."""
    entry = next(e for e in ops.catalogue() if e["name"] == op)
    schema = entry["params"]["properties"][name]
    for option in schema.get("anyOf", [schema]):
        if option.get("type") != "null":
            return dict(option)
    raise AssertionError(f"{op}.{name} has no non-null type")


def accepted(key: str, value: str) -> bool:
    try:
        parse_render({key: value}, max_side=NO_CONFIGURED_LIMIT)
    except InvalidParameter as exc:
        assert exc.status == 422
        return False
    return True


def number(value: float, integer: bool) -> str:
    return str(int(value)) if integer else repr(float(value))


def step_below(value: float, integer: bool) -> float:
    return value - 1 if integer else math.nextafter(value, -math.inf)


def step_above(value: float, integer: bool) -> float:
    return value + 1 if integer else math.nextafter(value, math.inf)


@pytest.mark.parametrize("key", sorted(FEEDS))
def test_a_render_parameter_accepts_exactly_the_range_of_its_operation_field(key: str) -> None:
    # given the operation field the query parameter feeds, as the API publishes it
    op, name, _ = FEEDS[key]
    spec = op_field_schema(op, name)
    assert any(k in spec for k in BOUND_KEYS + LENGTH_KEYS), f"{op}.{name} is unbounded"
    integer = spec["type"] == "integer"
    # then the query accepts each inclusive bound and refuses the value just beyond it
    if "minimum" in spec:
        assert accepted(key, number(spec["minimum"], integer))
        assert not accepted(key, number(step_below(spec["minimum"], integer), integer))
    if "maximum" in spec:
        assert accepted(key, number(spec["maximum"], integer))
        assert not accepted(key, number(step_above(spec["maximum"], integer), integer))
    # and refuses an exclusive bound but accepts the value just inside it
    if "exclusiveMinimum" in spec:
        low = spec["exclusiveMinimum"]
        assert not accepted(key, number(low, integer))
        assert accepted(key, number(step_above(low, integer), integer))
    if "exclusiveMaximum" in spec:
        high = spec["exclusiveMaximum"]
        assert not accepted(key, number(high, integer))
        assert accepted(key, number(step_below(high, integer), integer))
    # and texts as long as the field allows, but no longer or shorter
    if "maxLength" in spec:
        assert accepted(key, "x" * spec["maxLength"])
        assert not accepted(key, "x" * (spec["maxLength"] + 1))
    if spec.get("minLength", 0) > 0:
        assert accepted(key, "x" * spec["minLength"])
        assert not accepted(key, "x" * (spec["minLength"] - 1))


@pytest.mark.parametrize("key", sorted(FEEDS))
def test_the_parameter_feeds_the_field_named_for_it(key: str) -> None:
    # given an in-range value for the parameter
    op, name, value = FEEDS[key]
    # when the render is turned into steps
    query = {key: value, **COMPANIONS.get(key, {})}
    steps = to_steps(parse_render(query, max_side=NO_CONFIGURED_LIMIT))
    # then the step of that operation carries the value in that field
    step = next(s for s in steps if s.op.name == op)
    got = getattr(step.params, name)
    assert str(got) == value or got == pytest.approx(float(value))


def test_every_bounded_render_parameter_is_checked_here() -> None:
    schema = RenderParams.model_json_schema()["properties"]
    bounded = {
        key
        for key, prop in schema.items()
        for option in prop.get("anyOf", [prop])
        if any(k in option for k in BOUND_KEYS + LENGTH_KEYS)
    }
    assert bounded == set(FEEDS) | NOT_OP_FIELDS


def test_the_configured_output_side_narrows_w_and_h_but_never_widens_them() -> None:
    resize_max = op_field_schema("resize", "width")["maximum"]
    # given a configured limit above what the resize op accepts
    with pytest.raises(InvalidParameter) as err:
        parse_render({"w": str(resize_max + 1)}, max_side=resize_max * 2)
    # then the op's limit is the one a client is told
    assert err.value.status == 422 and str(resize_max) in err.value.detail
    # and a configured limit below it is the one that applies
    with pytest.raises(InvalidParameter) as err:
        parse_render({"h": "501"}, max_side=500)
    assert "500" in err.value.detail


def _tall_jpeg(tmp_path: Any) -> Any:
    """A 10 x 3000 JPEG, its top half black and its bottom half white."""
    import numpy as np
    import pyvips

    pixels = np.zeros((3000, 10, 3), np.uint8)
    pixels[1500:] = 255
    path = tmp_path / "tall.jpg"
    pyvips.Image.new_from_array(pixels, interpretation="srgb").jpegsave(str(path))
    return path


@pytest.mark.parametrize(
    "query",
    [
        {"w": "4000", "enlarge": "true"},  # the height follows the width
        {"h": "4000", "w": "100", "fit": "outside", "enlarge": "true"},
        {"zoom": "4", "enlarge": "true"},
    ],
)
def test_no_side_of_a_render_exceeds_the_configured_output_side(tmp_path: Any, query: Any) -> None:
    from pixelmill.imaging import pipeline

    # 10 x 3000 made 4000 px wide would be 1,200,000 px tall (JPEG's own limit is 65,500)
    out = pipeline.run(
        _tall_jpeg(tmp_path), to_steps(parse_render(query, max_side=8192), max_side=8192)
    )
    assert max(out.width, out.height) == 8192


@pytest.mark.parametrize("after", [{"flip": "true"}, {"rotate": "180"}, {"rotate": "90"}])
def test_a_resize_fused_with_the_decode_takes_a_flip_or_rotate_after_it(
    tmp_path: Any, after: Any
) -> None:
    from pixelmill.imaging import pipeline
    from pixelmill.imaging.encode import encode
    from pixelmill.imaging.formats import ImageFormat

    # the shrink-on-load decode runs top to bottom; a flip asks for the last row first
    params = parse_render({"w": "100", "fit": "inside", **after}, max_side=8192)
    out = pipeline.run(_tall_jpeg(tmp_path), to_steps(params, max_side=8192))
    assert len(encode(out, ImageFormat.JPEG, quality=80)) > 0
    first = out.crop(0, 0, out.width, 1).avg()
    assert first > 200 if after != {"rotate": "90"} else out.width == 3000  # white on top
