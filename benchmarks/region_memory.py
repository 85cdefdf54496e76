"""Peak memory per pixel of a region job: each analysis preset run on a synthetic region
as a ``pipeline`` job runs it, in a child process whose peak is its own.

    .venv/bin/python benchmarks/region_memory.py                     # 6000² (36 MP)
    .venv/bin/python benchmarks/region_memory.py --base /tmp/old/src # beside another tree
    .venv/bin/python benchmarks/region_memory.py --quick             # 2000² (4 MP)
    .venv/bin/python benchmarks/region_memory.py --steps             # peak of each step

Each preset runs in a fresh ``python`` (``PYTHONPATH`` = the tree measured) on a tiled
TIFF written beforehand (grey 8-bit fluorescence for ``nuclei-fluorescence``, H&E-like
RGB for ``he-nuclei``, IHC-like RGB for the DAB presets): the region (the whole image)
is read as a job reads it (``pipeline.run`` with ``region``, random access), the
preset's steps run, its artifacts are moved into the image's coordinates and stored
(Arrow tables, label TIFF, JSON) and the output image is encoded. Reported: the
child's peak resident memory (``VmHWM`` of ``/proc/self/status``, not ``ru_maxrss``,
which a forked child inherits from its parent), its peak after the imports (the
baseline), and ``(peak - baseline) / pixels`` — the bytes per pixel a worker needs
for a region on top of its resting size. ``--steps`` also prints each step's own peak
above the memory held when it started (``VmHWM`` reset through ``/proc/self/clear_refs``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

PRESETS = {
    "nuclei-fluorescence": "fluorescence",
    "he-nuclei": "he",
    "ihc-dab-quantification": "ihc",
    "ihc-dab-area": "ihc",
}


def _status_kb(field: str) -> int:
    return int(Path("/proc/self/status").read_text().split(f"{field}:")[1].split()[0])


# -- images --------------------------------------------------------------------------


def synthetic(kind: str, side: int, seed: int = 0) -> np.ndarray:
    """A ``side`` x ``side`` test region: ``fluorescence`` grey uint8 (bright nuclei on an
    uneven dark background), ``he`` / ``ihc`` uint8 RGB (hematoxylin nuclei on eosin, or
    on a pale counterstain with a third of the nuclei in DAB). About one nucleus per
    900 px², radii 5-10 px, touching ones included."""
    import cv2

    rng = np.random.default_rng(seed)
    n = side * side // 900
    rows, cols = rng.integers(0, side, n), rng.integers(0, side, n)
    radii, levels = rng.integers(5, 11, n), rng.uniform(0.5, 1.0, n)
    nuclei = np.zeros((side, side), np.float32)
    dab = np.zeros((side, side), np.float32)
    positive = rng.random(n) < 0.33
    for r, c, rad, v, pos in zip(rows, cols, radii, levels, positive, strict=True):
        cv2.circle(dab if kind == "ihc" and pos else nuclei, (int(c), int(r)), int(rad), v, -1)
    nuclei = cv2.GaussianBlur(nuclei, (0, 0), 1.2)
    noise = rng.normal(0, 2.0, (side, side)).astype(np.float32)
    if kind == "fluorescence":
        ramp = np.linspace(10, 40, side, dtype=np.float32)[None, :]
        return np.clip(ramp + 180 * nuclei + noise + 0.5, 0, 255).astype(np.uint8)
    dab = cv2.GaussianBlur(dab, (0, 0), 1.2)
    counter = (0.072, 0.990, 0.105) if kind == "he" else (0.0, 0.0, 0.0)
    stains = [((0.650, 0.704, 0.286), nuclei), ((0.268, 0.570, 0.776), dab)]
    out = np.empty((side, side, 3), np.uint8)
    for ch in range(3):
        od = np.full((side, side), 0.25 * counter[ch] + 0.02, np.float32)
        for vector, conc in stains:
            od += np.float32(vector[ch] / np.linalg.norm(vector)) * conc
        out[..., ch] = np.clip(255 * np.power(np.float32(10), -od) + noise + 0.5, 0, 255)
    return out


def image_file(kind: str, side: int, folder: Path) -> Path:
    """The test region of ``kind`` as a tiled, deflated TIFF (written once, then reused)."""
    import pyvips

    path = folder / f"{kind}-{side}.tif"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        pixels = synthetic(kind, side)
        interp = "b-w" if pixels.ndim == 2 else "srgb"
        image = pyvips.Image.new_from_array(pixels, interpretation=interp)
        image.tiffsave(str(path) + ".part", tile=True, compression="deflate")
        os.replace(str(path) + ".part", path)
    return path


# -- the child: one preset, as a job runs it -----------------------------------------------


def run_job(preset: str, path: Path, steps: bool) -> dict[str, Any]:
    """Run ``preset`` on all of ``path`` as a ``pipeline`` job with a region does (in
    this process); returns its memory figures in kB."""
    import pyvips

    from pixelmill.backends.storage.memory import MemoryStorage
    from pixelmill.imaging import ops, pipeline
    from pixelmill.imaging.encode import encode
    from pixelmill.imaging.formats import ImageFormat
    from pixelmill.imaging.placement import Box, place_artifact
    from pixelmill.services.jobs import artifacts

    side = pyvips.Image.new_from_file(str(path)).width
    box = Box(0, 0, side, side)
    job_steps = ops.parse_pipeline([{"op": "preset", "name": preset}])
    per_step: dict[str, int] = {}
    if steps:
        _watch_steps(job_steps, per_step)
    baseline = _status_kb("VmHWM")
    ctx = ops.OpContext()
    image = pipeline.run(path, job_steps, ctx, random_access=True, region=box)
    mark = _mark()
    storage = MemoryStorage()
    for name, value in ctx.artifacts.items():
        artifacts.store(storage, "job", 0, name, place_artifact(name, value, box))
    _record(per_step, "artifacts", mark)
    mark = _mark()
    body = encode(image, ImageFormat.TIFF, quality=80, strip=True)
    _record(per_step, "encode", mark)
    return {
        "baseline_kb": baseline,
        "peak_kb": _status_kb("VmHWM"),
        "pixels": side * side,
        "objects": int(ctx.artifacts.get("summary", {}).get("object_count") or 0),
        "output_bytes": len(body),
        "steps_kb": per_step,
    }


def _mark() -> tuple[int, int]:
    """(peak so far, resident now) — and the peak restarted from now."""
    peak = _status_kb("VmHWM")
    Path("/proc/self/clear_refs").write_text("5")
    return peak, _status_kb("VmRSS")


def _record(per_step: dict[str, int], name: str, mark: tuple[int, int]) -> None:
    """The step's own peak above what was resident when it started; the process's
    peak put back (as the larger of the one before and this one)."""
    step_peak = _status_kb("VmHWM")
    per_step[name] = step_peak - mark[1]
    _KEEP["peak"] = max(_KEEP.get("peak", 0), mark[0], step_peak)


_KEEP: dict[str, int] = {}


def _watch_steps(job_steps: list[Any], per_step: dict[str, int]) -> None:
    """Wrap each step the preset runs so that its own peak is recorded."""
    for job_step in job_steps:
        for step in job_step.params.steps():
            op = step.op
            if getattr(op, "_watched", False):
                continue
            apply = op.apply

            def watched(image: Any, params: Any, ctx: Any, _a: Any = apply, _n: str = op.name):
                mark = _mark()
                out = _a(image, params, ctx)
                _record(per_step, _n, mark)
                return out

            op.apply = watched  # type: ignore[method-assign]
            op._watched = True  # type: ignore[attr-defined]


def child(argv: list[str]) -> None:
    preset, path, steps = argv[0], Path(argv[1]), argv[2] == "steps"
    out = run_job(preset, path, steps)
    # the resets of each step's peak lowered VmHWM: the true peak is the largest seen
    out["peak_kb"] = max(out["peak_kb"], _KEEP.get("peak", 0))
    print(json.dumps(out))


# -- the parent -------------------------------------------------------------------------


def measure(src: Path, preset: str, path: Path, steps: bool) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, __file__, "--child", preset, str(path), "steps" if steps else "-"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{preset} on {src} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    grew = (result["peak_kb"] - result["baseline_kb"]) * 1024
    result["peak_mb"] = round(result["peak_kb"] / 1024)
    result["bytes_per_pixel"] = round(grew / result["pixels"], 1)
    return result


def main() -> None:
    from _harness import ROOT, WORK, parse, parser, save, table

    p = parser(__doc__, "a 2000² region")
    p.add_argument("--side", type=int, default=6000, help="region side, px")
    p.add_argument("--base", type=Path, help="another tree's src/, measured beside")
    p.add_argument("--preset", action="append", help="only these presets (repeatable)")
    p.add_argument("--steps", action="store_true", help="also each step's own peak")
    args = parse(p, {"side": 2000})
    trees = {"this tree": ROOT / "src"}
    if args.base:
        trees["base"] = args.base.resolve()
    results: dict[str, dict[str, Any]] = {t: {} for t in trees}
    rows = []
    for preset in args.preset or list(PRESETS):
        path = image_file(PRESETS[preset], args.side, WORK / "region_memory")
        row: list[object] = [preset]
        for tree, src in trees.items():
            r = measure(src, preset, path, args.steps)
            results[tree][preset] = r
            row += [r["peak_mb"], r["bytes_per_pixel"]]
            if args.steps:
                print(f"{tree} {preset}: {json.dumps(r['steps_kb'])}", flush=True)
        rows.append(row)
    header = ["preset", "peak MB", "B/px"]
    if args.base:
        header = ["preset", "this tree: peak MB", "B/px", "base: peak MB", "B/px"]
    mp = args.side * args.side / 1e6
    print(f"region {args.side}² ({mp:.0f} MP); B/px = (peak - peak after imports) / pixels")
    print(table(header, rows, "l" + "r" * (len(header) - 1)))
    headline = [
        f"{p}: {results['this tree'][p]['bytes_per_pixel']} B/px" for p in results["this tree"]
    ]
    save("region_memory", {"side": args.side, "results": results}, headline)


if __name__ == "__main__":
    if "--child" in sys.argv:
        child(sys.argv[sys.argv.index("--child") + 1 :])
    else:
        main()
