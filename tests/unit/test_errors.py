from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from pixelmill.errors import (
    BadSignature,
    ImageTooLarge,
    InvalidParameter,
    NotFound,
    Overloaded,
    PixelmillError,
    missing_ids,
)
from pixelmill.services.gateway import problems


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


@pytest.mark.parametrize("member", ["type", "title", "status", "instance"])
def test_an_extension_cannot_take_the_name_of_a_defined_member(member: str) -> None:
    # detail is the message argument itself; the other four cannot be keywords
    with pytest.raises(TypeError, match="RFC 9457"):
        NotFound("no such image", **{member: "x"})
    with pytest.raises(TypeError, match="RFC 9457"):
        Overloaded("busy", retry_after=3, **{member: "x"})


@pytest.mark.parametrize("name", ["id", "x", "2fast", "_hidden", "max-pixels", "größe"])
def test_extension_names_follow_rfc_9457(name: str) -> None:
    with pytest.raises(TypeError, match="extension member"):
        InvalidParameter("bad", **{name: 1})


def test_extensions_changed_later_still_cannot_replace_the_defined_members() -> None:
    err = NotFound("no such image", image_id="abc")
    err.extra.update(status=200, type="about:blank", title="OK", detail="fine")
    body = err.problem(instance="/v1/images/abc")
    assert (body["status"], body["title"], body["detail"]) == (404, "Not found", "no such image")
    assert body["type"] == "https://pixelmill.dev/problems/not-found"
    assert body["image_id"] == "abc"


def _app_raising(error: Callable[[], PixelmillError]) -> TestClient:
    app = FastAPI()
    problems.install(app)

    @app.get("/boom")
    def boom() -> None:
        raise error()

    return TestClient(app, raise_server_exceptions=False)


def test_the_http_response_keeps_the_errors_status() -> None:
    # given a route whose error was given a misleading status extension after it was made
    def tampered() -> PixelmillError:
        err = NotFound("no such image")
        err.extra["status"] = 200
        return err

    response = _app_raising(tampered).get("/boom")
    # then the client gets the 404 the error class stands for, in the header and the body
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404 and response.json()["detail"] == "no such image"


def test_raising_with_a_reserved_keyword_is_a_logged_500_not_a_success() -> None:
    response = _app_raising(lambda: NotFound("no such image", status=200)).get("/boom")
    assert response.status_code == 500
    assert response.json()["type"] == "https://pixelmill.dev/problems/internal"


@pytest.mark.parametrize(
    ("count", "more"), [(1, ""), (50, ""), (51, ", and 1 more"), (300, ", and 250 more")]
)
def test_a_missing_list_counts_everything_it_does_not_show(count: int, more: str) -> None:
    ids = [f"img-{i}" for i in range(count)]
    problem = missing_ids("image(s) are not in this study", ids, field="image_ids").problem()
    assert problem["status"] == 422 and problem["field"] == "image_ids"
    assert problem["missing"] == ids[:50] and problem["missing_count"] == count
    shown = ": the first 50 are in 'missing'" if more else ""
    assert problem["detail"] == f"{count} image(s) are not in this study{shown}{more}"
