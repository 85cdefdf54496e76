"""Recall and false positives of the shipped face detector (MTCNN, pixelmill.ml.faces) on
a small hand-labelled set of public-domain faces, and its CPU time per image.

    .venv/bin/python benchmarks/faces.py           # every case, 5 timed runs each
    .venv/bin/python benchmarks/faces.py --quick   # 1 timed run each

The labels (tests/golden/faces/labels.json) are hand boxes on three portraits that
installed packages ship (scikit-image's astronaut and cameraman, matplotlib's Grace
Hopper; each image's source and licence are recorded there) and six images without a
face. Each portrait is also scored mirrored, at 1/2 and at 1/4 size (the labels moved
and scaled with it), and the three at 1/2 size side by side on one grey canvas (a
"group"). A detection matches a hand box at IoU >= 0.5 (greedy, best score first);
unmatched detections are false positives. Scored at the detector's own last-stage
threshold (0.7) and at the ``faces`` job's default ``min_score`` (0.9).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from _harness import ROOT, median, parse, parser, save, table

LABELS = ROOT / "tests" / "golden" / "faces" / "labels.json"

Case = tuple[str, np.ndarray, np.ndarray]


def load(spec: str) -> np.ndarray:
    if spec.startswith("matplotlib:"):
        import matplotlib.cbook
        import matplotlib.image

        path = matplotlib.cbook.get_sample_data(spec.split(":", 1)[1], asfileobj=False)
        return np.asarray(matplotlib.image.imread(path))
    import skimage.data

    return np.asarray(getattr(skimage.data, spec.rsplit(".", 1)[1])())


def _rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[..., None], 3, 2) if image.ndim == 2 else image[..., :3]


def _half(image: np.ndarray, boxes: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    rows, cols = image.shape[:2]
    small = cv2.resize(image, (cols // factor, rows // factor), interpolation=cv2.INTER_AREA)
    return small, boxes / factor


def cases(labels: dict[str, Any]) -> Iterator[Case]:
    halves = []
    for item in labels["images"]:
        image = _rgb(load(item["load"]))
        boxes = np.asarray(item["faces"], np.float32)
        cols = image.shape[1]
        yield item["name"], image, boxes
        mirrored = boxes.copy()
        mirrored[:, [0, 2]] = cols - boxes[:, [2, 0]]
        yield f"{item['name']} mirrored", np.ascontiguousarray(image[:, ::-1]), mirrored
        for factor in (2, 4):
            small, scaled = _half(image, boxes, factor)
            yield f"{item['name']} 1/{factor}", small, scaled
            if factor == 2:
                halves.append((small, scaled))
    rows = max(h.shape[0] for h, _ in halves) + 40
    canvas = np.full((rows, sum(h.shape[1] for h, _ in halves) + 40 * len(halves), 3), 128)
    group, left = [], 20
    for small, scaled in halves:
        canvas[20 : 20 + small.shape[0], left : left + small.shape[1]] = small
        group.append(scaled + np.array([left, 20, left, 20], np.float32))
        left += small.shape[1] + 40
    yield "group (3 at 1/2)", canvas.astype(np.uint8), np.concatenate(group)
    for item in labels["negatives"]:
        yield item["name"], _rgb(load(item["load"])), np.zeros((0, 4), np.float32)


def score(found: np.ndarray, truth: np.ndarray) -> tuple[int, int, list[float]]:
    """True positives, false positives and the matched IoUs of ``found`` (N, 5) boxes."""
    from pixelmill.ml.faces import iou

    free = set(range(len(truth)))
    ious: list[float] = []
    for box in found:
        if not free:
            break
        overlap = iou(box[None, :4], truth)[0]
        best = max(free, key=lambda k: overlap[k])
        if overlap[best] >= 0.5:
            free.remove(best)
            ious.append(float(overlap[best]))
    return len(ious), len(found) - len(ious), ious


def render_costs(runs: int) -> list[list[object]]:
    """CPU ms a render of a 12 MP JPEG portrait costs with each face option beside its
    plain twin (interleaved rounds, medians; one libvips thread, one ONNX thread)."""
    import cv2
    import pyvips

    from pixelmill.imaging import pipeline, render
    from pixelmill.imaging.ops import OpContext
    from pixelmill.ml.faces import FaceDetector

    pyvips.concurrency_set(1)
    portrait = load("skimage.data.astronaut")
    canvas = np.full((3000, 4000, 3), 120, np.uint8)
    canvas[500:2500, 2000:4000] = cv2.resize(portrait, (2000, 2000))
    jpeg = bytes(pyvips.Image.new_from_array(canvas).write_to_buffer(".jpg", Q=90))
    detect = FaceDetector(threads=1).boxes
    queries = {
        "w=300&h=300 (centre)": {"w": "300", "h": "300"},
        "w=300&h=300&gravity=attention": {"w": "300", "h": "300", "gravity": "attention"},
        "w=300&h=300&gravity=face": {"w": "300", "h": "300", "gravity": "face"},
        "w=300&blur_faces=1": {"w": "300", "blur_faces": "1"},
        "w=300&pixelate_faces=40": {"w": "300", "pixelate_faces": "40"},
    }
    cpu: dict[str, list[float]] = {name: [] for name in queries}
    for _ in range(runs + 1):  # the first round warms the sessions and caches
        for name, query in queries.items():
            steps = render.to_steps(render.parse_render(query, max_side=8192))
            start = time.process_time()
            out = pipeline.run(jpeg, steps, OpContext(detect_faces=detect))
            out.write_to_buffer(".jpg", Q=82)
            cpu[name].append((time.process_time() - start) * 1000)
    base = median(cpu["w=300&h=300 (centre)"][1:])
    return [
        [name, f"{median(v[1:]):.0f}", f"{median(v[1:]) / base:.1f}x"] for name, v in cpu.items()
    ]


def main() -> None:
    p = parser(__doc__, "1 timed run a case")
    p.add_argument("--runs", type=int, default=5)
    args = parse(p, {"runs": 1})
    from pixelmill.ml.faces import FaceDetector

    detector = FaceDetector(threads=1)
    labels = json.loads(LABELS.read_text())
    rows, totals = [], {0.7: [0, 0, 0], 0.9: [0, 0, 0]}
    cpu_all: list[float] = []
    for name, image, truth in cases(labels):
        found = detector.boxes(image)  # the first call also builds the sessions
        cpu = []
        for _ in range(args.runs):
            start = time.process_time()
            detector.boxes(image)
            cpu.append((time.process_time() - start) * 1000)
        cpu_all.append(median(cpu))
        cells: list[object] = [name, f"{image.shape[1]}x{image.shape[0]}", len(truth)]
        for cut, total in totals.items():
            tp, fp, ious = score(found[found[:, 4] >= cut], truth)
            total[0] += tp
            total[1] += fp
            total[2] += len(truth)
            mean = f"{np.mean(ious):.2f}" if ious else "-"
            cells += [tp, fp] + ([mean] if cut == 0.7 else [])
        rows.append([*cells, f"{median(cpu):.0f}"])
    header = ["case", "size", "faces", "found", "false +", "mean IoU"]
    header += ["found (>=0.9)", "false + (>=0.9)", "CPU ms"]
    print(table(header, rows, "llrrrrrrr"))
    result = {
        f"score>={cut}": {"recall": tp / n, "false_positives": fp, "faces": n, "found": tp}
        for cut, (tp, fp, n) in totals.items()
    }
    result["cpu_ms_median"] = median(cpu_all)
    headline = [
        f"faces: recall@IoU0.5 {r['found']}/{r['faces']} = {r['recall']:.2f}, "
        f"{r['false_positives']} false positives ({key})"
        for key, r in result.items()
        if isinstance(r, dict)
    ]
    headline.append(f"faces: median CPU {result['cpu_ms_median']:.0f} ms an image (1 thread)")
    costs = render_costs(args.runs)
    print(table(["12 MP JPEG render", "CPU ms", "vs centre"], costs, "lrr"))
    result["render_cpu_ms"] = {row[0]: float(str(row[1])) for row in costs}
    for line in headline:
        print(line)
    save("faces", result, headline)


if __name__ == "__main__":
    main()
