"""Evaluation as a product feature (issue 20 item 2): the shipped ``nuclei`` model
scored on a small synthetic dataset through the API, the scores kept with the version,
who may evaluate, and the promotion gate (a candidate must beat the alias's holder)."""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from pixelmill.errors import Conflict
from pixelmill.ml import datasets, synthetic
from pixelmill.runtime.container import Container, build_container
from pixelmill.services import promotion_gate
from pixelmill.services.model_registry import ModelRegistry
from pixelmill.services.promotion_gate import Gate
from tests.conftest import make_settings
from tests.jobs_helpers import finished_job
from tests.ml_helpers import png, zip_of
from tests.security import attacks
from tests.security.people import Person, person

pytest.importorskip("onnx")


def synthetic_zip(count: int = 4) -> bytes:
    """Synthetic 256² images with instance label masks (uint16 PNG, each nucleus its own
    value), so touching nuclei are told apart in the truth (seed 7: not the training
    seed 0)."""
    pairs = []
    for i in range(count):
        image, labels = synthetic.nuclei_labelled(7, i)
        pairs.append((f"n{i}", image, labels.astype(np.uint16)))
    return datasets.build_archive(pairs)


@pytest.fixture
def alice(container: Container, client: TestClient) -> Person:
    container.models.ensure_default()  # nuclei:1 = nuclei@production, readable by all
    return person(container, client, "alice")


@pytest.fixture
def dataset(alice: Person) -> str:
    r = alice.post("/v1/datasets?name=eval", content=synthetic_zip())
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def evaluate(who: Person, name: str, version: int, dataset: str) -> dict:
    r = who.post(f"/v1/models/{name}/versions/{version}/evaluations", json={"dataset": dataset})
    assert r.status_code == 202, r.text
    job = finished_job(who.client, r.json()["job_id"], who.auth)
    assert job["state"] == "succeeded", job
    return dict(job["result"])


def test_a_reader_scores_the_shipped_model_and_the_scores_stay_with_the_version(
    alice: Person, dataset: str
) -> None:
    # when alice (read on the shipped model) evaluates nuclei:1 on her dataset
    result = evaluate(alice, "nuclei", 1, dataset)
    s = result["scores"]
    # then she gets every score, on all 4 images, in range and sensible for this model
    drawn = sum(len(np.unique(synthetic.nuclei_labelled(7, i)[1])) - 1 for i in range(4))
    assert s["images"] == 4 and s["objects_true"] == drawn  # every labelled nucleus
    for key in ("dice", "f1@0.5", "f1@0.75", "precision@0.5", "recall@0.75", "map", "pq"):
        assert 0.0 <= s[key] <= 1.0, key
    assert s["dice"] > 0.8 and s["f1@0.5"] > 0.4  # touching nuclei still merge (issue 20)
    assert s["f1@0.75"] <= s["f1@0.5"] and s["map"] <= s["f1@0.5"]
    assert sorted(s["ap"]) == [f"{0.5 + 0.05 * i:.2f}" for i in range(9)]
    # and they are listed with the version, by the version and by the model
    version = alice.get("/v1/models/nuclei/versions/1").json()
    assert [e["id"] for e in version["evaluations"]] == [result["id"]]
    listed = alice.get(f"/v1/models/nuclei/evaluations?dataset={dataset}").json()["items"]
    assert listed[0]["scores"] == s and listed[0]["dataset_name"] == "eval"


def test_who_may_evaluate(container: Container, client: TestClient, alice: Person) -> None:
    bob = person(container, client, "bob")
    mine = alice.post("/v1/datasets", content=synthetic_zip(1)).json()["id"]
    # bob cannot use alice's dataset, nor a model he may not read: both look missing
    r = bob.post("/v1/models/nuclei/versions/1/evaluations", json={"dataset": mine})
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    cells = alice.post(
        "/v1/models/cells/versions",
        params={"input_spec": json.dumps({"task": "segmentation", "channels": 1})},
        content=attacks.conv_model(1),
    )
    assert cells.status_code == 201
    assert alice.get("/v1/models/cells/versions/1/evaluations").status_code == 200
    assert bob.get("/v1/models/cells/versions/1/evaluations").status_code == 404
    # and a bad split or a missing version is refused before any job runs
    bad = alice.post(
        "/v1/models/nuclei/versions/1/evaluations", json={"dataset": mine, "split": "test"}
    )
    assert bad.status_code == 422
    gone = alice.post("/v1/models/nuclei/versions/9/evaluations", json={"dataset": mine})
    assert gone.status_code == 404


