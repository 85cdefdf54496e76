"""How close can reuse bring the CDN origin workload to 2x sharp? (issue 19)

``sharp_peer.py``'s origin workload (the same seeded list: 236 requests over 20 originals,
3-6 widths x 2-3 of JPEG/WebP/AVIF each) replayed in-process, one libvips thread::

    PYTHONPATH=src .venv/bin/python benchmarks/origin_bound.py [--budgets 128,512]

Prints, in CPU ms per request (``time.process_time``):

* **encode only**: each request's output encoded from its already-resized image, with
  the render's encoder settings (``imaging.encode``) — what no reuse of decodes or
  resizes can remove while every format is encoded afresh;
* **replay** at each kept-intermediates budget (``render.intermediate_cache_bytes``):
  ``ImageService.render`` of every request in order (result cache off), with the count
  of kept-intermediate hits and misses by kind (``dct``: a JPEG decoded shrunk in the
  DCT; ``whole``: a PNG decoded whole; ``rendered``: the steps' result). A budget large
  enough never to evict decodes each original once per shrink it needs: the floor of
  exact reuse (pixel-equal to a render afresh).

Compare with sharp's CPU per request in the same sitting's ``sharp_peer.py --no-matrix``
(an HTTP server: add pixelmill's ~2.5 ms fixed cost per request to these in-process
figures).
"""

from __future__ import annotations

import collections
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("VIPS_CONCURRENCY", "1")  # before libvips starts

import pyvips
from _harness import WORK, parse, parser
from sharp_peer import QUALITY, make_images, variants, workload

from pixelmill.imaging import encode as encoding
from pixelmill.imaging.formats import ImageFormat
from pixelmill.imaging.render import RenderParams

KINDS = ["jpeg12", "jpeg2", "jpeg12", "jpeg2", "png_rgba"]  # as sharp_peer.variants


def _parts(query: str) -> dict[str, str]:
    return dict(part.split("=") for part in query.split("&"))


def encode_only(base: dict[str, Path], requests: list[tuple[str, str]]) -> float:
    spent: dict[tuple[str, int, str], float] = {}
    total = 0.0
    for src, query in requests:
        q = _parts(query)
        key = (KINDS[int(src.split("_")[1]) % len(KINDS)], int(q["w"]), q["format"])
        if key not in spent:
            image = pyvips.Image.thumbnail(str(base[key[0]]), key[1], height=100_000)
            image = image.copy_memory()
            samples = []
            for _ in range(3):
                started = time.process_time()
                encoding.encode(image, ImageFormat(key[2]), quality=QUALITY)
                samples.append(time.process_time() - started)
            spent[key] = statistics.median(samples) * 1000
        total += spent[key]
    return total / len(requests)


def replay(files: dict[str, Path], requests: list[tuple[str, str]], mib: int) -> dict[str, Any]:
    from pixelmill.runtime.container import build_container
    from pixelmill.settings import Settings

    with tempfile.TemporaryDirectory(dir=WORK) as folder:
        settings = Settings(
            data_dir=Path(folder),
            cache={"url": "none://"},  # type: ignore[arg-type]
            render={"intermediate_cache_bytes": mib * 2**20, "concurrency": 1},  # type: ignore[arg-type]
        )
        return _replay(build_container(settings), files, requests, mib)


def _replay(
    container: Any, files: dict[str, Path], requests: list[tuple[str, str]], mib: int
) -> dict[str, Any]:
    try:
        service = container.image_service
        ids = {k: service.ingest_bytes(p.read_bytes())[0].id for k, p in files.items()}
        counts: collections.Counter[str] = collections.Counter()
        fetch = service.intermediates.fetch

        def counted(key: Any, make: Any) -> Any:
            made = []

            def making() -> Any:
                made.append(1)
                return make()

            value = fetch(key, making)
            counts[f"{key[1]} {'miss' if made else 'hit'}"] += 1
            return value

        service.intermediates.fetch = counted  # type: ignore[method-assign]
        started = time.process_time()
        for src, query in requests:
            q = _parts(query)
            params = RenderParams(w=int(q["w"]), format=q["format"], q=QUALITY, depth=8)
            service.render(ids[src], params)
        cpu = (time.process_time() - started) * 1000 / len(requests)
        return {"budget_mib": mib, "cpu_ms": cpu, "lookups": dict(sorted(counts.items()))}
    finally:
        container.close()


def main() -> None:
    p = parser(__doc__, "the 128 MiB budget only")
    p.add_argument("--budgets", default="128,512", help="kept-intermediate budgets, MiB")
    p.add_argument("--seed", type=int, default=19, help="seed of the workload list")
    p.add_argument("--formats", default="jpeg,webp,avif", help="workload output formats")
    p.add_argument(
        "--once-per-size",
        action="store_true",
        help="keep only the first request of each source and width: nothing to share "
        "between formats (what keeping results costs when it cannot pay)",
    )
    args = parse(p, {"budgets": "128"})
    pyvips.cache_set_max(0)
    folder = WORK / "images"
    base = make_images(folder)
    files = variants(folder, base, 20)
    requests = workload(args.seed, list(files), args.formats.split(","))
    if args.once_per_size:
        firsts = {}
        for src, query in requests:
            firsts.setdefault((src, _parts(query)["w"]), (src, query))
        requests = list(firsts.values())
    print(f"{len(requests)} requests over {len(files)} originals, load {os.getloadavg()[0]:.1f}")
    print(f"encode only: {encode_only(base, requests):.1f} CPU ms/request")
    replay(files, requests[:24], 0)  # warm-up: lazy imports, codec set-up
    for mib in (int(b) for b in args.budgets.split(",")):
        found = replay(files, requests, mib)
        print(f"replay, {mib} MiB kept: {found['cpu_ms']:.1f} CPU ms/request; {found['lookups']}")


if __name__ == "__main__":
    main()
