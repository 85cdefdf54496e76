"""The request mixes of the load suite, as async callables for the open-loop driver
(:mod:`.openloop`) and, through ``locustfile.py``, for Locust.

* ``render`` — sizes x formats x ops; a share ``hit_ratio`` of requests picks one of a
  small hot set rendered before the run (cache hits), the rest ask for a size never asked
  before (misses); the same mix as thumbor paths for the peer;
* ``upload`` — raw PNG uploads (bursts come from the schedule's steps);
* ``job`` — a pipeline job running a segmentation preset (``nuclei-fluorescence``, the
  cheap classical one) on a small image; ``infer`` — a job running the shipped
  ``nuclei`` model (op ``segment``); both answer 202 when the job is committed;
* ``workspace`` — a research session: list studies, read the DZI descriptor and four
  viewer tiles, and every ``analysis_every``-th session run an analysis (preset) on the
  study's image.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

SIZES = [(160, 120), (320, 240), (640, 480)]
FORMATS = ["jpeg", "webp"]
OPS = ["", "&blur=1"]
QUALITY = 82
JOB_PRESET = "nuclei-fluorescence"

Request = Callable[[Any], Awaitable[tuple[str, int]]]


@dataclass
class Fixture:
    """What the scenarios need on the system: uploaded image ids and a study."""

    render_image: str
    render_file: str  # the same image's file name under thumbor's loader root
    small_image: str
    study: str = ""
    rng: random.Random = field(default_factory=lambda: random.Random(7))


def hot_set() -> list[tuple[int, int, str, str]]:
    """Every (width, height, format, ops) of the hot set: 3 x 2 x 2 = 12 renders."""
    return [(w, h, f, o) for (w, h), f, o in itertools.product(SIZES, FORMATS, OPS)]


def render_params(fx: Fixture, hit_ratio: float) -> tuple[int, int, str, str]:
    """One render of the mix: from the hot set with probability ``hit_ratio``, else a
    random size (100..999 px each side) no earlier request is likely to have asked for."""
    if fx.rng.random() < hit_ratio:
        return fx.rng.choice(hot_set())
    # width and height drawn apart: 810,000 sizes x 4, so a shared cache (Redis) cannot
    # catch repeats that a per-process one would miss
    w, h = fx.rng.randrange(100, 1000), fx.rng.randrange(100, 1000)
    return w, h, fx.rng.choice(FORMATS), fx.rng.choice(OPS)


def pixelmill_render_path(image: str, params: tuple[int, int, str, str]) -> str:
    w, h, fmt, ops = params
    return f"/v1/images/{image}/render?w={w}&h={h}&format={fmt}&q={QUALITY}{ops}"


def thumbor_render_path(file: str, params: tuple[int, int, str, str]) -> str:
    w, h, fmt, ops = params
    blur = "blur(2,1):" if ops else ""  # radius 2 ≈ libvips' mask half-width for sigma 1
    return f"/unsafe/{w}x{h}/filters:{blur}format({fmt}):quality({QUALITY})/{file}"


def render(fx: Fixture, hit_ratio: float, *, peer: bool = False) -> Request:
    async def request(client: Any) -> tuple[str, int]:
        params = render_params(fx, hit_ratio)
        if peer:
            path = thumbor_render_path(fx.render_file, params)
        else:
            path = pixelmill_render_path(fx.render_image, params)
        resp = await client.get(path)
        return "render", resp.status_code

    return request


def upload(png: bytes) -> Request:
    async def request(client: Any) -> tuple[str, int]:
        resp = await client.post("/v1/images", content=png)
        return "upload", resp.status_code

    return request


def job_body(fx: Fixture, kind: str) -> dict[str, Any]:
    """The JSON of a ``job`` (segmentation preset) or ``infer`` (nuclei model) job."""
    if kind == "infer":
        step: dict[str, Any] = {"op": "segment", "model": "nuclei@production"}
    elif kind == "flip":
        step = {"op": "flip"}
    else:
        step = {"op": "preset", "name": JOB_PRESET}
    return {"inputs": [fx.small_image], "pipeline": [step], "output": {"image": False}}


def job(fx: Fixture, kind: str = "job") -> Request:
    body = job_body(fx, kind)

    async def request(client: Any) -> tuple[str, int]:
        resp = await client.post("/v1/jobs", json=body)
        return kind, resp.status_code

    return request


def workspace(fx: Fixture, analysis_every: int = 10) -> Request:
    counter = itertools.count()

    async def request(client: Any) -> tuple[str, int]:
        worst = (await client.get("/v1/studies?limit=20")).status_code
        worst = max(worst, (await client.get(f"/v1/images/{fx.render_image}/dzi.dzi")).status_code)
        level = 11  # full resolution of the 1280x960 image: 3 x 2 tiles of 510 px
        for col, row in ((0, 0), (1, 0), (0, 1), (1, 1)):
            tile = f"/v1/images/{fx.render_image}/dzi_files/{level}/{col}_{row}.jpeg"
            worst = max(worst, (await client.get(tile)).status_code)
        if next(counter) % analysis_every == 0 and fx.study:
            body = {"preset": JOB_PRESET, "image_ids": [fx.small_image]}
            resp = await client.post(f"/v1/studies/{fx.study}/analyses", json=body)
            worst = max(worst, resp.status_code)
        return "workspace", worst

    return request


def mixed(fx: Fixture, weights: dict[str, float], hit_ratio: float, png: bytes) -> Request:
    """One of the scenarios per request, drawn by ``weights`` (render, upload, job, infer,
    workspace)."""
    makers = {
        "render": render(fx, hit_ratio),
        "upload": upload(png),
        "job": job(fx, "job"),
        "infer": job(fx, "infer"),
        "workspace": workspace(fx),
    }
    names = list(weights)
    chosen = [makers[n] for n in names]
    cum = list(itertools.accumulate(weights[n] for n in names))

    async def request(client: Any) -> tuple[str, int]:
        pick = fx.rng.random() * cum[-1]
        index = next(i for i, c in enumerate(cum) if pick < c)
        return await chosen[index](client)

    return request