def shipped_onnx() -> bytes:
    return (importlib.resources.files("pixelmill.ml") / "models" / "nuclei.onnx").read_bytes()


def test_promotion_must_beat_the_holder_when_gated(
    container: Container, client: TestClient, alice: Person, dataset: str
) -> None:
    # given alice's model "cells": v1 a crude 1x1 convolution at production, v2 the U-Net
    spec = json.loads(
        (importlib.resources.files("pixelmill.ml") / "models" / "nuclei.json").read_text()
    )["input_spec"]
    for onnx in (attacks.conv_model(1), shipped_onnx()):
        r = alice.post(
            "/v1/models/cells/versions",
            params={"input_spec": json.dumps(spec)},
            content=onnx,
        )
        assert r.status_code == 201, r.text
    assert alice.put("/v1/models/cells/aliases/production", json={"version": 1}).status_code == 200
    gated = {"version": 2, "require_better_on": dataset, "metric": "f1@0.5"}
    # when v2 is not evaluated yet, the gate cannot decide: 409 saying what to do
    early = alice.put("/v1/models/cells/aliases/production", json=gated)
    assert early.status_code == 409 and "evaluate" in early.json()["detail"]
    crude = evaluate(alice, "cells", 1, dataset)["scores"]["f1@0.5"]
    unet = evaluate(alice, "cells", 2, dataset)["scores"]["f1@0.5"]
    assert unet > crude
    # then the better v2 passes the gate, and the audit keeps both scores
    moved = alice.put("/v1/models/cells/aliases/production", json=gated)
    assert moved.status_code == 200 and moved.json()["version"] == 2
    # when alice gates production for good, going back to the worse v1 is refused
    put = alice.put("/v1/models/cells/gates/production", json={"dataset": dataset})
    assert put.status_code == 200 and put.json()["metric"] == "f1@0.5"
    back = alice.put("/v1/models/cells/aliases/production", json={"version": 1})
    assert back.status_code == 409
    problem = back.json()
    assert back.headers["content-type"].startswith("application/problem+json")
    assert problem["candidate"]["score"] == pytest.approx(crude)
    assert problem["holder"]["score"] == pytest.approx(unet)
    assert f"{crude:.4f}" in problem["detail"] and f"{unet:.4f}" in problem["detail"]
    assert alice.get("/v1/models/cells").json()["aliases"] == {"production": 2}
    audit = alice.get("/v1/models/cells/audit").json()["items"]
    promoted = [a for a in audit if a["action"] == "promote" and a["to_version"] == 2]
    assert "gate passed" in promoted[0]["note"] and f"{unet:.4f}" in promoted[0]["note"]
    assert [a["action"] for a in audit][-2:] == ["gate.set", "gate.refused"]
    # and a reader may not touch the gate; an unknown metric is a 422
    bob = person(container, client, "bob")
    alice.put(f"/v1/models/cells/permissions/{bob.user_id}", json={"level": "read"})
    assert bob.delete("/v1/models/cells/gates/production").status_code == 403
    odd = alice.put("/v1/models/cells/gates/production", json={"dataset": dataset, "metric": "x"})
    assert odd.status_code == 422


def _two_versions_at_production_1(alice: Person) -> None:
    """alice's model "cells": two versions, production at 1."""
    for _ in range(2):
        r = alice.post(
            "/v1/models/cells/versions",
            params={"input_spec": json.dumps({"task": "segmentation", "channels": 1})},
            content=attacks.conv_model(1),
        )
        assert r.status_code == 201, r.text
    assert alice.put("/v1/models/cells/aliases/production", json={"version": 1}).status_code == 200


