"""Per-object and per-image measurements, checked against known shapes and against
scikit-image's regionprops as the reference definition."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from skimage import draw, measure

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.analysis import export
from pixelmill.imaging.analysis.measure import (
    SHAPE_COLUMNS,
    dab_classes,
    measure_objects,
    summarize,
    tally,
)
from pixelmill.imaging.analysis.stain import deconvolve
from tests.unit.imaging.analysis import synthetic as syn


def random_labels(seed: int = 0, shape: tuple[int, int] = (300, 300)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.uint16)
    k = 0
    for r in range(20, shape[0] - 10, 35):
        for c in range(20, shape[1] - 10, 35):
            k += 1
            rr, cc = draw.ellipse(
                r,
                c,
                rng.uniform(3, 14),
                rng.uniform(3, 14),
                rotation=rng.uniform(-3, 3),
                shape=shape,
            )
            labels[rr, cc] = k
    labels[0:6, 0:9] = k + 1  # touches the image corner
    labels[0:6, 9:15] = k + 2  # touches another object
    return labels


def test_shape_features_match_regionprops() -> None:
    labels = random_labels()
    rng = np.random.default_rng(1)
    intensity = rng.integers(0, 4000, (*labels.shape, 2)).astype(np.uint16)
    mine = measure_objects(labels, intensity).to_pydict()
    ref = measure.regionprops_table(
        labels,
        intensity,
        properties=[
            "label",
            "centroid",
            "bbox",
            "area",
            "perimeter",
            "equivalent_diameter_area",
            "eccentricity",
            "axis_major_length",
            "axis_minor_length",
            "orientation",
            "intensity_mean",
            "intensity_max",
        ],
    )
    pairs = {
        "label": "label",
        "centroid_row": "centroid-0",
        "centroid_col": "centroid-1",
        "bbox_min_row": "bbox-0",
        "bbox_min_col": "bbox-1",
        "bbox_max_row": "bbox-2",
        "bbox_max_col": "bbox-3",
        "area_px": "area",
        "perimeter_px": "perimeter",
        "equivalent_diameter_px": "equivalent_diameter_area",
        "eccentricity": "eccentricity",
        "major_axis_px": "axis_major_length",
        "minor_axis_px": "axis_minor_length",
        "mean_intensity_ch0": "intensity_mean-0",
        "max_intensity_ch1": "intensity_max-1",
    }
    for ours, theirs in pairs.items():
        np.testing.assert_allclose(mine[ours], ref[theirs], rtol=1e-9, atol=1e-9, err_msg=ours)
    # orientation: ours is from the x axis, counter-clockwise on screen
    expected = np.degrees(ref["orientation"]) - 90
    expected = np.where(expected <= -90, expected + 180, expected)
    np.testing.assert_allclose(mine["orientation_deg"], expected, atol=1e-9)
    assert list(mine)[: len(SHAPE_COLUMNS)] == list(SHAPE_COLUMNS)


def test_disk_and_ellipse_have_their_geometric_values() -> None:
    labels = np.zeros((200, 200), np.uint16)
    rr, cc = draw.disk((50, 50), 20)
    labels[rr, cc] = 1
    # an ellipse 40 x 16 (semi-axes) whose major axis rises at 30 degrees on screen
    rr, cc = draw.ellipse(130, 120, 16, 40, rotation=np.radians(30))
    labels[rr, cc] = 2
    table = measure_objects(labels).to_pydict()
    assert table["area_px"][0] == pytest.approx(np.pi * 20**2, rel=0.02)
    assert table["equivalent_diameter_px"][0] == pytest.approx(40, rel=0.01)
    assert table["perimeter_px"][0] == pytest.approx(2 * np.pi * 20, rel=0.05)
    assert table["eccentricity"][0] < 0.1
    assert table["solidity"][0] == pytest.approx(1.0, abs=0.01)
    assert table["major_axis_px"][1] == pytest.approx(80, rel=0.02)
    assert table["minor_axis_px"][1] == pytest.approx(32, rel=0.03)
    assert table["orientation_deg"][1] == pytest.approx(30, abs=1.0)
    assert (table["centroid_row"][1], table["centroid_col"][1]) == pytest.approx(
        (130, 120), abs=0.5
    )


def test_a_concave_object_has_low_solidity() -> None:
    labels = np.zeros((60, 60), np.uint16)
    labels[10:50, 10:18] = 1
    labels[42:50, 10:50] = 1  # an L shape
    (solidity,) = measure_objects(labels).column("solidity").to_pylist()
    assert 0.3 < solidity < 0.6


def test_micrometre_fields_need_a_pixel_size() -> None:
    labels = random_labels()
    unknown = measure_objects(labels).to_pydict()
    known = measure_objects(labels, pixel_size_um=0.5).to_pydict()
    for column in ("area_um2", "perimeter_um", "equivalent_diameter_um", "major_axis_um"):
        assert all(v is None for v in unknown[column])
    np.testing.assert_allclose(known["area_um2"], np.asarray(known["area_px"]) * 0.25)
    np.testing.assert_allclose(known["perimeter_um"], np.asarray(known["perimeter_px"]) * 0.5)


def test_intensities_are_raw_values_of_each_channel() -> None:
    labels = np.zeros((20, 20), np.uint16)
    labels[2:6, 2:7] = 1
    image = np.zeros((20, 20, 3), np.uint16)
    image[..., 0] = 1000
    image[3, 3, 1] = 60000
    row = measure_objects(labels, image, channel_names=["dna", "gfp", "rfp"]).to_pylist()[0]
    assert row["mean_intensity_dna"] == 1000
    assert row["integrated_intensity_dna"] == 1000 * 20
    assert row["max_intensity_gfp"] == 60000
    assert row["mean_intensity_rfp"] == 0
    with pytest.raises(InvalidParameter):
        measure_objects(labels, image, channel_names=["one"])
    with pytest.raises(InvalidParameter, match="differ in size"):
        measure_objects(labels, image[:10])


def test_summary_density_and_fractions() -> None:
    labels = random_labels()
    objects = measure_objects(labels)
    summary = summarize(tally(labels, objects=objects), pixel_size_um=0.5)
    area_mm2 = 300 * 300 * 0.25 / 1e6
    assert summary["object_count"] == objects.num_rows
    assert summary["density_per_mm2"] == pytest.approx(objects.num_rows / area_mm2, rel=1e-4)
    assert summary["object_area_fraction"] == pytest.approx(
        np.count_nonzero(labels) / 90000, abs=1e-6
    )
    no_scale = summarize(tally(labels, objects=objects))
    assert no_scale["density_per_mm2"] is None and no_scale["image_area_mm2"] is None
    empty = summarize(
        tally(np.zeros((10, 10), np.uint16), objects=measure_objects(np.zeros((10, 10), np.uint16)))
    )
    assert empty["object_count"] == 0 and empty["mean_area_px"] is None


def test_ihc_classes_h_score_and_labelling_index() -> None:
    # given 8 nuclei with known DAB optical densities: 2 negative, 2 each of 1+, 2+, 3+
    dab_levels = [0.05, 0.1, 0.3, 0.3, 0.5, 0.5, 0.8, 0.8]
    labels = np.zeros((60, 240), np.uint16)
    dab = np.zeros(labels.shape)
    hema = np.zeros(labels.shape)
    for i, level in enumerate(dab_levels):
        rr, cc = draw.disk((30, 15 + 28 * i), 10)
        labels[rr, cc] = i + 1
        dab[rr, cc] = level
        hema[rr, cc] = 0.3
    rgb = syn.brightfield({"hematoxylin": hema, "dab": dab})
    conc = deconvolve(rgb, stains="hdab")
    objects = measure_objects(labels, rgb, maps={"dab_od": conc[..., 1]})
    classes = dab_classes(objects.column("dab_od_mean").to_numpy())
    assert classes.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    t = tally(
        labels, objects=objects, dab_od=conc[..., 1], total_od=conc.sum(2), dab_column="dab_od_mean"
    )
    ihc = summarize(t)["ihc"]
    assert (ihc["negative"], ihc["1+"], ihc["2+"], ihc["3+"]) == (2, 2, 2, 2)
    assert ihc["h_score"] == pytest.approx((2 * 1 + 2 * 2 + 2 * 3) / 8 * 100)
    assert ihc["labelling_index_pct"] == pytest.approx(75.0)
    assert 0 < ihc["dab_positive_area_fraction"] < 1


def test_exports_round_trip() -> None:
    labels = random_labels()
    objects = measure_objects(labels)
    summary = summarize(tally(labels, objects=objects))
    csv = export.to_csv(objects).decode().splitlines()
    assert csv[0].startswith('"label","centroid_row"') and len(csv) == objects.num_rows + 1
    assert ",," in csv[1]  # unknown micrometre fields are empty, not zero
    import io

    parquet = pq.read_table(io.BytesIO(export.to_parquet(objects, metadata=summary)))
    assert parquet.equals(objects.replace_schema_metadata(parquet.schema.metadata))
    assert json.loads(parquet.schema.metadata[b"pixelmill"])["object_count"] == objects.num_rows
    assert json.loads(export.to_json({"x": float("nan"), "n": np.int64(2)})) == {"n": 2, "x": None}
    assert np.array_equal(export.labels_from_tiff(export.labels_to_tiff(labels)), labels)
