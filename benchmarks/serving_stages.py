"""Where a served prediction's wall time goes: one instrumented ``pixelmill`` gateway
(SQLite, local storage) answers stored and inline 256² predictions of
``nuclei@production`` one at a time, and timing wrappers around the named stages
(permission check, image access, read, decode, normalise, ONNX Runtime, mask encode,
storage, fsync, row insert, drift bookkeeping) record when each started and ended,
relative to the request's arrival at the ASGI app.

    PYTHONPATH=src .venv/bin/python benchmarks/serving_stages.py            # 30 of each
    PYTHONPATH=src .venv/bin/python benchmarks/serving_stages.py --no-drift # drift off

Prints, per mode, the median start, end and summed duration of each stage over the
requests (the first two left out) and the thread it ran on. Gaps between stages are
waits: thread hand-offs, the GIL, the event loop. This is a profile, not a benchmark:
the wrappers cost a few microseconds each, and the machine's load stretches everything
(say it beside any number taken from here). The ``--serve`` mode is the gateway side.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from statistics import median
from typing import Any

EVENTS: list[tuple[str, str, float, float]] = []


# -- the gateway side ------------------------------------------------------------------
def _wrap(owner: Any, name: str, label: str | None = None) -> None:
    fn = getattr(owner, name)

    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            thread = threading.current_thread().name
            EVENTS.append((label or name, thread, started, time.perf_counter()))

    setattr(owner, name, timed)


class _Stamps:
    """ASGI: the arrival and the last body message of each prediction; ``/__stages``
    answers the stamps gathered so far (JSON)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/__stages":
            body = json.dumps(EVENTS).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] != "http" or not scope["path"].endswith("/predict"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def stamped(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                EVENTS.append(("REQUEST", "loop", started, time.perf_counter()))

        await self.app(scope, receive, stamped)


def _install(drift: bool) -> None:
    from pixelmill.backends.metadata import images as image_rows
    from pixelmill.backends.storage import filesystem
    from pixelmill.ml import onnx_model
    from pixelmill.services import images
    from pixelmill.services.gateway.routes import predict
    from pixelmill.services.inference import bookkeeping, service

    _wrap(predict, "_may_predict", "may predict")
    _wrap(predict, "_may_use", "may use the image")
    _wrap(service.InferenceService, "_source", "read + decode")
    _wrap(service, "decode")
    _wrap(service, "encode_mask")
    _wrap(images.ImageService, "ingest_bytes", "store the mask")
    _wrap(filesystem.FilesystemStorage, "put", "storage put")
    _wrap(os, "fsync")
    _wrap(image_rows.ImageRepository, "add", "image row")
    _wrap(onnx_model.OnnxModel, "prepare", "normalise")
    _wrap(onnx_model.OnnxModel, "run", "onnxruntime")
    _wrap(bookkeeping.Bookkeeper, "_count", "drift bookkeeping")
    if not drift:
        bookkeeping.Bookkeeper.submit = lambda self, *args: None  # type: ignore[method-assign]


def factory() -> Any:
    from pixelmill.runtime.asgi import app_factory

    _install(drift=os.environ.get("STAGES_DRIFT", "1") == "1")
    return _Stamps(app_factory())


def serve(port: int) -> None:
    import uvicorn

    sys.path.insert(0, str(Path(__file__).parent))
    uvicorn.run(
        "serving_stages:factory", factory=True, host="127.0.0.1", port=port, log_level="warning"
    )


# -- the client side -------------------------------------------------------------------
def drive(count: int, drift: bool) -> list[tuple[str, str, float, float]]:
    import httpx
    from _harness import free_port
    from serving import REF, image, png, setup

    with tempfile.TemporaryDirectory(prefix="pm-stages-") as tmp:
        env = {
            **os.environ,
            "PIXELMILL_DATA_DIR": str(Path(tmp) / "data"),
            "PIXELMILL_ML__INFERENCE_THREADS": str(os.cpu_count() or 1),
            "PIXELMILL_RATELIMIT__ENABLED": "false",
            "PIXELMILL_OBSERVABILITY__LOG_LEVEL": "WARNING",
            "STAGES_DRIFT": "1" if drift else "0",
        }
        key = setup(Path(tmp) / "data")
        port = free_port()
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(600):
                try:
                    if httpx.get(url + "/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
                ids = [
                    http.post("/v1/images", content=png(image(256, seed))).json()["id"]
                    for seed in range(count + 2)
                ]
                for image_id in ids:  # stored, then inline, on each image
                    for params in ({}, {"store": "false"}):
                        answer = http.post(
                            f"/v1/models/{REF}/predict", params=params, json={"image_id": image_id}
                        )
                        answer.raise_for_status()
                return [tuple(e) for e in http.get("/__stages").json()]  # type: ignore[misc]
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)


def report(events: list[tuple[str, str, float, float]]) -> None:
    requests = sorted((e for e in events if e[0] == "REQUEST"), key=lambda e: e[2])
    for offset, mode in enumerate(("stored", "inline")):
        mine = requests[offset::2][2:]  # the first two: warm-up
        print(f"== {mode}: {median((b - a) * 1000 for _, _, a, b in mine):.2f} ms in the server")
        stages: dict[str, list[tuple[float, float, float, str]]] = {}
        for _, _, arrived, done in mine:
            inside: dict[str, list[tuple[str, float, float]]] = {}
            for label, thread, a, b in events:
                if label != "REQUEST" and arrived <= a <= done:
                    inside.setdefault(label, []).append((thread, a, b))
            for label, spans in inside.items():
                start = (spans[0][1] - arrived) * 1000
                end = (spans[-1][2] - arrived) * 1000
                spent = sum(b - a for _, a, b in spans) * 1000
                stages.setdefault(label, []).append((start, end, spent, spans[0][0]))
        rows = [
            (median(s[0] for s in v), median(s[1] for s in v), median(s[2] for s in v), k, v[0][3])
            for k, v in stages.items()
        ]
        for start, end, spent, label, thread in sorted(rows):
            print(f"  {label:20s} {start:8.2f} -> {end:8.2f} ms  {spent:6.2f} ms  [{thread}]")


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--count", type=int, default=30, help="predictions of each mode")
    p.add_argument("--no-drift", action="store_true", help="drift bookkeeping off")
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        serve(args.serve)
        return
    print(f"load average {os.getloadavg()}")
    report(drive(args.count, drift=not args.no_drift))
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
