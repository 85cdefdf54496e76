from __future__ import annotations

from pixelmill.errors import (
    BadSignature,
    ImageTooLarge,
    InvalidParameter,
    NotFound,
    Overloaded,
    PixelmillError,
)


def test_each_error_knows_its_status_and_renders_a_problem() -> None:
    err = ImageTooLarge("too many pixels", max_pixels=10)
    body = err.problem(instance="/v1/images")
    assert body == {
        "type": "https://pixelmill.dev/problems/too-large",
        "title": "Image too large",
        "status": 413,
        "detail": "too many pixels",
        "instance": "/v1/images",
        "max_pixels": 10,
    }
    assert (InvalidParameter().status, NotFound().status, BadSignature().status) == (422, 404, 403)
    assert Overloaded(retry_after=7).retry_after == 7
    assert all(
        issubclass(e, PixelmillError) for e in (ImageTooLarge, NotFound, BadSignature, Overloaded)
    )
