"""Serving overhead: ``nuclei@production`` predicted over HTTP vs raw ONNX Runtime on the
same tensor, one request at a time, interleaved, at 256² and 1024².

    .venv/bin/python benchmarks/serving.py            # about 2 minutes on 2 cores
    .venv/bin/python benchmarks/serving.py --quick    # fewer rounds, about 40 s

Three paths per round, in rotating order (the load of a shared machine drifts, so each
sees the same conditions):

* ``raw_onnxruntime`` — ``session.run`` on the pre-normalised tensor of the round's image,
  in this process, ``intra_op_num_threads`` = the gateway's ``ml.inference_threads``;
* ``http_stored`` — ``POST /v1/models/nuclei@production/predict {"image_id"}`` to one
  ``pixelmill gateway`` process on 127.0.0.1 (SQLite, local storage): the mask is stored
  as a new image (each round predicts a different image, so no mask is deduplicated);
* ``http_inline`` — the same request with ``?store=false``: the mask PNG comes back as
  the response body and nothing is stored.

Ratios are medians of per-round ratios (each pair saw the same load). CPU per request is
also recorded, since a loaded machine stretches wall time: for raw ORT this process's
CPU around ``session.run``; for the HTTP paths the gateway process tree's CPU (from
/proc, summed over all rounds and divided: the clock ticks every 10 ms), which includes
the drift bookkeeping thread's work off the request path. Results are
printed as JSON and Markdown and saved under benchmarks/results.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _harness import (
    CLI,
    ROOT,
    cpu_seconds,
    free_port,
    interleaved,
    latency_summary,
    paired_ratio,
    parser,
    save,
    start_server,
    wait_http,
)

MODEL = ROOT / "src/pixelmill/ml/models/nuclei.onnx"
CARD = ROOT / "src/pixelmill/ml/models/nuclei.json"
THREADS = os.cpu_count() or 1
REF = "nuclei@production"


def image(side: int, seed: int) -> np.ndarray:
    from pixelmill.ml.synthetic import NucleiConfig, nuclei_sample

    return nuclei_sample(seed, 0, NucleiConfig(size=(side, side)))[0]


def png(arr: np.ndarray) -> bytes:
    import pyvips

    return bytes(pyvips.Image.new_from_array(np.ascontiguousarray(arr)).write_to_buffer(".png"))


def bench_size(
    http: Any, raw: Any, spec: Any, side: int, rounds: int, pids: list[int]
) -> dict[str, Any]:
    """One size: upload ``rounds + 1`` images (the +1 for the warm-up), then interleave."""
    from pixelmill.ml.preprocess import normalize, to_planes

    images = [image(side, seed) for seed in range(rounds + 1)]
    ids = []
    for img in images:
        r = http.post("/v1/images", content=png(img))
        r.raise_for_status()
        ids.append(r.json()["id"])
    tensors = [normalize(to_planes(img, 1), spec.p_low, spec.p_high)[None] for img in images]
    turn = {"raw_onnxruntime": 0, "http_stored": 0, "http_inline": 0}

    def nxt(path: str) -> int:
        i = turn[path]
        turn[path] += 1
        return i

    def raw_run() -> None:
        raw.run(["output"], {"input": tensors[nxt("raw_onnxruntime")]})

    def stored() -> None:
        r = http.post(f"/v1/models/{REF}/predict", json={"image_id": ids[nxt("http_stored")]})
        r.raise_for_status()
        assert r.json()["mask_image_id"]

    def inline() -> None:
        r = http.post(
            f"/v1/models/{REF}/predict",
            params={"store": "false"},
            json={"image_id": ids[nxt("http_inline")]},
        )
        r.raise_for_status()
        assert r.headers["content-type"] == "image/png"

    cpu = {"raw_onnxruntime": 0.0, "http_stored": 0.0, "http_inline": 0.0}

    def counted(path: str, fn: Any, clock: Any) -> Any:
        def run() -> None:
            before = clock()
            fn()
            cpu[path] += clock() - before

        return run

    def served() -> float:
        return cpu_seconds(pids)

    samples = interleaved(
        {
            "raw_onnxruntime": counted("raw_onnxruntime", raw_run, time.process_time),
            "http_stored": counted("http_stored", stored, served),
            "http_inline": counted("http_inline", inline, served),
        },
        rounds,
    )
    rows: dict[str, Any] = {k: latency_summary(v) for k, v in samples.items()}
    for path, total in cpu.items():  # the warm-up call counts too: rounds + 1 calls
        rows[path]["cpu_ms"] = round(total / (rounds + 1) * 1000, 1)
    for mode in ("http_stored", "http_inline"):
        rows[f"{mode}_over_raw"] = round(paired_ratio(samples[mode], samples["raw_onnxruntime"]), 3)
        rows[f"{mode}_minus_raw_ms"] = round(
            rows[mode]["p50_ms"] - rows["raw_onnxruntime"]["p50_ms"], 2
        )
        rows[f"{mode}_cpu_over_raw"] = round(
            rows[mode]["cpu_ms"] / rows["raw_onnxruntime"]["cpu_ms"], 3
        )
    rows["rounds"] = rounds
    return rows


def setup(data_dir: Path) -> str:
    """Create the database, register the shipped model as ``nuclei@production`` and
    return a write key of a member (the shipped model is usable by all)."""
    from pixelmill.runtime.container import build_container
    from pixelmill.settings import Settings

    container = build_container(Settings(data_dir=data_dir), migrate=True)
    try:
        container.models.ensure_default()
        user = container.users.create("bench", site_role="member")
        return str(container.keys.create("bench", "write", user_id=user.id)[1])
    finally:
        container.close()


def run(sizes: dict[int, int]) -> dict[str, Any]:
    import httpx

    from pixelmill.ml.onnx_model import session
    from pixelmill.ml.spec import InputSpec

    spec = InputSpec.model_validate(json.loads(CARD.read_text())["input_spec"])
    raw = session(MODEL.read_bytes(), threads=THREADS)
    with tempfile.TemporaryDirectory(prefix="pm-serving-") as tmp:
        env = {
            "PIXELMILL_DATA_DIR": str(Path(tmp) / "data"),
            "PIXELMILL_ML__INFERENCE_THREADS": str(THREADS),
            "PIXELMILL_RATELIMIT__ENABLED": "false",
            "PIXELMILL_OBSERVABILITY__LOG_LEVEL": "WARNING",
        }
        key = setup(Path(tmp) / "data")
        port = free_port()
        args = ["gateway", "--port", str(port), "--server-workers", "1"]
        server = start_server("gateway", [*CLI, *args], Path(tmp) / "gw.log", env=env)
        server.port = port
        try:
            wait_http(server, "/healthz")
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=120) as http:
                pids = server.refresh()
                return {
                    f"{s}x{s}": bench_size(http, raw, spec, s, n, pids) for s, n in sizes.items()
                }
        finally:
            server.stop(timeout=30)


def markdown(r: dict[str, Any]) -> str:
    lines = [
        "| size | path | p50 ms | p99 ms | p50 / raw ORT (median of pairs) | CPU ms / request |"
        " CPU / raw ORT |",
        "|---|---|---|---|---|---|---|",
    ]
    for size, rows in r["sizes"].items():
        for path in ("raw_onnxruntime", "http_stored", "http_inline"):
            s = rows[path]
            ratio = rows.get(f"{path}_over_raw", 1.0)
            cpu = rows.get(f"{path}_cpu_over_raw", 1.0)
            lines.append(
                f"| {size} | {path} | {s['p50_ms']} | {s['p99_ms']} | {ratio} | {s['cpu_ms']} "
                f"| {cpu} |"
            )
    return "\n".join(lines)


def headline(r: dict[str, Any]) -> list[str]:
    return [
        f"{size}: HTTP stored / raw ORT {rows['http_stored_over_raw']}x, "
        f"HTTP inline / raw ORT {rows['http_inline_over_raw']}x (median of pairs); CPU "
        f"{rows['http_stored_cpu_over_raw']}x / {rows['http_inline_cpu_over_raw']}x"
        for size, rows in r["sizes"].items()
    ]


def main() -> None:
    p = parser(__doc__, "10 rounds at 256², 4 at 1024²")
    args = p.parse_args()
    sizes = {256: 10, 1024: 4} if args.quick else {256: 30, 1024: 8}
    result: dict[str, Any] = {"threads": THREADS, "load_avg_start": os.getloadavg()}
    result["sizes"] = run(sizes)
    result["load_avg_end"] = os.getloadavg()
    print(json.dumps(result, indent=1))
    print(markdown(result))
    save("serving", result, headline(result))


if __name__ == "__main__":
    main()
