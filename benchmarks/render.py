"""Render throughput of pixelmill side by side with thumbor, against the in-library floor.

One command (about 13 minutes; ``--quick`` about 3)::

    .venv/bin/python benchmarks/render.py            # or --quick

What it does, all on 127.0.0.1, every process it starts stopped by PID at the end:

1. writes deterministic photo-like test images (``benchmarks/images.py``) and installs
   thumbor 7.8.0 from PyPI into ``benchmarks/.work/thumbor-venv`` (once);
2. starts pixelmill in two server layouts -- one process (request threads + libvips
   threads) and ``--server-workers 2`` (uvicorn worker processes) -- each once with the
   default memory result cache (cache hits) and once with ``none://`` (every request a
   miss), plus thumbor with ``--processes`` = cores, file loader, no storage, no result
   storage;
3. for each row of the matrix and concurrency 8 and 32, runs wrk against every server
   in turn (rows interleaved, the order rotated per repetition), ``--reps`` times, and
   reports medians of req/s, p50, p99 and the server's CPU time per request;
4. measures the floor (``benchmarks/floor.py``) and memory (idle RSS; peak RSS of the
   server process tree while rendering a 100 MP JPEG to a thumbnail);
5. for the floor ratio on a shared machine, pairs the two: each wrk run of the 12 MP
   thumbnail miss row is bracketed by single-thread floor batches, and the ratio is
   taken run by run (both see the same load), median over ``--reps`` pairs.

``benchmarks/run.py`` runs ``--quick --seconds 1 --rows jpeg12_300,jpeg2_300x200
--concurrency 8 --pairs 1 --no-memory`` (about 2 minutes; it skips this benchmark when
thumbor is not installed yet).

Servers: ``render_servers.py``; the report: ``render_report.py``. Results go to stdout as
Markdown and to ``benchmarks/.work/render-results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _harness import (
    CORES,
    ROOT,
    WORK,
    Server,
    cpu_seconds,
    machine_busy,
    median,
    parse,
    parser,
    rotations,
    save,
    stopping_on_signals,
    wrk_sample,
)
from images import IMAGES, ensure
from render_report import FLOOR_METHOD, headline, markdown
from render_servers import (
    QUALITY,
    admin_key,
    ensure_thumbor,
    memory,
    pixelmill,
    ready,
    thumbor,
    upload,
    verify,
)

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Row:
    """One render, written for both systems (same output format, size and quality)."""

    key: str
    title: str
    image: str
    pixelmill: str  # query string of /v1/images/{id}/render
    thumbor: str  # thumbor path before the image file name
    size: tuple[int, int]  # expected output size
    mime: str


ROWS = [
    Row(
        "jpeg2_300x200",
        "2.5 MP JPEG → 300x200 JPEG",
        "jpeg_2mp",
        f"w=300&h=200&format=jpeg&q={QUALITY}",
        f"/unsafe/300x200/filters:quality({QUALITY})",
        (300, 200),
        "image/jpeg",
    ),
    Row(
        "jpeg12_300",
        "12 MP JPEG → 300 px JPEG",
        "jpeg_12mp",
        f"w=300&format=jpeg&q={QUALITY}",
        f"/unsafe/300x0/filters:quality({QUALITY})",
        (300, 225),
        "image/jpeg",
    ),
    Row(
        "jpeg12_webp800",
        "12 MP JPEG → 800 px WebP",
        "jpeg_12mp",
        f"w=800&format=webp&q={QUALITY}",
        f"/unsafe/800x0/filters:format(webp):quality({QUALITY})",
        (800, 600),
        "image/webp",
    ),
    Row(
        "png2_300x200",
        "2 MP PNG → 300x200 JPEG",
        "png_2mp",
        f"w=300&h=200&format=jpeg&q={QUALITY}",
        f"/unsafe/300x200/filters:format(jpeg):quality({QUALITY})",
        (300, 200),
        "image/jpeg",
    ),
    Row(
        "jpeg2_blur",
        "2.5 MP JPEG → 300x200 + blur sigma 2",
        "jpeg_2mp",
        f"w=300&h=200&blur=2&format=jpeg&q={QUALITY}",
        # thumbor blur(radius, sigma): radius 4 is libvips' mask half-width for sigma 2
        f"/unsafe/300x200/filters:blur(4,2):quality({QUALITY})",
        (300, 200),
        "image/jpeg",
    ),
]


def floor(path: Path, batches: int, *, only: str = "") -> dict[str, float]:
    """``floor.py`` in a child process: single-thread CPU ms per image by method."""
    extra = [only] if only else []
    out = subprocess.run(
        [sys.executable, str(HERE / "floor.py"), str(path), str(batches), *extra],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def paired_floor(
    servers: dict[str, Server], paths_by: dict[str, str], image: Path, args: Any
) -> dict[str, list[dict[str, float]]]:
    """Each wrk run (c=8) on the 12 MP miss servers between two floor batches; the ratio
    floor CPU ms / server CPU ms per request, run by run (the same load for both)."""
    pairs: dict[str, list[dict[str, float]]] = {"pm-1-miss": [], "pm-2-miss": []}
    before = floor(image, 3, only=FLOOR_METHOD)[FLOOR_METHOD]
    for order in rotations(list(pairs), args.pairs):
        for name in order:
            sample = wrk_sample(servers[name], paths_by[name], 8, args.seconds)
            after = floor(image, 3, only=FLOOR_METHOD)[FLOOR_METHOD]
            floor_ms = (before + after) / 2
            pairs[name].append(
                {"floor_ms": floor_ms, "cpu_ms": sample.cpu_ms, "rps": sample.rps}
                | {"ratio": floor_ms / sample.cpu_ms}
            )
            before = after
    for name, runs in pairs.items():
        print(f"floor pairs {name}: ratio {median([r['ratio'] for r in runs]):.3f}", flush=True)
    return pairs


def start_servers(run: Path, paths: dict[str, Path]) -> tuple[dict[str, Server], dict[str, str]]:
    """Every server of the matrix, ready; the image ids uploaded (through the first: it
    creates the shared data dir and the admin key)."""
    data = run / "data"
    data.mkdir(parents=True)
    first = pixelmill("pm-1-hit", data, 1, "memory://", run)
    ready(first)
    key = admin_key(first)
    ids = {name: upload(first, key, path) for name, path in paths.items()}
    servers = {"pm-1-hit": first}
    servers["pm-1-miss"] = pixelmill("pm-1-miss", data, 1, "none://", run)
    servers["pm-2-hit"] = pixelmill("pm-2-hit", data, 2, "memory://", run)
    servers["pm-2-miss"] = pixelmill("pm-2-miss", data, 2, "none://", run)
    servers["thumbor"] = thumbor("thumbor", WORK / "images", run, CORES)
    for server in servers.values():
        ready(server)
    return servers, ids


def row_paths(row: Row, servers: dict[str, Server], ids: dict[str, str]) -> dict[str, str]:
    """Each server's URL path for ``row``."""
    ours = f"/v1/images/{ids[row.image]}/render?{row.pixelmill}"
    theirs = f"{row.thumbor}/{IMAGES[row.image].filename}"
    return {name: theirs if name == "thumbor" else ours for name in servers}


