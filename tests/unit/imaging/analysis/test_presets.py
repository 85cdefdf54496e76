"""Presets: named, versioned pipelines that run end to end on realistic inputs."""

from __future__ import annotations

import numpy as np
import pytest
import pyvips
from skimage import data

from pixelmill.errors import InvalidParameter
from pixelmill.imaging import ops, pipeline
from pixelmill.imaging.analysis import presets
from pixelmill.imaging.ops import OpContext
from tests.unit.imaging.analysis import synthetic as syn


def test_presets_are_named_versioned_and_documented() -> None:
    assert {"nuclei-fluorescence", "he-nuclei", "ihc-dab-quantification"} <= set(presets.names())
    for entry in presets.catalogue():
        assert entry["ref"] == f"{entry['name']}@{entry['version']}"
        assert entry["description"] and entry["steps"]
        ops.parse_pipeline(entry["steps"])  # every step is a valid registry step
    assert presets.get("he-nuclei").ref == presets.get("he-nuclei@1").ref


@pytest.mark.parametrize("ref", ["no-such-preset", "he-nuclei@9", "he-nuclei@x"])
def test_unknown_presets_are_422(ref: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        presets.get(ref)
    assert info.value.status == 422 and info.value.extra["known"]
    with pytest.raises(InvalidParameter) as step:
        ops.parse_pipeline([{"op": "preset", "name": ref}])
    assert step.value.status == 422


def test_overrides_merge_and_are_validated() -> None:
    steps = presets.expand("he-nuclei", {"segment_nuclei": {"min_area": 99}})
    assert steps[0]["min_area"] == 99
    assert presets.get("he-nuclei").steps[0]["min_area"] == 40  # the published one is intact
    with pytest.raises(InvalidParameter, match="no 'blur' step"):
        presets.expand("he-nuclei", {"blur": {"sigma": 2}})
    with pytest.raises(InvalidParameter):
        ops.parse_pipeline(
            [
                {
                    "op": "preset",
                    "name": "he-nuclei",
                    "overrides": {"segment_nuclei": {"min_area": 0}},
                }
            ]
        )


def run(
    image: pyvips.Image, spec: dict, pixel_size: float | None = None
) -> tuple[pyvips.Image, dict]:
    ctx = OpContext(pixel_size_um=pixel_size)
    out = pipeline.run(image, ops.parse_pipeline([spec]), ctx)
    out = pyvips.Image.new_from_array(out.numpy())  # compute now
    return out, ctx.artifacts


def test_nuclei_fluorescence_on_a_16_bit_two_channel_stack() -> None:
    scene = syn.blobs((256, 256), seed=11)
    dna = syn.as_uint16(syn.degrade(scene.image * 0.2, gradient=0.05, noise=0.004))
    other = np.full_like(dna, 1000)
    stack = pyvips.Image.new_from_array(np.dstack([dna, other]), interpretation="multiband")
    out, artifacts = run(stack, {"op": "preset", "name": "nuclei-fluorescence"}, 0.65)
    summary = artifacts["summary"]
    assert abs(summary["object_count"] - scene.count) <= 0.05 * scene.count
    assert summary["preset"] == "nuclei-fluorescence@1"
    objects = artifacts["objects"]
    assert {"mean_intensity_ch0", "mean_intensity_ch1", "area_um2"} <= set(objects.column_names)
    assert objects.column("mean_intensity_ch1").to_numpy() == pytest.approx(1000)
    assert (out.width, out.height, out.bands) == (256, 256, 3)


def test_he_nuclei_on_synthetic_he() -> None:
    scene = syn.blobs((240, 240), seed=12)
    eosin = np.full(scene.truth.shape, 0.25)
    hema = np.where(scene.truth > 0, 0.9, 0.02)
    rgb = syn.brightfield({"hematoxylin": hema, "eosin": eosin})
    image = pyvips.Image.new_from_array(rgb, interpretation="srgb")
    _, artifacts = run(image, {"op": "preset", "name": "he-nuclei"})
    assert artifacts["summary"]["object_count"] == scene.count
    assert artifacts["summary"]["density_per_mm2"] is None  # no pixel size: no invented µm
    assert artifacts["objects"].column("hematoxylin_od_mean").to_numpy().min() > 0.5


def test_ihc_quantification_counts_positive_nuclei() -> None:
    # given 16 nuclei of which 6 carry DAB at 2+ level
    scene = syn.blobs((160, 160), seed=13)
    positive = np.isin(scene.truth, [1, 3, 5, 8, 12, 14])
    hema = np.where(scene.truth > 0, 0.5, 0.0)
    dab = np.where(positive, 0.5, 0.0)
    rgb = syn.brightfield({"hematoxylin": hema, "dab": dab})
    image = pyvips.Image.new_from_array(rgb, interpretation="srgb")
    _, artifacts = run(image, {"op": "preset", "name": "ihc-dab-quantification"})
    ihc = artifacts["summary"]["ihc"]
    assert artifacts["summary"]["object_count"] == scene.count == 16
    assert (ihc["positive_count"], ihc["2+"], ihc["negative"]) == (6, 6, 10)
    assert ihc["labelling_index_pct"] == pytest.approx(37.5)
    assert ihc["h_score"] == pytest.approx(75.0)


@pytest.mark.parametrize("ref", ["ihc-dab-quantification", "ihc-dab-area", "he-nuclei"])
def test_scikit_image_ihc_sample_smoke(ref: str) -> None:
    image = pyvips.Image.new_from_array(data.immunohistochemistry(), interpretation="srgb")
    out, artifacts = run(image, {"op": "preset", "name": ref}, 0.5)
    summary = artifacts["summary"]
    assert (out.width, out.height) == (512, 512)
    if "ihc" in summary:
        ihc = summary["ihc"]
        assert 0.5 < ihc["tissue_area_fraction"] <= 1
        assert 0.2 < ihc["dab_positive_area_fraction"] <= 1  # a strongly DAB-stained sample
        assert 0 <= ihc.get("h_score", 0) <= 300
    if summary["object_count"] is not None:
        assert summary["object_count"] > 10
        assert summary["density_per_mm2"] > 0
