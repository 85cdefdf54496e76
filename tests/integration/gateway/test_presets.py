"""GET /v1/presets: every analysis preset with the JSON Schema of its parameters (what
the run dialog's form is generated from), and the schema of a model analysis."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.integration.gateway.test_analyses import add_image, finished


def _defaults(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    steps = schema["properties"]["overrides"]["properties"]
    return {op: {k: p["default"] for k, p in s["properties"].items()} for op, s in steps.items()}


def test_presets_list_their_parameters_with_the_presets_values_as_defaults(
    client: TestClient, auth: dict[str, str]
) -> None:
    body = client.get("/v1/presets", headers=auth).json()
    by_name = {p["name"]: p for p in body["items"]}
    assert {"he-nuclei", "nuclei-fluorescence", "ihc-dab-quantification"} <= set(by_name)
    he = by_name["he-nuclei"]
    segment = he["params"]["properties"]["overrides"]["properties"]["segment_nuclei"]
    assert segment["properties"]["min_area"] == {
        **segment["properties"]["min_area"],
        "type": "integer",
        "minimum": 1,
        "default": 40,  # the preset's value, not the op's 20
    }
    assert segment["properties"]["method"]["enum"][0] == "otsu"
    model = body["model_params"]["properties"]
    assert model["threshold"]["anyOf"][0] == {
        "exclusiveMaximum": 1,
        "exclusiveMinimum": 0,
        "type": "number",
    }
    assert model["scale"]["default"] == 1.0
    one = client.get("/v1/presets/he-nuclei@1", headers=auth).json()
    assert one["ref"] == "he-nuclei@1" and one["params"] == he["params"]


def test_unknown_presets_are_422_and_the_catalogue_needs_a_caller(
    client: TestClient, auth: dict[str, str]
) -> None:
    r = client.get("/v1/presets/no-such-preset", headers=auth)
    assert r.status_code == 422 and "he-nuclei" in r.json()["known"]
    assert client.get("/v1/presets").status_code == 401


def test_the_schemas_defaults_sent_back_run_and_a_changed_value_takes_effect(
    client: TestClient, sid: str, people: dict[str, dict[str, str]]
) -> None:
    schema = client.get("/v1/presets/he-nuclei", headers=people["ana"]).json()["params"]
    overrides = _defaults(schema)
    # objects bigger than the image: no nuclei are kept
    overrides["segment_nuclei"].update(min_area=50_000, max_area=60_000)
    image, _count = add_image(client, sid, people["ana"], 1)
    r = client.post(
        f"/v1/studies/{sid}/analyses",
        json={"preset": "he-nuclei", "image_ids": [image], "params": {"overrides": overrides}},
        headers=people["ana"],
    )
    assert r.status_code == 201, r.text
    done = finished(client, r.headers["location"], people["ana"])
    assert done["status"] == "done" and done["object_count"] == 0
    overrides["segment_nuclei"]["min_area"] = 0  # the schema says minimum 1
    bad = client.post(
        f"/v1/studies/{sid}/analyses",
        json={"preset": "he-nuclei", "image_ids": [image], "params": {"overrides": overrides}},
        headers=people["ana"],
    )
    assert bad.status_code == 422 and "min_area" in str(bad.json()["errors"])