def measure_row(
    row: Row, servers: dict[str, Server], paths_by: dict[str, str], args: Any
) -> dict[int, dict[str, list[dict[str, float]]]]:
    """wrk against every server in turn per concurrency, the order rotated per rep."""
    order = list(servers)
    for name in order:  # warm up: caches, worker imports, branch predictors
        wrk_sample(servers[name], paths_by[name], 8, 1)
    result: dict[int, dict[str, list[dict[str, float]]]] = {}
    for conc in args.concurrency:
        cells: dict[str, list[dict[str, float]]] = {name: [] for name in order}
        for rotated in rotations(order, args.reps):
            for name in rotated:
                sample = wrk_sample(servers[name], paths_by[name], conc, args.seconds)
                cells[name].append(sample.__dict__)
        result[conc] = cells
        line = "  ".join(f"{n} {median([s['rps'] for s in c]):7.1f}/s" for n, c in cells.items())
        print(f"{row.key:16} c={conc:<3} {line}", flush=True)
    return result


def matrix(run: Path, paths: dict[str, Path], rows: list[Row], args: Any) -> dict[str, Any]:
    """Every row on every server; the floor before, at the 12 MP row and paired."""
    servers, ids = start_servers(run, paths)
    report: dict[str, Any] = {"floors": [floor(paths["jpeg_12mp"], args.floor_batches)]}
    report |= {"floor_pairs": {}, "results": {}, "sizes": {}, "ids": ids}
    busy0 = machine_busy()
    ours0 = sum(cpu_seconds(s.pids) for s in servers.values())
    for row in rows:
        paths_by = row_paths(row, servers, ids)
        urls = {n: servers[n].url + p for n, p in paths_by.items()}
        report["sizes"][row.key] = verify(urls, row.mime, row.size)
        report["results"][row.key] = measure_row(row, servers, paths_by, args)
        if row.key == "jpeg12_300":
            report["floors"].append(floor(paths["jpeg_12mp"], args.floor_batches))
            report["floor_pairs"] = paired_floor(servers, paths_by, paths["jpeg_12mp"], args)
    busy1 = machine_busy()
    ours1 = sum(cpu_seconds(s.pids) for s in servers.values())
    for server in servers.values():
        server.stop()
    wall_cores = (busy1[1] - busy0[1]) / CORES
    report["machine_busy_cores"] = (busy1[0] - busy0[0]) / wall_cores
    report["servers_busy_cores"] = (ours1 - ours0) / wall_cores
    return report


