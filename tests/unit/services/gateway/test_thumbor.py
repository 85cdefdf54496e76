"""Reading thumbor URLs: each option lands on the render parameter a thumbor user means,
and anything pixelmill cannot honour is refused by name."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from libthumbor import CryptoURL

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.render import parse_render
from pixelmill.services.gateway import thumbor

ID = "0123abcd"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("300x200", {"w": "300", "h": "200", "enlarge": "true"}),
        ("fit-in/300x0", {"w": "300", "fit": "inside"}),
        ("full-fit-in/300x200", {"w": "300", "h": "200", "fit": "outside"}),
        ("-300x-200", {"w": "300", "h": "200", "flop": "true", "flip": "true", "enlarge": "true"}),
        ("10x20:110x220", {"crop": "10,20,100,200", "enlarge": "true"}),
        ("trim/x100", {"trim": "0", "h": "100", "enlarge": "true"}),
        ("trim:top-left:15/x100", {"trim": "15", "h": "100", "enlarge": "true"}),
        (
            "trim:bottom-right/x100",
            {"trim": "0", "trim_corner": "bottom-right", "h": "100", "enlarge": "true"},
        ),
        ("100x100/left/top", {"w": "100", "h": "100", "gravity": "northwest", "enlarge": "true"}),
        ("100x100/right", {"w": "100", "h": "100", "gravity": "east", "enlarge": "true"}),
        ("100x100/smart", {"w": "100", "h": "100", "gravity": "attention", "enlarge": "true"}),
        (
            "fit-in/100x100/filters:fill(white):quality(70):brightness(20):rotate(90)",
            {
                "w": "100",
                "h": "100",
                "fit": "contain",
                "bg": "white",
                "q": "70",
                "brightness": "1.2",
                "rotate": "270",
            },
        ),
        (
            "filters:no_upscale():blur(4):max_bytes(5000)",
            {"enlarge": "false", "blur": "4.0", "max_bytes": "5000"},
        ),
    ],
)
def test_options_become_render_parameters(options: str, expected: dict[str, str]) -> None:
    got = thumbor.parse(f"{options}/{ID}")
    assert got.image_id == ID
    assert got.query == expected
    parse_render(got.query, max_side=8192)  # and they are valid render parameters


@pytest.mark.parametrize(
    "options",
    [
        "meta/100x100",
        "debug/100x100",
        "filters:watermark(a.png,0,0,0)",
        "filters:quality(high)",
        "filters:quality(80)x",
        "a/b",
    ],
)
def test_what_pixelmill_cannot_honour_is_refused(options: str) -> None:
    with pytest.raises(InvalidParameter):
        parse_render(thumbor.parse(f"{options}/{ID}").query, max_side=8192)


def test_focal_box_becomes_a_focal_point() -> None:
    got = thumbor.parse(f"100x100/filters:focal(100x50:300x150)/{ID}")
    assert got.focal == (100, 50, 300, 150) and got.needs_size
    assert got.resolve(400, 200)["fp"] == "0.500000,0.500000"


def test_orig_takes_the_source_side() -> None:
    got = thumbor.parse(f"origx100/{ID}")
    assert got.resolve(640, 480) == {"w": "640", "h": "100", "enlarge": "true"}


def test_adaptive_fit_in_turns_the_box_to_the_image() -> None:
    got = thumbor.parse(f"adaptive-fit-in/300x200/{ID}")
    assert got.resolve(400, 600) == {"w": "200", "h": "300", "fit": "inside"}  # portrait
    assert got.resolve(600, 400) == {"w": "300", "h": "200", "fit": "inside"}


@given(
    width=st.integers(0, 4000),
    height=st.integers(0, 4000),
    fit_in=st.booleans(),
    smart=st.booleans(),
    key=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
)
def test_signatures_match_libthumbor(
    width: int, height: int, fit_in: bool, smart: bool, key: str
) -> None:
    if fit_in and not (width or height):
        return
    url = CryptoURL(key=key).generate(
        width=width, height=height, fit_in=fit_in, smart=smart, image_url=ID
    )
    signature, options = url.lstrip("/").split("/", 1)
    assert thumbor.is_signature(signature)
    thumbor.verify(key, signature, options)  # no BadSignature
    assert thumbor.sign(key, options) == signature


@pytest.mark.parametrize(
    ("path", "malformed"),
    [
        ("2eF5R3-0c3hiL_XoVYOSh_92vR8/300x200/img", True),  # unpadded
        ("AAAAAAAAAAAAAAAAAAAAAAAAAAAA=/300x200/img", True),  # 29 characters
        ("2eF5R3+0c3hiL/XoVYOSh/92vR8=/300x200/img", True),  # standard base64
        ("2eF5R3-0c3hiL_XoVYOSh_92vR8/fit-in/filters:quality(80)/img", True),
        ("2eF5R3-0c3hiL_XoVYOSh_92vR8=/300x200/img", False),  # well-formed: its own route
        ("2eF5R3-0c3hiL_XoVYOSh_92vR8/img", False),  # no thumbor option
        ("studies/0123456789abcdef0123456789", False),
        ("viewer/img1", False),
        ("assets/index-abc123.js", False),
    ],
)
def test_a_malformed_signature_is_told_from_other_paths(path: str, malformed: bool) -> None:
    assert thumbor.malformed_signature(path) is malformed
