"""Experiment f: model inference under load against its peer, raw ONNX Runtime, in the
same run.

Closed-loop clients 1, 2, 4 post ``POST /v1/models/nuclei@production/predict
{"image_id"}`` to each system (the mask stored as a new image, as by default; every
request a different 256x256 synthetic nuclei image of a pool, so no mask is
deduplicated while the pool lasts). The peer is the bare floor of the same work: as
many threads as clients, each calling ``session.run`` of the same ONNX model on the
pre-normalised tensors of the same images in this process, with the gateway's
intra-op threads (one per core), measured right before each served step (the pair sees
the same machine). Headline: predictions/s and CPU ms per prediction
over the floor's at the same concurrency. The served side also decodes the stored
original, normalises, encodes and stores the mask and keeps the drift statistics; it
may batch concurrent requests (``ml.batching``), which the floor does not.
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

import httpx
from benchmarks._harness.procs import CORES, ROOT
from benchmarks.study import openloop, report, systems
from benchmarks.study.common import client, headers, measured
from benchmarks.study.load import _by_system, _command, _row, names, skipped, started

USERS = [1, 2, 4]
POOL = 48  # distinct images per system: more than the quick run predicts per step
REF = "nuclei@production"
MODELS = ROOT / "src" / "pixelmill" / "ml" / "models"  # the shipped model and its card


def _images() -> list[Any]:
    from pixelmill.ml.synthetic import NucleiConfig, nuclei_sample

    return [nuclei_sample(seed, 0, NucleiConfig(size=(256, 256)))[0] for seed in range(POOL)]


def _png(arr: Any) -> bytes:
    import numpy as np
    import pyvips

    return bytes(pyvips.Image.new_from_array(np.ascontiguousarray(arr)).write_to_buffer(".png"))


def _upload(system: systems.System, pngs: list[bytes]) -> list[str]:
    with client(system) as http:
        return [http.post("/v1/images", content=p).raise_for_status().json()["id"] for p in pngs]


def _warm(system: systems.System, ids: list[str]) -> None:
    """Load the model in every gateway process: a new connection per request, so the
    kernel (embedded) or HAProxy (distributed) spreads them over the processes."""
    for image_id in ids[:8]:
        httpx.post(
            f"{system.url}/v1/models/{REF}/predict",
            json={"image_id": image_id},
            headers=headers(system),
            timeout=120,
        ).raise_for_status()


def _served(ids: list[str]) -> openloop.Request:
    turn = iter(range(1 << 30))

    async def request(http: Any) -> tuple[str, int]:
        image_id = ids[next(turn) % len(ids)]
        resp = await http.post(f"/v1/models/{REF}/predict", json={"image_id": image_id})
        return "predict", resp.status_code

    return request


def _floor(users: int, seconds: float, tensors: list[Any]) -> dict[str, Any]:
    """``users`` threads calling ``session.run`` for ``seconds``: predictions/s, latency
    and this process's CPU per prediction."""
    import numpy as np

    from pixelmill.ml.onnx_model import session

    raw = session((MODELS / "nuclei.onnx").read_bytes(), threads=CORES)
    raw.run(["output"], {"input": tensors[0]})  # warm-up, outside the count
    latencies: list[float] = []
    lock = threading.Lock()
    t0 = time.perf_counter()

    def user(offset: int) -> None:
        i = offset
        while time.perf_counter() - t0 < seconds:
            start = time.perf_counter()
            raw.run(["output"], {"input": tensors[i % len(tensors)]})
            with lock:
                latencies.append(time.perf_counter() - start)
            i += users

    cpu0 = time.process_time()
    threads = [threading.Thread(target=user, args=(k,)) for k in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    ms = np.asarray(latencies) * 1000
    return {
        "system": "raw ONNX Runtime",
        "users": users,
        "throughput_rps": len(latencies) / wall,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "failed": 0,
        "cpu_ms_per_request": cpu * 1000 / max(len(latencies), 1),
    }


def exp_f(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Served predictions vs raw ONNX Runtime at 1, 2, 4 clients (module doc)."""
    from pixelmill.ml.preprocess import normalize, to_planes

    images = _images()
    pngs = [_png(img) for img in images]
    spec = _spec()
    tensors = [normalize(to_planes(img, 1), spec.p_low, spec.p_high)[None] for img in images]
    rows: list[dict[str, Any]] = []
    for name in names():
        with started(name) as (system, _):
            ids = _upload(system, pngs)
            _warm(system, ids)
            for users in USERS:
                # the floor right before each measurement: a shared machine's speed
                # drifts, and each pair sees the same conditions
                floor = _floor(users, args.seconds, tensors)
                floor["system"] = f"raw ONNX Runtime (beside {name})"
                request, key = _served(ids), headers(system)
                result, _, cpu = measured(
                    system.pids,
                    lambda u=users, r=request, h=key, url=system.url: openloop.closed(
                        url, r, u, args.seconds, headers=h
                    ),
                )
                served = _row(system.name, "users", users, result, cpu)
                served["rps_over_raw"] = served["throughput_rps"] / floor["throughput_rps"]
                served["cpu_over_raw"] = served["cpu_ms_per_request"] / floor["cpu_ms_per_request"]
                rows += [floor, served]
                print(
                    f"f {name:12} users={users} {served['throughput_rps']:6.1f}/s, raw ORT "
                    f"{floor['throughput_rps']:6.1f}/s: {served['rps_over_raw']:.2f}x",
                    flush=True,
                )
    report.write_csv("f_inference", rows)
    plot = _figure(rows)
    body = _headline(rows) + skipped() + f"\n\n![inference vs raw ORT]({plot})\n\n"
    body += report.table(
        rows,
        [
            "system",
            "users",
            "throughput_rps",
            "rps_over_raw",
            "p50_ms",
            "p99_ms",
            "failed",
            "cpu_ms_per_request",
            "cpu_over_raw",
        ],
    )
    title = "f. Model inference vs raw ONNX Runtime (nuclei@production, 256x256)"
    report.update_page("f", title, body, _command("f", args))
    return rows


def _spec() -> Any:
    import json

    from pixelmill.ml.spec import InputSpec

    card = json.loads((MODELS / "nuclei.json").read_text())
    return InputSpec.model_validate(card["input_spec"])


def _figure(rows: list[dict[str, Any]]) -> str:
    fig, ax = report.figure()
    for name, mine in _by_system(rows):
        ax.plot([r["users"] for r in mine], [r["throughput_rps"] for r in mine], "o-", label=name)
    ax.set(xlabel="concurrent clients (closed loop)", ylabel="predictions / s", xticks=USERS)
    ax.set_title("f. nuclei@production at 256x256: served vs raw ONNX Runtime")
    ax.legend()
    return report.save_plot(fig, "f_inference")


def _headline(rows: list[dict[str, Any]]) -> str:
    parts = []
    for name, mine in _by_system(rows):
        if name.startswith("raw ONNX Runtime"):
            continue
        ratios = ", ".join(
            f"{r['users']}: {r['rps_over_raw']:.2f}x ({r['cpu_over_raw']:.2f}x CPU)" for r in mine
        )
        parts.append(f"**{name}** / raw ONNX Runtime by clients — {ratios}")
    return (
        "Predictions/s over the raw ONNX Runtime floor at the same concurrency (CPU per "
        "prediction over the floor's in brackets): " + "; ".join(parts) + "."
    )