def test_a_rollback_cannot_take_an_alias_past_its_gate(alice: Person, dataset: str) -> None:
    # given production gated, at version 1, and version 2 not evaluated
    _two_versions_at_production_1(alice)
    gate = {"dataset": dataset, "metric": "f1@0.5"}
    assert alice.put("/v1/models/cells/gates/production", json=gate).status_code == 200
    assert alice.put("/v1/models/cells/aliases/production", json={"version": 2}).status_code == 409
    # when alice "rolls back" to version 2, which production never held
    r = alice.post("/v1/models/cells/aliases/production/rollback", json={"to_version": 2})
    # then it is refused, saying to promote it instead, and production stays at 1
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "promote it instead" in r.json()["detail"] and r.json()["version"] == 2
    assert alice.get("/v1/models/cells").json()["aliases"] == {"production": 1}
    audit = alice.get("/v1/models/cells/audit").json()["items"]
    assert not [a for a in audit if a["action"] == "rollback"]


def test_a_gate_on_a_dataset_that_is_not_there_or_not_yours_is_refused(
    container: Container, client: TestClient, alice: Person, dataset: str
) -> None:
    _two_versions_at_production_1(alice)
    bob = person(container, client, "bob")
    theirs = bob.post("/v1/datasets", content=synthetic_zip(1)).json()["id"]
    labels = {"images/a/x.png": png(np.zeros((8, 8), np.uint8))}
    labels["images/b/y.png"] = png(np.full((8, 8), 200, np.uint8))
    classes = alice.post("/v1/datasets", content=zip_of(labels)).json()["id"]
    for missing in ("nope", theirs):  # bob's private dataset looks missing to alice
        put = alice.put("/v1/models/cells/gates/production", json={"dataset": missing})
        assert put.status_code == 404, put.text
        assert put.headers["content-type"].startswith("application/problem+json")
        assert put.json()["detail"] == f"no dataset {missing!r}"
        inline = {"version": 2, "require_better_on": missing, "metric": "map"}
        promote = alice.put("/v1/models/cells/aliases/production", json=inline)
        assert promote.status_code == 404 and promote.json()["detail"] == f"no dataset {missing!r}"
    # a classification dataset has no evaluations to compare: 422
    put = alice.put("/v1/models/cells/gates/production", json={"dataset": classes})
    assert put.status_code == 422 and "segmentation" in put.json()["detail"]
    # nothing was gated, production did not move; her own dataset still gates
    assert alice.get("/v1/models/cells/gates").json()["items"] == []
    assert alice.get("/v1/models/cells").json()["aliases"] == {"production": 1}
    ok = alice.put("/v1/models/cells/gates/production", json={"dataset": dataset})
    assert ok.status_code == 200


def test_a_gate_whose_dataset_was_deleted_says_so_and_can_be_replaced_or_removed(
    alice: Person, dataset: str
) -> None:
    # given production gated on alice's dataset, at version 1, and that dataset deleted
    _two_versions_at_production_1(alice)
    put = alice.put("/v1/models/cells/gates/production", json={"dataset": dataset})
    assert put.status_code == 200, put.text
    assert alice.delete(f"/v1/datasets/{dataset}").status_code == 204
    # when version 2 is promoted: the gate needs an evaluation nobody can make any more
    refused = alice.put("/v1/models/cells/aliases/production", json={"version": 2})
    # then 409 saying the dataset is gone and how to get out: replace or remove the gate
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert f"dataset {dataset!r}, which no longer exists" in problem["detail"]
    assert "PUT /v1/models/cells/gates/production" in problem["detail"]
    assert "DELETE /v1/models/cells/gates/production" in problem["detail"]
    assert problem["dataset"] == dataset and problem["dataset_deleted"] is True
    assert alice.get("/v1/models/cells").json()["aliases"] == {"production": 1}
    # replaced by a gate on a dataset that exists, it gates as any gate does
    other = alice.post("/v1/datasets?name=eval2", content=synthetic_zip(1)).json()["id"]
    put = alice.put("/v1/models/cells/gates/production", json={"dataset": other})
    assert put.status_code == 200 and put.json()["dataset_id"] == other
    gated = alice.put("/v1/models/cells/aliases/production", json={"version": 2})
    assert gated.status_code == 409 and "evaluate it first" in gated.json()["detail"]
    # removed, the promotion goes through
    assert alice.delete("/v1/models/cells/gates/production").status_code == 204
    moved = alice.put("/v1/models/cells/aliases/production", json={"version": 2})
    assert moved.status_code == 200 and moved.json()["version"] == 2


