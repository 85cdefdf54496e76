"""The study's scenarios under Locust, for interactive and distributed-client runs::

    PYTHONPATH=src:. .venv/bin/locust -f benchmarks/study/locustfile.py --host http://127.0.0.1:8000 \\
        --headless -u 50 -r 10 -t 60s --csv benchmarks/.work/study/locust

Set ``PIXELMILL_API_KEY`` (a write key) and ``STUDY_HIT_RATIO`` (render cache hits,
default 0.8). Each user uploads its fixture on start, then runs the scenario of its class.

Locust users are closed loops (a user waits for its answer before its next request), so
its latency under overload hides the queue (coordinated omission) even with
``constant_throughput``. The experiments therefore use the open-loop driver of
:mod:`benchmarks.study.openloop` (arrival times fixed before the run, latency from the
intended start, HDR histograms); this file is for exploring, not for the headline numbers.
"""

from __future__ import annotations

import os
import random

from benchmarks._harness.clients import small_png
from benchmarks.study import scenarios
from locust import HttpUser, between, task

HIT = float(os.environ.get("STUDY_HIT_RATIO", "0.8"))
KEY = os.environ.get("PIXELMILL_API_KEY", "")


class _Study(HttpUser):
    abstract = True
    wait_time = between(0.05, 0.2)

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Bearer {KEY}"
        png = small_png(256, 256, seed=random.randrange(1000))
        image = self.client.post("/v1/images", data=png).json()["id"]
        study = self.client.post("/v1/studies", json={"name": "locust", "modality": "fluorescence"})
        self.fx = scenarios.Fixture(image, "", image, study.json().get("id", ""))
        if self.fx.study:
            self.client.post(f"/v1/studies/{self.fx.study}/images", json={"image_id": image})
        self.png = png


class Render(_Study):
    weight = 6

    @task
    def render(self) -> None:
        params = scenarios.render_params(self.fx, HIT)
        path = scenarios.pixelmill_render_path(self.fx.render_image, params)
        self.client.get(path, name="render")


class UploadBurst(_Study):
    weight = 1

    @task
    def upload(self) -> None:
        self.client.post("/v1/images", data=self.png, name="upload")


class Jobs(_Study):
    weight = 2

    @task(3)
    def segmentation(self) -> None:
        self.client.post("/v1/jobs", json=scenarios.job_body(self.fx, "job"), name="job: preset")

    @task(1)
    def inference(self) -> None:
        self.client.post("/v1/jobs", json=scenarios.job_body(self.fx, "infer"), name="job: nuclei")


class Workspace(_Study):
    weight = 2

    @task
    def session(self) -> None:
        self.client.get("/v1/studies?limit=20", name="studies")
        image = self.fx.render_image
        self.client.get(f"/v1/images/{image}/dzi.dzi", name="dzi")
        self.client.get(f"/v1/images/{image}/dzi_files/8/0_0.jpeg", name="tile")
        if self.fx.study and random.random() < 0.1:
            body = {"preset": scenarios.JOB_PRESET, "image_ids": [image]}
            self.client.post(f"/v1/studies/{self.fx.study}/analyses", json=body, name="analysis")
