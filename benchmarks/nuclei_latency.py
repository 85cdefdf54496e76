"""Inference latency of two nuclei models on one 1024² tile, interleaved: the ONNX
session alone, and the whole served path (normalise, run, threshold, objects with each
model's own post-processing: seeded watershed for a distance head, the classical
splitter for a one-channel mask).

    .venv/bin/python benchmarks/nuclei_latency.py --old OLD.onnx --new NEW.onnx
    .venv/bin/python benchmarks/nuclei_latency.py --old ... --new ... --quick   # 4 rounds

Both models run in this process with the same settings (``threads`` intra-op threads,
no batching, the whole 1024² image as one tile); every round times old and new on the
same synthetic crowded image (generator seed 11, a new image index each round) in
alternating order. Reported: median wall ms and CPU ms (this process) per call, and the
median over rounds of the per-round new / old ratios.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from _harness import parse, parser, save

SIDE = 1024


def load(path: Path, threads: int) -> Any:
    from pixelmill.ml.onnx_model import OnnxModel
    from pixelmill.ml.spec import InputSpec

    spec = InputSpec.model_validate(json.loads(path.with_suffix(".json").read_text())["input_spec"])
    return OnnxModel(path.read_bytes(), spec, batching=False, threads=threads, tile=SIDE)


def timed(fn: Any) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def main() -> None:
    p = parser(__doc__, "4 rounds")
    p.add_argument("--old", type=Path, required=True)
    p.add_argument("--new", type=Path, required=True)
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--threads", type=int, default=2)
    args = parse(p, {"rounds": 4})
    from pixelmill.ml.synthetic import NucleiConfig, nuclei_sample

    models = {"old": load(args.old, args.threads), "new": load(args.new, args.threads)}
    cfg = NucleiConfig(size=(SIDE, SIDE))

    def served(model: Any, image: np.ndarray) -> None:
        prediction = model.predict(image)
        model.spec.objects(prediction.mask > 0, prediction.distance)

    rows: dict[str, dict[str, list[float]]] = {
        f"{m}_{k}": {"wall": [], "cpu": []} for m in models for k in ("session", "served")
    }
    warm = nuclei_sample(11, 999, cfg)[0]
    for model in models.values():  # warm-up: first runs allocate
        served(model, warm)
        model.run(model.prepare(warm)[None])
    for r in range(args.rounds):
        image = nuclei_sample(11, r, cfg)[0]
        order = list(models) if r % 2 == 0 else list(models)[::-1]
        for name in order:
            model = models[name]
            tensor = model.prepare(image)[None]
            for kind, fn in (
                ("session", lambda m=model, t=tensor: m.run(t)),
                ("served", lambda m=model, i=image: served(m, i)),
            ):
                wall, cpu = timed(fn)
                rows[f"{name}_{kind}"]["wall"].append(wall)
                rows[f"{name}_{kind}"]["cpu"].append(cpu)
    result: dict[str, Any] = {
        "side": SIDE,
        "threads": args.threads,
        "rounds": args.rounds,
        "old": str(args.old),
        "new": str(args.new),
        "load_avg": os.getloadavg(),
    }
    for key, values in rows.items():
        result[key] = {
            "p50_ms": round(float(np.median(values["wall"])), 1),
            "cpu_ms": round(float(np.median(values["cpu"])), 1),
        }
    for kind in ("session", "served"):
        new, old = rows[f"new_{kind}"], rows[f"old_{kind}"]
        result[f"{kind}_new_over_old"] = round(
            float(np.median(np.divide(new["wall"], old["wall"]))), 3
        )
        result[f"{kind}_cpu_new_over_old"] = round(
            float(np.median(np.divide(new["cpu"], old["cpu"]))), 3
        )
    print(json.dumps(result, indent=1))
    save(
        "nuclei_latency",
        result,
        [
            f"1024² {kind}: new / old {result[f'{kind}_new_over_old']}x wall, "
            f"{result[f'{kind}_cpu_new_over_old']}x CPU (median of per-round ratios)"
            for kind in ("session", "served")
        ],
    )


if __name__ == "__main__":
    main()
