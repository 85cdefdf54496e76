"""A study image's numbers (pixel size, magnification) must be finite: NaN or Infinity
in the JSON is refused with a problem that names the field and says why."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.integration.gateway.test_analyses import add_image


@pytest.mark.parametrize("field", ["pixel_size_um", "magnification"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_number_is_refused_naming_the_field(
    client: TestClient, sid: str, people: dict[str, dict[str, str]], field: str, value: str
) -> None:
    # given a study image, and a client whose JSON encoder lets NaN / Infinity through
    ana = people["ana"]
    image, _ = add_image(client, sid, ana, 1)
    body = f'{{"{field}": {value}}}'.encode()
    headers = {**ana, "Content-Type": "application/json"}
    # when it sets the number
    resp = client.patch(f"/v1/studies/{sid}/images/{image}", content=body, headers=headers)
    # then the problem names the field and says it must be finite (not "<= 1000")
    assert resp.status_code == 422, resp.text
    problem = resp.json()
    assert problem["errors"][0]["loc"] == f"body.{field}"
    assert "finite number" in problem["errors"][0]["msg"]
    assert field in problem["detail"] and "finite number" in problem["detail"]
    # and nothing changed
    listed = client.get(f"/v1/studies/{sid}/images", headers=ana).json()["items"]
    assert [i[field] for i in listed if i["image_id"] == image] == [None]