def options() -> argparse.Namespace:
    p = parser(__doc__, "1 run of 2 s per cell, 3 floor batches")
    p.add_argument("--reps", type=int, default=3, help="repetitions per cell (median)")
    p.add_argument("--seconds", type=float, default=4.0, help="wrk duration per run")
    p.add_argument("--rows", default="", help="comma-separated row keys (default all)")
    p.add_argument("--no-memory", action="store_true", help="skip the 100 MP memory test")
    p.add_argument("--concurrency", default="8,32", help="comma-separated wrk connections")
    p.add_argument("--pairs", type=int, default=0, help="paired floor runs (default 2 x reps)")
    p.add_argument("--floor-batches", type=int, default=5, help="batches per floor run")
    args = parse(p, {"reps": 1, "seconds": 2.0, "floor_batches": 3})
    args.concurrency = tuple(int(c) for c in args.concurrency.split(","))
    args.pairs = args.pairs or args.reps * 2
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get update && apt-get install -y wrk")
    return args


def main() -> None:
    args = options()
    rows = [r for r in ROWS if not args.rows or r.key in args.rows.split(",")]
    started, load_before = time.monotonic(), os.getloadavg()
    needed = {r.image for r in rows} | {"jpeg_12mp"} | (set() if args.no_memory else {"jpeg_100mp"})
    paths = ensure(WORK / "images", needed)
    ensure_thumbor()
    run = Path(tempfile.mkdtemp(prefix="render-", dir=WORK))
    try:
        report = matrix(run, paths, rows, args)
        ids = report.pop("ids")
        if args.no_memory:
            report["memory"] = {}
        else:
            report["memory"] = memory(run, run / "data", ids["jpeg_100mp"], WORK / "images")
        floors = [*report.pop("floors"), floor(paths["jpeg_12mp"], args.floor_batches)]
        report["floor_ms"] = {k: median([f[k] for f in floors]) for k in floors[0]}
    finally:
        shutil.rmtree(run, ignore_errors=True)
    report |= {"cores": CORES, "reps": args.reps, "seconds": args.seconds}
    report |= {"elapsed_s": time.monotonic() - started, "load_before": load_before}
    report["load_after"] = os.getloadavg()
    save("render", report, headline(report))
    print(markdown(report, {r.key: r.title for r in ROWS}))


if __name__ == "__main__":
    with stopping_on_signals():
        main()
