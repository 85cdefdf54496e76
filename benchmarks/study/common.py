"""What every experiment shares: the run folder, the fixture uploaded to a system, the
CPU a system spends while a load runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
from benchmarks._harness.procs import WORK, cpu_seconds
from benchmarks.study.scenarios import Fixture, hot_set, pixelmill_render_path
from benchmarks.study.systems import System

RUN = WORK / "study"
T = TypeVar("T")


def images() -> tuple[Path, bytes, bytes]:
    """The render image (1280x960 photo-like JPEG, on disk for thumbor's loader) and a
    small 256x256 PNG (jobs, uploads)."""
    import pyvips
    from benchmarks._harness.clients import small_png

    folder = RUN / "images"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "render.jpg"
    if not path.exists():
        png = small_png(1280, 960, seed=11)
        pyvips.Image.new_from_buffer(png, "").write_to_file(str(path), Q=90)
    return path, path.read_bytes(), small_png(256, 256, seed=5)


def client(system: System) -> httpx.Client:
    return httpx.Client(
        base_url=system.url, headers={"Authorization": f"Bearer {system.key}"}, timeout=120
    )


def prepare(system: System, *, study: bool = True) -> Fixture:
    """Upload the images, make a study holding the small one, render the hot set once."""
    path, jpeg, png = images()
    with client(system) as http:
        render_id = http.post("/v1/images", content=jpeg).raise_for_status().json()["id"]
        small_id = http.post("/v1/images", content=png).raise_for_status().json()["id"]
        fx = Fixture(render_id, path.name, small_id)
        if study:
            body = {"name": "load study", "modality": "fluorescence"}
            fx.study = http.post("/v1/studies", json=body).raise_for_status().json()["id"]
            link = {"image_id": small_id}
            http.post(f"/v1/studies/{fx.study}/images", json=link).raise_for_status()
        for _ in range(2):  # each gateway process has its own memory cache: warm them
            for params in hot_set():
                http.get(pixelmill_render_path(render_id, params)).raise_for_status()
    return fx


def headers(system: System) -> dict[str, str]:
    return {"Authorization": f"Bearer {system.key}"}


def measured(pids: Callable[[], list[int]], run: Callable[[], T]) -> tuple[T, float, float]:
    """``run()``, its wall seconds and the CPU seconds of ``pids()`` (read before/after)."""
    before = {p: cpu_seconds(p) for p in pids()}
    t0 = time.perf_counter()
    result = run()
    wall = time.perf_counter() - t0
    after = {p: cpu_seconds(p) for p in pids()}
    return result, wall, sum(after[p] - before.get(p, 0.0) for p in after)
