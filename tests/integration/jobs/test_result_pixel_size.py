"""A pipeline job's result TIFF keeps its input's pixel size, also through the steps
computed in numpy (normalize, clahe), with a region and from an inch resolution; an
input without a pixel size gives a result without one (never libvips' 1 px/mm, read
back as 1000 µm)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import pyvips

from pixelmill.imaging.pixel_size import pixel_size_from_resolution, pixel_size_um
from tests.integration.jobs.conftest import Gateway, job_settings, open_gateway

#: each image its own pixels: on the module's one gateway every upload is a new image
_SEEDS = itertools.count(3)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One gateway for the module (starting one per test cost most of its time): the
    tests share nothing but it, each uploading and submitting images of its own."""
    yield from open_gateway(job_settings(tmp_path_factory.mktemp("gateway")))


def tiff(depth: int, *, um: float | None, unit: str = "cm") -> bytes:
    rng = np.random.default_rng(next(_SEEDS))
    dtype = np.uint16 if depth == 16 else np.uint8
    top = 4000 if depth == 16 else 200
    arr = rng.integers(10, top, size=(60, 80), dtype=dtype)
    image = pyvips.Image.new_from_array(arr, interpretation="grey16" if depth == 16 else "b-w")
    if um is None:
        return bytes(image.tiffsave_buffer())
    px_per_mm = 1000.0 / um
    image = image.copy(xres=px_per_mm, yres=px_per_mm)
    return bytes(image.tiffsave_buffer(resunit=unit))


def result_pixel_size(
    gateway: Gateway, body: bytes, pipeline: list[dict[str, Any]], **extra: Any
) -> float | None:
    resp = gateway.client.post("/v1/images", content=body, headers=gateway.auth)
    assert resp.status_code == 201, resp.text
    job = {"inputs": [resp.json()["id"]], "pipeline": pipeline, "output": {"format": "tiff"}}
    done = gateway.wait(gateway.submit(**job, **extra)["id"], timeout=60)
    assert done["state"] == "succeeded", done
    [result] = done["results"]["images"]
    got = gateway.client.get(f"/v1/images/{result}", headers=gateway.auth).json()
    return None if got["pixel_size_um"] is None else float(got["pixel_size_um"])


@pytest.mark.parametrize("op", [{"op": "normalize"}, {"op": "clahe"}])
def test_a_numpy_step_keeps_the_inputs_pixel_size(gateway: Gateway, op: dict[str, Any]) -> None:
    size = result_pixel_size(gateway, tiff(16, um=0.5), [op])
    assert size == pytest.approx(0.5)


def test_a_region_and_an_inch_resolution_keep_the_pixel_size(gateway: Gateway) -> None:
    region = {"left": 10, "top": 5, "width": 40, "height": 30}
    size = result_pixel_size(gateway, tiff(16, um=0.5), [{"op": "normalize"}], region=region)
    assert size == pytest.approx(0.5)
    size = result_pixel_size(gateway, tiff(8, um=5.0, unit="inch"), [{"op": "normalize"}])
    assert size == pytest.approx(5.0)


def test_an_input_without_a_pixel_size_gives_a_result_without_one(gateway: Gateway) -> None:
    assert result_pixel_size(gateway, tiff(16, um=None), [{"op": "normalize"}]) is None
    assert result_pixel_size(gateway, tiff(8, um=None), [{"op": "clahe"}]) is None


@pytest.mark.parametrize("unit", ["cm", "inch"])
def test_libvips_default_resolution_is_no_pixel_size_whatever_the_unit(unit: str) -> None:
    image = pyvips.Image.new_from_array(np.zeros((4, 4), np.uint8))  # 1 px/mm
    saved = pyvips.Image.new_from_buffer(image.tiffsave_buffer(resunit=unit), "")
    assert saved.get("resolution-unit") in ("cm", "in")
    assert pixel_size_um(saved, tiff=True) is None
    assert pixel_size_from_resolution(1.0, "cm") is None
    assert pixel_size_from_resolution(1.0, "in") is None
    assert pixel_size_from_resolution(2000.0, "cm") == pytest.approx(0.5)
