"""Cell-graph models through the HTTP API: a graph dataset, training as a job, the
registered version, and predictions that classify an image's cells (from a label image
or from the nuclei model) answered as JSON rows or CSV."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient

from pixelmill.ml.datasets import build_graph_archive
from pixelmill.ml.synthetic_tissue import CLASSES, TissueConfig, tissue_sample
from pixelmill.runtime.container import Container
from tests.jobs_helpers import finished_job
from tests.ml_helpers import png, zip_of

pytestmark = pytest.mark.slow

SIZE = TissueConfig(size=(128, 128))


def _tissue_zip(count: int, seed: int = 0) -> bytes:
    samples = []
    for i in range(count):
        s = tissue_sample(seed, i, SIZE)
        classes = {label: CLASSES[c] for label, c in enumerate(s.classes) if label > 0}
        samples.append((f"tissue{i}", s.image, s.labels, classes))
    return build_graph_archive(samples)


def test_graph_dataset_problems_are_named(client: TestClient, auth: dict[str, str]) -> None:
    s = tissue_sample(0, 0, SIZE)
    files = {
        "images/a.png": png(s.image),
        "masks/a.png": png(s.labels.astype(np.uint16)),
        "cells.csv": b"image,label,class\nb,1,tumour\na,9999,stroma\na,1,tumour\na,1,stroma\n",
    }
    r = client.post("/v1/datasets", content=zip_of(files), headers=auth)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problems = {f["file"]: f["problem"] for f in r.json()["files"]}
    assert "not in images/" in problems["cells.csv:2"]
    assert "not an object of masks/a" in problems["cells.csv:3"]
    assert "listed twice" in problems["cells.csv:5"]
    no_table = {k: v for k, v in files.items() if k != "cells.csv"}
    r = client.post("/v1/datasets?task=graph", content=zip_of(no_table), headers=auth)
    assert r.status_code == 422 and r.json()["files"][0]["file"] == "cells.csv"


def test_train_a_graph_model_and_classify_an_images_cells(
    client: TestClient, auth: dict[str, str], container: Container
) -> None:
    pytest.importorskip("torch")
    # given a graph dataset of synthetic tissue
    up = client.post("/v1/datasets?val_fraction=0.25", content=_tissue_zip(8), headers=auth)
    assert up.status_code == 201, up.text
    assert up.json()["task"] == "graph" and up.json()["classes"] == ["stroma", "tumour"]
    # when a graph network is trained on it as a job
    spec = {"task": "graph", "epochs": 25, "width": 16, "depth": 2, "lr": 0.005, "threads": 1}
    r = client.post(
        "/v1/training-runs",
        json={"model": "tissue", "dataset": up.json()["id"], "spec": spec, "alias": "production"},
        headers=auth,
    )
    assert r.status_code == 202, r.text
    job = finished_job(client, r.json()["job_id"], auth)
    assert job["state"] == "succeeded", job
    version = client.get("/v1/models/tissue/versions/1", headers=auth).json()
    assert version["input_spec"]["task"] == "graph"
    assert "mean_intensity" in version["input_spec"]["features"]
    assert version["metrics"]["accuracy"] > 0.7
    assert version["card"]["training"]["onnx_max_abs_diff"] < 1e-4

    # then it classifies the cells of an image it never saw, given their label image
    s = tissue_sample(1, 0, SIZE)
    image = client.post("/v1/images", content=png(s.image), headers=auth).json()["id"]
    labels = client.post(
        "/v1/images", content=png(s.labels.astype(np.uint16)), headers=auth
    ).json()["id"]
    pred = client.post(
        "/v1/models/tissue@production/predict",
        json={"image_id": image, "labels_image_id": labels},
        headers=auth,
    )
    assert pred.status_code == 200, pred.text
    body = pred.json()
    assert body["task"] == "graph" and body["objects"] == {"labels_image_id": labels}
    cells = body["cells"]
    assert [c["label"] for c in cells] == list(range(1, int(s.labels.max()) + 1))
    truth = [CLASSES[s.classes[c["label"]]] for c in cells]
    accuracy = np.mean([c["class"] == t for c, t in zip(cells, truth, strict=True)])
    assert accuracy > 0.7
    first = cells[0]
    assert abs(first["p_stroma"] + first["p_tumour"] - 1) < 1e-5
    assert first["degree"] >= 0 and "neighbours_tumour" in first and "clustering" in first
    summary = body["summary"]
    assert sum(summary["class_counts"].values()) == len(cells)
    assert summary["mean_degree"] > 3 and 0 < summary["same_class_edges"] <= 1

    # the same table as CSV
    table = client.post(
        "/v1/models/tissue@production/predict",
        json={"image_id": image, "labels_image_id": labels},
        headers={**auth, "Accept": "text/csv"},
    )
    assert table.headers["content-type"].startswith("text/csv")
    read = list(csv.DictReader(io.StringIO(table.text)))
    assert len(read) == len(cells) and read[0]["class"] == cells[0]["class"]

    # without a label image, the nuclei model finds the cells first (once it is there)
    missing = client.post("/v1/models/tissue/predict", json={"image_id": image}, headers=auth)
    assert missing.status_code == 404 and "nuclei" in missing.json()["detail"]
    container.models.ensure_default()
    found = client.post("/v1/models/tissue/predict", json={"image_id": image}, headers=auth).json()
    assert found["objects"]["segmenter"].startswith("nuclei:")
    # (it merges many of these crowded nuclei: about half are found, docs/ml.md)
    assert 10 < len(found["cells"]) <= len(cells)

    # several images at once, as for a study: each image's summary and the study's
    s2 = tissue_sample(1, 1, SIZE)
    image2 = client.post("/v1/images", content=png(s2.image), headers=auth).json()["id"]
    labels2 = client.post(
        "/v1/images", content=png(s2.labels.astype(np.uint16)), headers=auth
    ).json()["id"]
    pair = [
        {"image_id": image, "labels_image_id": labels},
        {"image_id": image2, "labels_image_id": labels2},
    ]
    study = client.post(
        "/v1/models/tissue@production/cell-graphs", json={"images": pair}, headers=auth
    )
    assert study.status_code == 200, study.text
    both = study.json()
    assert [i["image_id"] for i in both["images"]] == [image, image2]
    assert both["study"]["images"] == 2 and "cells" not in both
    assert both["study"]["cells"] == len(cells) + int(s2.labels.max())
    assert both["images"][0]["summary"] == summary
    table = client.post(
        "/v1/models/tissue@production/cell-graphs",
        json={"images": pair},
        headers={**auth, "Accept": "text/csv"},
    )
    read = list(csv.DictReader(io.StringIO(table.text)))
    assert len(read) == both["study"]["cells"] and {r["image_id"] for r in read} == {image, image2}

    # a label image of another size is refused
    small = client.post(
        "/v1/images", content=png(s.labels[:64].astype(np.uint16)), headers=auth
    ).json()["id"]
    bad = client.post(
        "/v1/models/tissue/predict",
        json={"image_id": image, "labels_image_id": small},
        headers=auth,
    )
    assert bad.status_code == 422 and "label image is 128x64" in bad.json()["detail"]

    # negative labels (a signed label image) are the caller's mistake: a 422 each time,
    # and however many arrive, they neither open the version's breaker nor count
    # towards rolling its alias back
    negative = client.post(
        "/v1/images", content=_tiff(-s.labels.astype(np.int16)), headers=auth
    ).json()["id"]
    for _ in range(25):
        refused = client.post(
            "/v1/models/tissue@production/predict",
            json={"image_id": image, "labels_image_id": negative},
            headers=auth,
        )
        assert refused.status_code == 422, refused.text
        assert "negative labels" in refused.json()["detail"]
    still = client.post(
        "/v1/models/tissue@production/predict",
        json={"image_id": image, "labels_image_id": labels},
        headers=auth,
    )
    assert still.status_code == 200, still.text
    assert client.get("/v1/models/tissue", headers=auth).json()["aliases"]["production"] == 1


def _tiff(pixels: np.ndarray) -> bytes:
    import pyvips

    return bytes(pyvips.Image.new_from_array(pixels).tiffsave_buffer())


def test_a_graph_model_whose_features_disagree_with_its_spec_is_refused(
    client: TestClient, auth: dict[str, str]
) -> None:
    pytest.importorskip("torch")
    from pixelmill.ml.export import graph_to_onnx
    from pixelmill.ml.graph_networks import CellGraphNet
    from pixelmill.ml.spec import InputSpec

    onnx = graph_to_onnx(CellGraphNet(4, 2, width=8).eval(), 4)
    spec = InputSpec(task="graph", classes=["a", "b"], features=["area_px", "solidity"])
    r = client.post(
        "/v1/models/wrong/versions",
        params={"input_spec": spec.model_dump_json()},
        content=onnx,
        headers=auth,
    )
    assert r.status_code == 422 and "takes 4 features" in r.text
    right = spec.model_copy(
        update={"features": ["area_px", "solidity", "eccentricity", "mean_intensity"]}
    )
    ok = client.post(
        "/v1/models/right/versions",
        params={"input_spec": right.model_dump_json()},
        content=onnx,
        headers=auth,
    )
    assert ok.status_code == 201, ok.text
