"""The gateway and the inference path never import torch (checked in a fresh process),
for image models, graph models and time-lapse models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ml_helpers import TinyModel

SCRIPT = r"""
import json, sys
from pathlib import Path
from fastapi.testclient import TestClient
from tests.helpers import make_key
from pixelmill.runtime.container import build_container
from pixelmill.services.gateway.app import create_app
from pixelmill.settings import Settings
import numpy as np, pyvips

tmp = Path(sys.argv[1])
c = build_container(Settings(data_dir=tmp / "data"))
_, key = make_key(c, "t", role="admin")
auth = {"Authorization": f"Bearer {key}"}
spec = json.loads((tmp / "spec.json").read_text())
with TestClient(create_app(c)) as client:
    r = client.post("/v1/models/tiny/versions", params={"input_spec": json.dumps(spec)},
                    content=(tmp / "tiny.onnx").read_bytes(), headers=auth)
    assert r.status_code == 201, r.text
    png = pyvips.Image.new_from_array(np.full((40, 40), 90, np.uint8)).write_to_buffer(".png")
    r = client.post("/v1/models/tiny:1/predict", content=png, headers=auth)
    assert r.status_code == 200, r.text
    # a graph model classifies the cells of an image from its label image
    r = client.post("/v1/models/cells/versions", content=(tmp / "graph.onnx").read_bytes(),
                    params={"input_spec": (tmp / "graph_spec.json").read_text()}, headers=auth)
    assert r.status_code == 201, r.text
    lab = np.zeros((40, 40), np.uint16)
    lab[2:8, 2:8], lab[2:8, 20:26], lab[20:26, 10:16] = 1, 2, 3
    ids = [client.post("/v1/images", content=pyvips.Image.new_from_array(a).copy(
        interpretation=i).write_to_buffer(".png"), headers=auth).json()["id"]
        for a, i in (((lab * 60).astype(np.uint8), "b-w"), (lab, "grey16"))]
    r = client.post("/v1/models/cells:1/predict", headers=auth,
                    json={"image_id": ids[0], "labels_image_id": ids[1]})
    assert r.status_code == 200 and len(r.json()["cells"]) == 3, r.text
    # a time-lapse model segments every frame of a multi-page TIFF and tracks
    r = client.post("/v1/models/tl/versions", content=(tmp / "tl.onnx").read_bytes(),
                    params={"input_spec": (tmp / "tl_spec.json").read_text()}, headers=auth)
    assert r.status_code == 201, r.text
    import io, tifffile
    sink = io.BytesIO()
    tifffile.imwrite(sink, np.full((3, 24, 24), 90, np.uint8), photometric="minisblack")
    r = client.post("/v1/models/tl:1/timelapse?track=true", content=sink.getvalue(),
                    headers=auth)
    assert r.status_code == 200 and r.json()["frames"] == 3, r.text
c.close()
print(json.dumps({"torch": "torch" in sys.modules, "onnxruntime": "onnxruntime" in sys.modules}))
"""


@pytest.mark.slow
def test_gateway_and_inference_do_not_import_torch(tmp_path: Path, tiny_model: TinyModel) -> None:
    (tmp_path / "tiny.onnx").write_bytes(tiny_model.onnx)
    (tmp_path / "spec.json").write_text(tiny_model.spec.model_dump_json())
    from pixelmill.ml.export import graph_to_onnx
    from pixelmill.ml.graph import SHAPE_FEATURES
    from pixelmill.ml.graph_networks import CellGraphNet
    from pixelmill.ml.spec import InputSpec

    features = [*SHAPE_FEATURES, "mean_intensity", "max_intensity"]
    net = CellGraphNet(len(features), 2, width=8).eval()
    (tmp_path / "graph.onnx").write_bytes(graph_to_onnx(net, len(features)))
    graph_spec = InputSpec(task="graph", classes=["a", "b"], features=features)
    (tmp_path / "graph_spec.json").write_text(graph_spec.model_dump_json())
    from pixelmill.ml.export import to_onnx
    from pixelmill.ml.networks import RecurrentUNet

    tl_spec = InputSpec(task="timelapse", frames=2, multiple=4)
    (tmp_path / "tl.onnx").write_bytes(to_onnx(RecurrentUNet(1, 1, 2, 4).eval(), tl_spec))
    (tmp_path / "tl_spec.json").write_text(tl_spec.model_dump_json())
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"torch": False, "onnxruntime": True}


@pytest.mark.parametrize("module", ["pixelmill.services.gateway.app", "pixelmill.runtime.asgi"])
def test_importing_the_gateway_is_light(module: str) -> None:
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'onnxruntime', 'onnx') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
