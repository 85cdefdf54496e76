"""A study's ``options`` are a closed set: an unknown (say, misspelt) key is refused
with a problem naming it, not dropped while the study is made without it."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_unknown_option_keys_are_refused_naming_each(
    client: TestClient, people: dict[str, dict[str, str]]
) -> None:
    olga = people["olga"]
    before = client.get("/v1/studies", headers=olga).json()["items"]
    # when a study is created with a misspelt option and a made-up one
    body = {"name": "typo", "options": {"public_render": True, "colour": "red"}}
    resp = client.post("/v1/studies", json=body, headers=olga)
    # then it is refused, each unknown key named, and no study was made
    assert resp.status_code == 422, resp.text
    locs = {e["loc"] for e in resp.json()["errors"]}
    assert locs == {"body.options.public_render", "body.options.colour"}
    assert "public_render" in resp.json()["detail"]
    assert client.get("/v1/studies", headers=olga).json()["items"] == before


def test_changing_options_refuses_unknown_keys_and_keeps_the_known_ones(
    client: TestClient, sid: str, people: dict[str, dict[str, str]]
) -> None:
    olga = people["olga"]
    path = f"/v1/studies/{sid}"
    bad = {"options": {"public_renders": True, "keep_original": True}}
    resp = client.patch(path, json=bad, headers=olga)
    assert resp.status_code == 422, resp.text
    assert [e["loc"] for e in resp.json()["errors"]] == ["body.options.keep_original"]
    assert client.get(path, headers=olga).json()["options"]["public_renders"] is False
    # the known keys alone are accepted
    good = client.patch(path, json={"options": {"public_renders": True}}, headers=olga)
    assert good.status_code == 200, good.text
    assert good.json()["options"]["public_renders"] is True