def test_an_evaluation_on_an_empty_split_is_refused_at_submit(alice: Person) -> None:
    # given a dataset uploaded without a validation split
    r = alice.post("/v1/datasets?val_fraction=0", content=synthetic_zip(2))
    assert r.status_code == 201, r.text
    assert r.json()["split"]["val"] == []
    # when alice asks for an evaluation on its val split: 409 at once, no job
    body = {"dataset": r.json()["id"], "split": "val"}
    refused = alice.post("/v1/models/nuclei/versions/1/evaluations", json=body)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "no images in its 'val' split" in refused.json()["detail"]
    assert refused.json()["split"] == "val"
    assert alice.get("/v1/jobs").json()["items"] == []


def test_the_command_line_evaluates_a_folder_and_keeps_the_scores(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from pixelmill.runtime.cli import main

    data = ["--data-dir", str(tmp_path / "d")]
    shipped = build_container(make_settings(tmp_path, data_dir=tmp_path / "d"))
    shipped.models.ensure_default()  # as `pixelmill up` does
    shipped.close()
    runner = CliRunner()
    folder = tmp_path / "eval"
    made = ["datasets", "synth-nuclei", str(folder), "--count", "2", "--seed", "7", "--labels"]
    assert runner.invoke(main, made).exit_code == 0
    done = runner.invoke(
        main, ["models", "evaluate", "nuclei@production", "--dataset", str(folder), *data]
    )
    assert done.exit_code == 0, done.output
    assert "nuclei:1 on eval" in done.output
    assert "f1@0.5\t" in done.output and "map\t" in done.output
    again = runner.invoke(
        main,
        ["models", "evaluate", "nuclei:1", "--dataset", str(folder), "--json", *data],
    )
    stored = json.loads(again.output)
    drawn = sum(len(np.unique(synthetic.nuclei_labelled(7, i)[1])) - 1 for i in range(2))
    assert stored["scores"]["images"] == 2 and stored["scores"]["objects_true"] == drawn


@pytest.fixture(params=["sqlite", "postgres"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ModelRegistry]:
    overrides = {}
    if request.param == "postgres":
        overrides["database"] = {"url": request.getfixturevalue("postgres_url")}
    c = build_container(make_settings(tmp_path, **overrides))
    yield c.models
    c.close()


def test_scores_and_gates_live_in_the_metadata_db(registry: ModelRegistry) -> None:
    spec = {"task": "segmentation", "channels": 1}
    for _ in range(2):
        registry.register(attacks.conv_model(1), name="cells", input_spec=spec, actor="t")
    registry.promote("cells", 1, "production", actor="t")
    stored = {}
    for version, f1 in ((1, 0.6), (2, 0.7)):
        stored[version] = registry.evaluations.add(
            model="cells",
            version=version,
            dataset_id="d" * 32,
            dataset_sha256="0" * 64,
            dataset_name="held-out",
            split="all",
            scores={"f1@0.5": f1, "map": 0.5},
            created_by="t",
        )
    # the better v2 passes; then, with the gate kept on the alias, v1 cannot come back
    registry.promote("cells", 2, "production", actor="t", gate=Gate("d" * 32))
    promotion_gate.set_gate(
        registry.models, registry.evaluations, "cells", "production", Gate("d" * 32), actor="t"
    )
    with pytest.raises(Conflict) as refused:
        registry.promote("cells", 1, "production", actor="t")
    assert refused.value.extra["candidate"]["score"] == 0.6
    assert refused.value.extra["holder"]["evaluation"] == stored[2].id
    assert registry.models.alias("cells", "production").version == 2
    # a deleted version takes its scores with it
    registry.delete_version("cells", 1, actor="t")
    assert [e.version for e in registry.evaluations.list("cells")] == [2]
