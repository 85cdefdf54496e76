"""The analysis operations through the registry: parse a JSON pipeline, run it on libvips
images, get pixels and artifacts (the same path jobs and renders take)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import pyvips

from pixelmill.errors import InvalidParameter
from pixelmill.imaging import ops, pipeline
from pixelmill.imaging.analysis.export import labels_from_tiff
from pixelmill.imaging.ops import OpContext
from tests.unit.imaging.analysis import synthetic as syn

ANALYSIS_OPS = [
    "clahe",
    "denoise",
    "unsharp_mask",
    "subtract_background",
    "normalize",
    "channels",
    "deconvolve",
    "stain_normalize",
    "threshold",
    "segment_nuclei",
    "measure",
    "overlay",
    "side_by_side",
    "preset",
]


def vips(array: np.ndarray, interpretation: str | None = None) -> pyvips.Image:
    return pyvips.Image.new_from_array(array, interpretation=interpretation)


def run(
    image: pyvips.Image, specs: list[dict[str, Any]], ctx: OpContext | None = None
) -> tuple[np.ndarray, OpContext]:
    ctx = ctx or OpContext()
    out = pipeline.run(image, ops.parse_pipeline(specs), ctx)
    return np.asarray(out.numpy()), ctx


def nuclei(dtype: str = "uint8") -> tuple[pyvips.Image, syn.Scene]:
    scene = syn.blobs((160, 200), seed=2)
    arr = syn.degrade(scene.image)
    arr = (
        syn.as_uint8(arr) if dtype == "uint8" else syn.as_uint16(arr) if dtype == "uint16" else arr
    )
    return vips(arr), scene


def test_every_analysis_op_is_registered_with_a_schema_and_queue() -> None:
    catalogue = {entry["name"]: entry for entry in ops.catalogue()}
    for name in ANALYSIS_OPS:
        assert name in catalogue, name
        assert catalogue[name]["queue"] in ("transform", "analyse")
        assert catalogue[name]["params"]["type"] == "object"
    assert (
        ops.queue_of(ops.parse_pipeline([{"op": "clahe"}, {"op": "segment_nuclei"}])) == "analyse"
    )


@pytest.mark.parametrize(
    "spec",
    [
        {"op": "clahe", "clip_limit": 3},
        {"op": "denoise", "method": "median", "size": 5},
        {"op": "denoise", "method": "nlm"},
        {"op": "unsharp_mask", "sigma": 1.5},
        {"op": "subtract_background", "radius": 20},
        {"op": "normalize", "low": 2, "high": 98},
    ],
    ids=lambda s: f"{s['op']}-{s.get('method', '')}",
)
@pytest.mark.parametrize("kind", ["rgba8", "grey16", "greyfloat"])
def test_preprocessing_keeps_size_format_and_alpha(spec: dict[str, Any], kind: str) -> None:
    rng = np.random.default_rng(0)
    if kind == "rgba8":
        arr = rng.integers(0, 255, (40, 50, 4), dtype=np.uint8)
        arr[..., 3] = 128
        image = vips(arr, "srgb")
    elif kind == "grey16":
        image = vips(rng.integers(0, 65535, (40, 50), dtype=np.uint16), "grey16")
    else:
        image = vips(rng.random((40, 50)).astype(np.float32))
    out, _ = run(image, [spec])
    assert out.shape[:2] == (40, 50)
    assert out.dtype == image.numpy().dtype
    if kind == "rgba8":
        assert (out[..., 3] == 128).all()  # transparency untouched


def test_segmentation_output_labels_mask_or_input_and_the_label_artifact() -> None:
    image, scene = nuclei()
    labels, ctx = run(image, [{"op": "segment_nuclei", "min_area": 30}])
    assert labels.dtype == np.uint16 and labels.max() == scene.count
    stored = ctx.artifacts["labels"]
    assert isinstance(stored, bytes)  # a job stores it as TIFF bytes
    assert np.array_equal(labels_from_tiff(bytes(stored)), labels)
    assert ctx.artifacts["segmentation"]["object_count"] == scene.count
    mask, _ = run(image, [{"op": "segment_nuclei", "output": "mask"}])
    assert set(np.unique(mask)) == {0, 255}
    same, _ = run(image, [{"op": "segment_nuclei", "output": "input"}])
    assert np.array_equal(same, image.numpy())


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_segment_measure_overlay_pipeline(dtype: str) -> None:
    # given nuclei in 8-bit, 16-bit or float
    image, scene = nuclei(dtype)
    # when a pipeline segments, measures and overlays them
    out, ctx = run(
        image,
        [
            {"op": "denoise", "method": "median"},
            {"op": "segment_nuclei", "min_area": 30},
            {"op": "measure", "pixel_size_um": 0.5},
            {"op": "overlay", "colour": "ff0000"},
        ],
    )
    # then the table, the summary and the picture agree with the truth
    objects = ctx.artifacts["objects"]
    assert isinstance(objects, pa.Table) and objects.num_rows == scene.count
    summary = ctx.artifacts["summary"]
    assert summary["object_count"] == scene.count and summary["pixel_size_um"] == 0.5
    raw = image.numpy()
    means = objects.column("mean_intensity").to_numpy()
    assert means.max() <= raw.max()  # measured on the original, in its own units
    assert out.shape == (160, 200, 3) and out.dtype == np.uint8
    assert ((out[..., 0] == 255) & (out[..., 1] == 0)).sum() > scene.count * 20


def test_threshold_op_gives_a_mask_and_components() -> None:
    image, scene = nuclei()
    mask, ctx = run(image, [{"op": "threshold", "method": "otsu", "sigma": 1}, {"op": "measure"}])
    assert set(np.unique(mask)) == {0, 255}
    assert ctx.artifacts["summary"]["object_count"] >= scene.count


def test_channels_and_deconvolution() -> None:
    stack = np.dstack([np.full((8, 8), v, np.uint16) for v in (10, 20, 30, 40)])
    out, _ = run(vips(stack, "multiband"), [{"op": "channels", "select": [3, 1]}])
    assert out[0, 0].tolist() == [40, 20]
    with pytest.raises(InvalidParameter, match="channel 4 does not exist"):
        run(vips(stack, "multiband"), [{"op": "channels", "select": [4]}])
    rgb = syn.brightfield({"hematoxylin": np.full((8, 8), 0.4), "dab": np.full((8, 8), 0.3)})
    od, _ = run(
        vips(rgb, "srgb"), [{"op": "deconvolve", "stains": "hdab", "stain": "dab", "output": "od"}]
    )
    assert od.dtype == np.float32 and od == pytest.approx(0.3, abs=0.02)
    view, _ = run(vips(rgb, "srgb"), [{"op": "deconvolve", "stain": "hematoxylin"}])
    assert view.shape == (8, 8, 3) and view.dtype == np.uint8
    with pytest.raises(InvalidParameter, match="3 channel"):
        run(vips(stack, "multiband"), [{"op": "deconvolve"}])
    with pytest.raises(InvalidParameter, match="not in the 'hdab' set"):
        run(vips(rgb, "srgb"), [{"op": "deconvolve", "stains": "hdab", "stain": "eosin"}])


def test_stain_normalisation_ops() -> None:
    rng = np.random.default_rng(0)
    hema = np.where(rng.random((64, 64)) < 0.4, rng.uniform(0.3, 1.2, (64, 64)), 0)
    rgb = syn.brightfield({"hematoxylin": hema, "eosin": rng.uniform(0.2, 0.8, (64, 64))})
    out, ctx = run(vips(rgb, "srgb"), [{"op": "stain_normalize"}])
    assert out.shape == (64, 64, 3) and "source" in ctx.artifacts["stains"]
    out, _ = run(
        vips(rgb, "srgb"),
        [
            {
                "op": "stain_normalize",
                "method": "reinhard",
                "target_mean": [60, 30, -10],
                "target_std": [15, 8, 6],
            }
        ],
    )
    assert out.shape == (64, 64, 3)


@pytest.mark.parametrize(
    "spec",
    [
        {"op": "denoise", "size": 4},
        {"op": "normalize", "low": 90, "high": 10},
        {"op": "segment_nuclei", "block_size": 10},
        {"op": "segment_nuclei", "min_area": 50, "max_area": 10},
        {"op": "segment_nuclei", "channel": "purple"},
        {"op": "measure", "dab_thresholds": [0.5, 0.2, 0.1]},
        {"op": "stain_normalize", "method": "reinhard"},
        {"op": "overlay", "alpha": 2},
        {"op": "clahe", "clip_limit": 0},
        {"op": "channels", "select": []},
        {"op": "preset", "name": "nope"},
    ],
)
def test_bad_parameters_are_422_at_parse_time(spec: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameter) as info:
        ops.parse_pipeline([spec])
    assert info.value.status == 422


def test_an_overlay_without_a_segmentation_before_it_is_refused_when_parsed() -> None:
    # refused before a job is stored, not when its task runs
    for specs in ([{"op": "overlay"}], [{"op": "overlay"}, {"op": "segment_nuclei"}]):
        with pytest.raises(InvalidParameter, match=r"step 0 \(overlay\) needs a segmentation"):
            ops.parse_pipeline(specs)
    for first in (
        {"op": "segment_nuclei"},
        {"op": "threshold"},
        {"op": "preset", "name": "nuclei-fluorescence"},
    ):
        assert len(ops.parse_pipeline([first, {"op": "blur", "sigma": 1}, {"op": "overlay"}])) == 3


def test_steps_that_need_a_segmentation_say_so() -> None:
    image, _ = nuclei()
    with pytest.raises(InvalidParameter, match="needs a segmentation step"):
        run(image, [{"op": "overlay"}])
    with pytest.raises(InvalidParameter, match="colour_by=class needs a measure step"):
        run(image, [{"op": "segment_nuclei"}, {"op": "overlay", "colour_by": "class"}])
    with pytest.raises(InvalidParameter, match="changed its geometry"):
        run(
            image,
            [
                {"op": "segment_nuclei"},
                {"op": "resize", "width": 50},
                {"op": "measure", "intensity": "input"},
            ],
        )
    # measure without a segmentation: image-level results only
    _, ctx = run(image, [{"op": "measure"}])
    assert ctx.artifacts["summary"]["object_count"] is None


def test_geometry_before_segmentation_measures_on_the_transformed_image() -> None:
    image, scene = nuclei()
    _, ctx = run(
        image,
        [
            {"op": "crop", "left": 0, "top": 0, "width": 100, "height": 80},
            {"op": "segment_nuclei"},
            {"op": "measure"},
        ],
    )
    assert 0 < ctx.artifacts["summary"]["object_count"] < scene.count


def test_side_by_side_op() -> None:
    image, _ = nuclei()
    out, _ = run(
        image, [{"op": "segment_nuclei"}, {"op": "overlay"}, {"op": "side_by_side", "gap": 4}]
    )
    assert out.shape == (160, 404, 3)


def test_empty_image_gives_zero_objects_not_an_error() -> None:
    blank = vips(np.zeros((64, 64), np.uint8))
    out, ctx = run(blank, [{"op": "preset", "name": "nuclei-fluorescence"}])
    assert ctx.artifacts["summary"]["object_count"] == 0
    assert ctx.artifacts["objects"].num_rows == 0
    assert out.shape == (64, 64, 3)
