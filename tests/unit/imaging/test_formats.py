from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pixelmill.imaging.formats import ImageFormat, parse_format, sniff
from tests.helpers import make_image


@pytest.mark.parametrize(
    ("suffix", "expected"),
    [
        (".jpg", ImageFormat.JPEG),
        (".png", ImageFormat.PNG),
        (".webp", ImageFormat.WEBP),
        (".avif", ImageFormat.AVIF),
        (".tif", ImageFormat.TIFF),
        (".gif", ImageFormat.GIF),
    ],
)
def test_real_encodings_are_recognised_from_their_bytes(suffix: str, expected: ImageFormat) -> None:
    data = make_image(32, 24, fmt=suffix)
    assert sniff(data[:32]) is expected


def test_big_endian_tiff_and_bigtiff_signatures() -> None:
    assert sniff(b"MM\x00*" + bytes(28)) is ImageFormat.TIFF
    assert sniff(b"II+\x00" + bytes(28)) is ImageFormat.TIFF


@pytest.mark.parametrize(
    "head",
    [b"", b"hello world", b"%PDF-1.7\n" + bytes(20), b"\x00\x00\x00\x18ftypmp42" + bytes(16)],
)
def test_non_images_are_not_recognised(head: bytes) -> None:
    assert sniff(head) is None


@given(st.binary(max_size=64))
def test_sniff_never_raises_on_arbitrary_bytes(head: bytes) -> None:
    result = sniff(head)
    assert result is None or isinstance(result, ImageFormat)


def test_output_format_aliases() -> None:
    assert parse_format("JPG") is ImageFormat.JPEG
    assert parse_format("tif") is ImageFormat.TIFF
    with pytest.raises(ValueError):
        parse_format("bmp")
