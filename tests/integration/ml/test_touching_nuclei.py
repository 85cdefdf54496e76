"""The shipped ``nuclei@production`` separates touching nuclei through the API: its
distance head's seeded watershed counts a crowded synthetic field (a seed the training
never used) close to the truth, where splitting the same served mask with the classical
splitter merges many of them."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from pixelmill.ml.preprocess import decode
from pixelmill.ml.spec import InputSpec
from pixelmill.ml.synthetic import NucleiConfig, nuclei_labelled
from pixelmill.runtime.container import Container
from tests.ml_helpers import png


def test_a_crowded_field_is_counted_nucleus_by_nucleus(
    container: Container, client: TestClient, auth: dict[str, str]
) -> None:
    container.models.ensure_default()
    # given a crowded field: about 70 nuclei in 256 x 256, many touching
    config = NucleiConfig(size=(256, 256), coverage=(0.5, 0.5), clustering=(0.6, 0.6))
    image, truth = nuclei_labelled(321, 0, config)
    true_count = len(np.unique(truth)) - 1
    uploaded = client.post("/v1/images", content=png(image), headers=auth)
    assert uploaded.status_code in (200, 201), uploaded.text
    # when nuclei@production predicts it with measurements
    r = client.post(
        "/v1/models/nuclei@production/predict",
        json={"image_id": uploaded.json()["id"], "measure": True},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    counted = r.json()["measurements"]["count"]
    # then the count is within 15 % of the truth
    assert abs(counted - true_count) <= 0.15 * true_count, (counted, true_count)
    # and far above what the classical splitter makes of the same served mask
    mask_bytes = container.image_service.original_bytes(r.json()["mask_image_id"])
    merged = InputSpec().objects(decode(mask_bytes) > 0)
    assert counted >= int(merged.max()) + 0.1 * true_count
