"""Serving overhead: ``nuclei@production`` predicted over HTTP vs raw ONNX Runtime on the
same tensor, one request at a time, interleaved, at 256² and 1024².

    .venv/bin/python benchmarks/serving.py            # about 2 minutes on 2 cores
    .venv/bin/python benchmarks/serving.py --quick    # fewer rounds, about 40 s
    .venv/bin/python benchmarks/serving.py --base /tmp/base   # and a second gateway

Three paths per round, in rotating order (the load of a shared machine drifts, so each
sees the same conditions):

* ``raw_onnxruntime`` — ``session.run`` on the pre-normalised tensor of the round's image,
  in this process, ``intra_op_num_threads`` = the gateway's ``ml.inference_threads``;
* ``http_stored`` — ``POST /v1/models/nuclei@production/predict {"image_id"}`` to one
  ``pixelmill gateway`` process on 127.0.0.1 (SQLite, local storage): the mask is stored
  as a new image (each round predicts a different image, so no mask is deduplicated);
* ``http_inline`` — the same request with ``?store=false``: the mask PNG comes back as
  the response body and nothing is stored.

With ``--base CHECKOUT`` a second gateway runs that checkout's ``src`` (its own data
folder, the same images) and its two paths (``base_http_stored``, ``base_http_inline``)
join the same rotation, so before and after are measured side by side.

Ratios are medians of per-round ratios (each pair saw the same load). CPU per request is
also recorded, since a loaded machine stretches wall time: for raw ORT this process's
CPU around ``session.run``; for the HTTP paths the gateway process tree's CPU (from
/proc, summed over all rounds and divided: the clock ticks every 10 ms), which includes
the drift bookkeeping thread's work off the request path. After each served call the
benchmark pauses 20 ms, untimed, before its CPU reading: a client that waits for its
answer leaves the gateway that gap, where the deferred drift count runs, rather than
inside whichever timed call comes next (another gateway's, or raw ORT's in this
process). Results are printed as JSON and Markdown and saved under benchmarks/results.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from contextlib import ExitStack
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
#: the untimed pause after each served call (its deferred drift count: ~1 ms)
SETTLE_S = 0.02


def image(side: int, seed: int) -> np.ndarray:
    from pixelmill.ml.synthetic import NucleiConfig, nuclei_sample

    return nuclei_sample(seed, 0, NucleiConfig(size=(side, side)))[0]


def png(arr: np.ndarray) -> bytes:
    import pyvips

    return bytes(pyvips.Image.new_from_array(np.ascontiguousarray(arr)).write_to_buffer(".png"))


#: the HTTP paths of one gateway: name -> query parameters
MODES = {"http_stored": {}, "http_inline": {"store": "false"}}


def bench_size(
    gateways: dict[str, tuple[Any, list[int]]], raw: Any, spec: Any, side: int, rounds: int
) -> dict[str, Any]:
    """One size: upload ``rounds + 1`` images to each gateway (the +1 for the warm-up),
    then interleave raw ORT with both modes of every gateway (``gateways``: label
    prefix -> (client, process ids); ``""`` is this checkout's, ``"base_"`` the base's)."""
    from pixelmill.ml.preprocess import normalize, to_planes

    images = [image(side, seed) for seed in range(rounds + 1)]
    ids: dict[str, list[str]] = {}
    for prefix, (http, _) in gateways.items():
        ids[prefix] = []
        for img in images:
            r = http.post("/v1/images", content=png(img))
            r.raise_for_status()
            ids[prefix].append(r.json()["id"])
    tensors = [normalize(to_planes(img, 1), spec.p_low, spec.p_high)[None] for img in images]
    paths = ["raw_onnxruntime"] + [p + m for p in gateways for m in MODES]
    turn = dict.fromkeys(paths, 0)
    cpu = dict.fromkeys(paths, 0.0)

    def nxt(path: str) -> int:
        i = turn[path]
        turn[path] += 1
        return i

    clocks: dict[str, Any] = {"raw_onnxruntime": time.process_time}
    started: dict[str, float] = {}

    def served(prefix: str, mode: str) -> Any:
        http, pids = gateways[prefix]
        clocks[prefix + mode] = lambda: cpu_seconds(pids)

        def call() -> None:
            started[prefix + mode] = clocks[prefix + mode]()
            r = http.post(
                f"/v1/models/{REF}/predict",
                params=MODES[mode],
                json={"image_id": ids[prefix][nxt(prefix + mode)]},
            )
            r.raise_for_status()
            if mode == "http_inline":
                assert r.headers["content-type"] == "image/png"
            else:
                assert r.json()["mask_image_id"]

        return call

    def raw_call() -> None:
        started["raw_onnxruntime"] = time.process_time()
        raw.run(["output"], {"input": tensors[nxt("raw_onnxruntime")]})

    def settled(path: str) -> None:
        # a pause after each call, untimed: what a gateway defers past its answer (the
        # drift count) runs now, not inside the next path's timed call (raw ORT's too),
        # and the CPU reading after it counts it to this call
        if path != "raw_onnxruntime":
            time.sleep(SETTLE_S)
        cpu[path] += clocks[path]() - started[path]

    fns = {"raw_onnxruntime": raw_call}
    fns.update({p + m: served(p, m) for p in gateways for m in MODES})
    samples = interleaved(fns, rounds, after=settled)
    rows: dict[str, Any] = {k: latency_summary(v) for k, v in samples.items()}
    for path, total in cpu.items():  # the warm-up call counts too: rounds + 1 calls
        rows[path]["cpu_ms"] = round(total / (rounds + 1) * 1000, 1)
    for mode in paths[1:]:
        rows[f"{mode}_over_raw"] = round(paired_ratio(samples[mode], samples["raw_onnxruntime"]), 3)
        rows[f"{mode}_minus_raw_ms"] = round(
            rows[mode]["p50_ms"] - rows["raw_onnxruntime"]["p50_ms"], 2
        )
        rows[f"{mode}_cpu_over_raw"] = round(
            rows[mode]["cpu_ms"] / rows["raw_onnxruntime"]["cpu_ms"], 3
        )
    for mode in MODES if "base_" in gateways else ():
        rows[f"{mode}_over_base"] = round(paired_ratio(samples[mode], samples["base_" + mode]), 3)
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


def run(sizes: dict[int, int], base: Path | None) -> dict[str, Any]:
    import httpx

    from pixelmill.ml.onnx_model import session
    from pixelmill.ml.spec import InputSpec

    spec = InputSpec.model_validate(json.loads(CARD.read_text())["input_spec"])
    raw = session(MODEL.read_bytes(), threads=THREADS)
    checkouts = {"": None, **({"base_": base} if base is not None else {})}
    with tempfile.TemporaryDirectory(prefix="pm-serving-") as tmp, ExitStack() as stack:
        gateways = {}
        for prefix, checkout in checkouts.items():
            folder = Path(tmp) / (prefix or "this")
            env = {
                "PIXELMILL_DATA_DIR": str(folder / "data"),
                "PIXELMILL_ML__INFERENCE_THREADS": str(THREADS),
                "PIXELMILL_RATELIMIT__ENABLED": "false",
                "PIXELMILL_OBSERVABILITY__LOG_LEVEL": "WARNING",
            }
            if checkout is not None:  # the base's code in its own process
                env["PYTHONPATH"] = str(checkout / "src")
            key = setup(folder / "data")
            port = free_port()
            args = ["gateway", "--port", str(port), "--server-workers", "1"]
            server = start_server(prefix + "gateway", [*CLI, *args], folder / "gw.log", env=env)
            server.port = port
            stack.callback(server.stop, timeout=30)
            wait_http(server, "/healthz")
            headers = {"Authorization": f"Bearer {key}"}
            http = stack.enter_context(
                httpx.Client(base_url=server.url, headers=headers, timeout=120)
            )
            gateways[prefix] = (http, server.refresh())
        return {f"{s}x{s}": bench_size(gateways, raw, spec, s, n) for s, n in sizes.items()}


def markdown(r: dict[str, Any]) -> str:
    lines = [
        "| size | path | p50 ms | p99 ms | p50 / raw ORT (median of pairs) | CPU ms / request |"
        " CPU / raw ORT |",
        "|---|---|---|---|---|---|---|",
    ]
    for size, rows in r["sizes"].items():
        for path in [p for p in rows if isinstance(rows[p], dict)]:
            s = rows[path]
            ratio = rows.get(f"{path}_over_raw", 1.0)
            cpu = rows.get(f"{path}_cpu_over_raw", 1.0)
            lines.append(
                f"| {size} | {path} | {s['p50_ms']} | {s['p99_ms']} | {ratio} | {s['cpu_ms']} "
                f"| {cpu} |"
            )
    return "\n".join(lines)


def headline(r: dict[str, Any]) -> list[str]:
    lines = []
    for size, rows in r["sizes"].items():
        for prefix in ("", "base_") if "base_http_stored_over_raw" in rows else ("",):
            lines.append(
                f"{size}{' (base)' if prefix else ''}: HTTP stored / raw ORT "
                f"{rows[prefix + 'http_stored_over_raw']}x, HTTP inline / raw ORT "
                f"{rows[prefix + 'http_inline_over_raw']}x (median of pairs); CPU "
                f"{rows[prefix + 'http_stored_cpu_over_raw']}x / "
                f"{rows[prefix + 'http_inline_cpu_over_raw']}x"
            )
        if "http_stored_over_base" in rows:
            lines.append(
                f"{size}: this / base (median of pairs): stored {rows['http_stored_over_base']}x,"
                f" inline {rows['http_inline_over_base']}x"
            )
    return lines


def main() -> None:
    p = parser(__doc__, "10 rounds at 256², 4 at 1024²")
    p.add_argument(
        "--base",
        type=Path,
        help="a second checkout (its src/ served by a second gateway, interleaved)",
    )
    p.add_argument("--rounds", type=int, help="rounds at 256² (1024²: a quarter)")
    args = p.parse_args()
    sizes = {256: 10, 1024: 4} if args.quick else {256: 30, 1024: 8}
    if args.rounds:
        sizes = {256: args.rounds, 1024: max(2, args.rounds // 4)}
    result: dict[str, Any] = {
        "threads": THREADS,
        "base": str(args.base) if args.base else None,
        "load_avg_start": os.getloadavg(),
    }
    result["sizes"] = run(sizes, args.base)
    result["load_avg_end"] = os.getloadavg()
    print(json.dumps(result, indent=1))
    print(markdown(result))
    save("serving", result, headline(result))


if __name__ == "__main__":
    main()
