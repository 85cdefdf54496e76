"""ML benchmark: serving latency/throughput vs raw ONNX Runtime and torch eager, dynamic
batching on/off at concurrency 8, training throughput vs a bare torch loop, RSS.

    .venv/bin/python benchmarks/ml.py            # about 3-5 minutes on 2 cores
    .venv/bin/python benchmarks/ml.py --quick    # fewer repetitions, no 2048², about 1 min

The model is the shipped ``nuclei`` U-Net (depth 4, width 16). Everything runs on
127.0.0.1 / in-process and stops by itself. Results are printed as JSON and Markdown.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from _harness import ROOT, interleaved, latency_summary, paired_ratio, parser, save

MODEL = ROOT / "src/pixelmill/ml/models/nuclei.onnx"
CARD = ROOT / "src/pixelmill/ml/models/nuclei.json"
THREADS = os.cpu_count() or 1


def image(side: int, seed: int = 0) -> np.ndarray:
    from pixelmill.ml.synthetic import NucleiConfig, nuclei_sample

    return nuclei_sample(seed, 0, NucleiConfig(size=(side, side)))[0]


def bench_inference(reps: dict[int, int], torch_side: int = 1024) -> dict[str, Any]:
    """Raw ORT session.run (pre-normalised tensor) vs the served path (InferenceService:
    normalisation, tiling, batcher, drift) vs torch eager, one request at a time."""
    import torch

    from pixelmill.ml.drift import DriftMonitor
    from pixelmill.ml.networks import UNet, WithActivation
    from pixelmill.ml.onnx_model import OnnxModel, session
    from pixelmill.ml.preprocess import normalize, to_planes
    from pixelmill.ml.spec import InputSpec

    card = json.loads(CARD.read_text())
    spec = InputSpec.model_validate(card["input_spec"])
    onnx = MODEL.read_bytes()
    raw = session(onnx, threads=THREADS)
    # as the service runs it by default: ml.tile_size 1024, overlap 64, batching on
    served = OnnxModel(
        onnx, spec, threads=THREADS, max_batch=8, max_wait=0.005, overlap=64, tile=1024
    )
    cfg = card["train_config"]
    torch.set_num_threads(THREADS)
    net = WithActivation(UNet(1, 1, depth=cfg["depth"], width=cfg["width"]), "sigmoid").eval()
    out: dict[str, Any] = {}
    for side, n in reps.items():
        img = image(side)
        x = normalize(to_planes(img, 1), spec.p_low, spec.p_high)[None]
        monitor = DriftMonitor(card["reference"])

        def serve(img: np.ndarray = img, monitor: DriftMonitor = monitor) -> None:
            served.predict(img)  # normalise, tile, batch, run, threshold
            monitor.observe(img)  # and the drift statistics, as the service does

        paths: dict[str, Any] = {
            "raw_onnxruntime": lambda x=x: raw.run(["output"], {"input": x}),
            "served_in_process": serve,
        }
        if side <= torch_side:
            xt = torch.from_numpy(x)

            def eager(xt: Any = xt) -> None:
                with torch.inference_mode():
                    net(xt)

            paths["torch_eager"] = eager
        # interleaved (raw, served, torch, served, torch, raw, ...): the load of a shared
        # machine drifts over seconds, so each path sees the same conditions
        samples = interleaved(paths, n)
        rows: dict[str, Any] = {k: latency_summary(v) for k, v in samples.items()}
        rows["tiles"] = served.predict(img).tiles
        rows["served_over_raw_p50"] = round(
            rows["served_in_process"]["p50_ms"] / rows["raw_onnxruntime"]["p50_ms"], 3
        )
        rows["served_over_raw_median_pair"] = round(
            paired_ratio(samples["served_in_process"], samples["raw_onnxruntime"]), 3
        )
        out[f"{side}x{side}"] = rows
    served.close()
    return out


def bench_batching(per_thread: int, concurrency: int = 8, rounds: int = 3) -> dict[str, Any]:
    """Throughput of the served path at ``concurrency`` with batching on and off."""
    from pixelmill.ml.onnx_model import OnnxModel
    from pixelmill.ml.spec import InputSpec

    spec = InputSpec.model_validate(json.loads(CARD.read_text())["input_spec"])
    onnx = MODEL.read_bytes()
    imgs = [image(256, seed) for seed in range(concurrency)]
    out: dict[str, Any] = {}
    for mode in ("off", "on") * rounds:  # interleaved: load on a shared box drifts
        model = OnnxModel(
            onnx, spec, threads=THREADS, batching=mode == "on", max_batch=8, max_wait=0.005
        )
        model.predict(imgs[0])
        lat: list[float] = []
        lock = threading.Lock()

        def worker(
            i: int, model: OnnxModel = model, lat: list[float] = lat, lock: threading.Lock = lock
        ) -> None:
            for _ in range(per_thread):
                t = time.perf_counter()
                model.predict(imgs[i])
                with lock:
                    lat.append(time.perf_counter() - t)

        start, cpu = time.perf_counter(), time.process_time()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(worker, range(concurrency)))
        wall = time.perf_counter() - start
        result = latency_summary(lat, wall)
        # CPU per request does not depend on how much of a shared machine we got
        result["cpu_ms_per_request"] = round((time.process_time() - cpu) / len(lat) * 1000, 2)
        if model.batcher is not None:
            result["mean_batch"] = round(model.batcher.items / max(model.batcher.batches, 1), 2)
        model.close()
        out.setdefault(f"batching_{mode}", []).append(result)
    best: dict[str, Any] = {}
    for key, runs in out.items():
        median = sorted(runs, key=lambda r: r["per_s"])[len(runs) // 2]
        best[key] = median
    off, on = out["batching_off"], out["batching_on"]
    rate = paired_ratio([r["per_s"] for r in on], [r["per_s"] for r in off])
    best["on_over_off_throughput"] = round(rate, 3)
    cpu = paired_ratio(
        [r["cpu_ms_per_request"] for r in off], [r["cpu_ms_per_request"] for r in on]
    )
    best["on_over_off_requests_per_cpu_second"] = round(cpu, 3)
    best["runs"] = out
    return best


def bench_training(steps: int, rounds: int = 2) -> dict[str, Any]:
    """images/min at 256x256, batch 8: pixelmill's train() vs a bare torch loop."""
    import torch

    from pixelmill.ml import datasets, synthetic, training
    from pixelmill.ml.networks import UNet
    from pixelmill.ml.spec import TrainSpec

    pairs = [(f"b{i}", *synthetic.nuclei_sample(9, i)) for i in range(16)]
    parsed = datasets.parse(datasets.build_archive(pairs), val_fraction=0.0)
    spec = TrainSpec(
        depth=4, width=16, patch=256, batch_size=8, epochs=1, steps_per_epoch=steps, threads=THREADS
    )

    def ours() -> float:
        events: list[dict[str, Any]] = []
        training.train(spec, parsed, events.append)
        return float(events[-1]["images_per_second"] * 60)

    def bare() -> float:
        # the same network, optimizer, memory format and loss (BCE + soft Dice) on fixed
        # tensors: no data loading, cropping or augmentation
        torch.manual_seed(0)
        torch.set_num_threads(THREADS)
        net = UNet(1, 1, depth=4, width=16).to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(net.parameters(), lr=2e-3)
        x = torch.rand(8, 1, 256, 256).contiguous(memory_format=torch.channels_last)
        y = (torch.rand(8, 1, 256, 256) > 0.7).float()
        start = time.perf_counter()
        for _ in range(steps):
            logits = net(x)
            prob = logits.sigmoid()
            dice = (2 * (prob * y).sum((1, 2, 3)) + 1) / (
                prob.sum((1, 2, 3)) + y.sum((1, 2, 3)) + 1
            )
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y) + (
                1 - dice.mean()
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return steps * 8 / (time.perf_counter() - start) * 60

    runs = {"ours": [], "bare": []}  # type: dict[str, list[float]]
    for _ in range(rounds):
        runs["ours"].append(ours())
        runs["bare"].append(bare())
    ours_ipm = float(np.median(runs["ours"]))
    bare_ipm = float(np.median(runs["bare"]))
    return {
        "pixelmill_images_per_min": round(ours_ipm, 1),
        "bare_torch_images_per_min": round(bare_ipm, 1),
        "ratio": round(paired_ratio(runs["ours"], runs["bare"]), 3),
        "steps": steps,
        "rounds": runs,
    }


RSS_SCRIPT = r"""
import json, resource, sys
from pathlib import Path
from pixelmill.runtime.container import build_container
from pixelmill.settings import Settings
def rss(field="VmRSS"):
    # /proc, not getrusage: ru_maxrss survives fork+exec and would show the parent's peak
    return int(Path("/proc/self/status").read_text().split(field + ":")[1].split()[0]) // 1024
c = build_container(Settings(data_dir=Path(sys.argv[1])))
base = rss()
c.models.ensure_default()
svc = c.inference
svc.load("nuclei@production")
loaded = rss()
import numpy as np
sys.path.insert(0, sys.argv[2])
from pixelmill.ml.synthetic import NucleiConfig, nuclei_sample
img = nuclei_sample(0, 0, NucleiConfig(size=(1024, 1024)))[0]
loaded_model = svc.load("nuclei@production")
svc.run(loaded_model, img)
after = rss()
print(json.dumps({"gateway_container_mb": base, "model_loaded_mb": loaded, "after_1024_predict_mb": after,
                  "peak_mb": rss("VmHWM"),
                  "torch_imported": "torch" in sys.modules}))
"""


def bench_rss() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [sys.executable, "-c", RSS_SCRIPT, tmp, str(ROOT / "src")],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def markdown(r: dict[str, Any]) -> str:
    lines = ["| size | path | p50 ms | p99 ms | req/s |", "|---|---|---|---|---|"]
    for size, rows in r["inference"].items():
        for path in ("raw_onnxruntime", "served_in_process", "torch_eager"):
            if path not in rows:
                continue
            s = rows[path]
            lines.append(f"| {size} | {path} | {s['p50_ms']} | {s['p99_ms']} | {s['per_s']} |")
        lines.append(
            f"| {size} | served / raw p50 ({rows['tiles']} tile(s)) | {rows['served_over_raw_p50']} | | |"
        )
    b = r["batching"]
    lines += [
        "",
        "| concurrency 8, 256x256 | p50 ms | p99 ms | req/s | CPU ms/req | mean batch |",
        "|---|---|---|---|---|---|",
        f"| batching off | {b['batching_off']['p50_ms']} | {b['batching_off']['p99_ms']} | {b['batching_off']['per_s']} | {b['batching_off']['cpu_ms_per_request']} | 1 |",
        f"| batching on | {b['batching_on']['p50_ms']} | {b['batching_on']['p99_ms']} | {b['batching_on']['per_s']} | {b['batching_on']['cpu_ms_per_request']} | {b['batching_on'].get('mean_batch')} |",
        f"| on / off | | | {b['on_over_off_throughput']} | {b['on_over_off_requests_per_cpu_second']} (req per CPU-s) | |",
    ]
    t = r["training"]
    lines += [
        "",
        "| training 256x256, batch 8 | images/min |",
        "|---|---|",
        f"| pixelmill train() | {t['pixelmill_images_per_min']} |",
        f"| bare torch loop | {t['bare_torch_images_per_min']} |",
        f"| ratio | {t['ratio']} |",
    ]
    m = r["rss"]
    lines += [
        "",
        f"RSS: container {m['gateway_container_mb']} MB, with nuclei loaded {m['model_loaded_mb']} MB, "
        f"after a 1024x1024 prediction {m['after_1024_predict_mb']} MB (peak {m['peak_mb']} MB); "
        f"torch imported: {m['torch_imported']}.",
    ]
    return "\n".join(lines)


def main() -> None:
    p = parser(__doc__, "fewer repetitions, no 2048², torch eager at 256² only, 1 round")
    p.add_argument("--only", choices=["inference", "batching", "training", "rss"], action="append")
    args = p.parse_args()
    quick = args.quick
    only = set(args.only or ["inference", "batching", "training", "rss"])
    result: dict[str, Any] = {"threads": THREADS, "load_avg_start": os.getloadavg()}
    if "inference" in only:
        sizes = {256: 6, 1024: 2} if quick else {256: 40, 1024: 10, 2048: 4}
        result["inference"] = bench_inference(sizes, torch_side=256 if quick else 1024)
    if "batching" in only:
        result["batching"] = bench_batching(2 if quick else 10, rounds=1 if quick else 3)
    if "training" in only:
        result["training"] = bench_training(2 if quick else 10, rounds=1 if quick else 2)
    if "rss" in only:
        result["rss"] = bench_rss()
    result["load_avg_end"] = os.getloadavg()
    result["peak_rss_mb_this_process"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(json.dumps(result, indent=1))
    if only == {"inference", "batching", "training", "rss"}:
        print(markdown(result))
    save("ml", result, headline(result))


def headline(r: dict[str, Any]) -> list[str]:
    """Served / raw ONNX Runtime, batching on / off, train() / bare torch."""
    lines = []
    if "inference" in r:
        lines.append(
            "served / raw ONNX Runtime p50 (median of pairs): "
            + ", ".join(
                f"{k} {v['served_over_raw_median_pair']}x" for k, v in r["inference"].items()
            )
        )
    if "batching" in r:
        b = r["batching"]
        lines.append(
            f"batching on / off at concurrency 8: {b['on_over_off_throughput']}x req/s, "
            f"{b['on_over_off_requests_per_cpu_second']}x requests per CPU-second"
        )
    if "training" in r:
        lines.append(f"train() / bare torch loop images per minute: {r['training']['ratio']}x")
    return lines


if __name__ == "__main__":
    main()
