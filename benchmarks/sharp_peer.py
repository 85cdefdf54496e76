"""Render speed of pixelmill side by side with sharp (Node, the same libvips underneath):
a matrix of single renders, and a CDN origin workload that asks for each source in
several sizes and formats.

One command (about 15 minutes; ``--quick`` about 5): ``.venv/bin/python
benchmarks/sharp_peer.py``. What it does, on 127.0.0.1, each process stopped by PID:

1. writes the test images (``benchmarks/images.py``'s photo-like textures as 2 MP and
   12 MP JPEG, an RGBA PNG, a 16-bit TIFF and an animated GIF) and installs sharp from
   ``benchmarks/sharp/package-lock.json`` into ``benchmarks/.work/sharp`` (``npm ci``);
2. starts ``node benchmarks/sharp/server.mjs`` (sharp.concurrency(1): one libvips thread
   per render, libuv's 4 renders in flight) and ``pixelmill up`` (one process,
   ``render.concurrency=1``: one libvips thread per render, one render per core in
   flight), the result cache off (``none://``: every answer an ``X-Cache: MISS``);
   encoder settings matched (``server.mjs`` and docs/benchmarks.md list both sides);
3. **matrix**: every input x output (JPEG, PNG, WebP, AVIF), cover-resized to 400x300,
   wrk at the same concurrency against each server in turn, the order rotated per
   round, ``--reps`` rounds: medians of req/s and of the server's CPU ms per request
   (``/proc/PID/stat`` of its process tree). pixelmill keeps no decoded originals here
   (``render.intermediate_cache_bytes=0``): each request is a whole single render;
4. **origin workload**: a seeded list of requests, each of ``--sources`` originals in
   3-6 widths and 2-3 formats, shuffled so sources interleave; the same list to sharp,
   to pixelmill keeping decoded originals (the default 128 MiB, started afresh each
   round) and to pixelmill without (0): the whole list once per round, ``--conc``
   requests at a time (urllib clients in threads), interleaved rounds.

``--inputs gif`` limits the matrix to some inputs (``tiny``, not in the default, is a
16x16 PNG: each server's fixed CPU per request), ``--no-origin`` skips the workload;
``--baseline DIR`` adds ``pixelmill-base``, running the ``src`` folder ``DIR`` (another
commit: ``git worktree add /tmp/base COMMIT``) with the same settings, interleaved in the
same rounds (and ``pixelmill-base-kept`` in the origin workload): a before/after of a
change in one sitting.

Results: Markdown on stdout and ``benchmarks/.work/sharp-peer-results.json``.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pyvips
from _harness import (
    ROOT,
    WORK,
    Server,
    cpu_seconds,
    free_port,
    geomean,
    median,
    parse,
    parser,
    rotations,
    save,
    start_server,
    stopping_on_signals,
    wait_http,
    wrk_sample,
)
from images import _texture, ensure
from render_servers import admin_key, get, pixelmill, ready, upload

SHARP_DIR = WORK / "sharp"
QUALITY = 82
INPUTS = {  # key: (file name, title)
    "jpeg2": ("jpeg_2mp.jpg", "2.5 MP JPEG"),
    "jpeg12": ("jpeg_12mp.jpg", "12 MP JPEG"),
    "png_rgba": ("rgba_2mp.png", "2 MP RGBA PNG"),
    "tiff16": ("deep_3mp.tif", "3 MP 16-bit TIFF"),
    "gif": ("anim_480.gif", "480x360 GIF, 12 frames"),
    # not in the default matrix: a render with (almost) no pixels, each server's fixed
    # CPU per request (HTTP, routing, lookups, the pipeline's set-up)
    "tiny": ("tiny_16.png", "16x16 PNG (fixed cost per request)"),
}
DEFAULT_INPUTS = ("jpeg2", "jpeg12", "png_rgba", "tiff16", "gif")
OUTPUTS = ("jpeg", "png", "webp", "avif")
MIME = {f: f"image/{f}" for f in OUTPUTS}
#: both pixelmill servers: one libvips thread per render, as sharp.concurrency(1)
COMMON = {"PIXELMILL_RENDER__CONCURRENCY": "1"}


def make_images(folder: Path) -> dict[str, Path]:
    """The matrix's inputs (made once): ``images.py``'s JPEGs plus an RGBA PNG, a 16-bit
    TIFF and an animated GIF from the same texture."""
    paths = {"jpeg2": ensure(folder, ["jpeg_2mp"])["jpeg_2mp"]}
    paths["jpeg12"] = ensure(folder, ["jpeg_12mp"])["jpeg_12mp"]
    wanted = {k: folder / INPUTS[k][0] for k in ("png_rgba", "tiff16", "gif", "tiny")}
    if not wanted["tiny"].exists():
        _texture(16, 16, seed=9).pngsave(str(wanted["tiny"]), keep="none")
    if not wanted["png_rgba"].exists():
        rgb = _texture(1600, 1250, seed=7)
        alpha = (pyvips.Image.xyz(1600, 1250)[0] * 255 / 1600).cast("uchar")
        rgb.bandjoin(alpha).copy(interpretation="srgb").pngsave(
            str(wanted["png_rgba"]), compression=6, keep="none"
        )
    if not wanted["tiff16"].exists():
        deep = (_texture(2000, 1500, seed=8).cast("ushort") * 257).cast("ushort")
        deep = deep.copy(interpretation="rgb16")
        deep.tiffsave(str(wanted["tiff16"]), compression="deflate", keep="none")
    if not wanted["gif"].exists():
        frames = [_texture(480, 360, seed=20 + i) for i in range(12)]
        gif = pyvips.Image.arrayjoin(frames, across=1).copy()
        gif.set_type(pyvips.GValue.gint_type, "page-height", 360)
        gif.set_type(pyvips.GValue.array_int_type, "delay", [80] * 12)
        gif.gifsave(str(wanted["gif"]), keep="none")
    return paths | wanted


def variants(folder: Path, base: dict[str, Path], count: int) -> dict[str, Path]:
    """``count`` distinct originals for the origin workload: the JPEG and PNG inputs
    turned and mirrored (other bytes, other hashes, the same work)."""
    found: dict[str, Path] = {}
    kinds = ["jpeg12", "jpeg2", "jpeg12", "jpeg2", "png_rgba"]
    for i in range(count):
        kind = kinds[i % len(kinds)]
        path = folder / f"origin_{i}_{base[kind].name}"
        if not path.exists():
            image = pyvips.Image.new_from_file(str(base[kind]))
            image = image.flipver() if i // len(kinds) % 2 else image.fliphor()
            image = image.rot180() if i // (2 * len(kinds)) % 2 else image
            if kind == "png_rgba":
                image.pngsave(str(path), compression=6, keep="none")
            else:
                image.jpegsave(str(path), Q=90 - i % 7, keep="none")
        found[f"origin_{i}"] = path
    return found


def ensure_sharp() -> None:
    """``npm ci`` of the committed lock file into ``benchmarks/.work/sharp`` (once)."""
    if (SHARP_DIR / "node_modules" / "sharp").exists():
        return
    SHARP_DIR.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(ROOT / "benchmarks" / "sharp" / name, SHARP_DIR / name)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=SHARP_DIR, check=True)


def sharp_server(images: Path, run: Path) -> Server:
    port = free_port()
    for script in ("server.mjs", "encoders.mjs"):
        shutil.copy(ROOT / "benchmarks" / "sharp" / script, SHARP_DIR / script)
    cmd = ["node", str(SHARP_DIR / "server.mjs"), str(port), str(images)]
    server = start_server("sharp", cmd, run / "sharp.log", port=port)
    wait_http(server, "/healthz")
    return server


def query(out: str, w: int, h: int | None = None) -> str:
    size = f"w={w}" + (f"&h={h}" if h else "")
    # depth=8: sharp writes 8-bit PNG from a 16-bit TIFF; pixelmill would keep 16 bits
    return f"{size}&format={out}&q={QUALITY}&depth=8"


def paths_for(servers: dict[str, Server], ids: dict[str, str], src: str, q: str) -> dict[str, str]:
    """Each server's URL path for the render ``q`` of the original ``src``."""
    ours = f"/v1/images/{ids[src]}/render?{q}"
    theirs = f"/render?src={ids['@file:' + src]}&{q}"
    return {n: theirs if n == "sharp" else ours for n in servers}


def check(servers: dict[str, Server], paths: dict[str, str], mime: str) -> dict[str, int]:
    """One answer of each server: same type and size, every pixelmill one a miss."""
    found: dict[str, tuple[int, int]] = {}
    sizes = {}
    for name, path in paths.items():
        status, headers, body = get(servers[name].url + path)
        image = pyvips.Image.new_from_buffer(body, "")
        found[name] = (image.width, image.height)
        if status != 200 or headers.get("Content-Type") != mime:
            raise SystemExit(f"{name}: {status} {headers.get('Content-Type')} on {path}")
        if name != "sharp" and headers.get("X-Cache") != "MISS":
            raise SystemExit(f"{name} answered X-Cache {headers.get('X-Cache')} on {path}")
        sizes[name] = len(body)
    if len(set(found.values())) != 1:
        raise SystemExit(f"output sizes differ: {found} ({paths})")
    return sizes


def matrix(servers: dict[str, Server], ids: dict[str, str], args: Any) -> dict[str, Any]:
    """Every input x output on every server, rows interleaved, rounds rotated."""
    rows = {f"{i}>{o}": (i, o) for i in args.inputs.split(",") for o in OUTPUTS}
    paths = {k: paths_for(servers, ids, i, query(o, 400, 300)) for k, (i, o) in rows.items()}
    report: dict[str, Any] = {"bytes": {}, "runs": {k: {n: [] for n in servers} for k in rows}}
    for key, (_, out) in rows.items():
        report["bytes"][key] = check(servers, paths[key], MIME[out])
        for name in servers:  # warm up each server on this row
            wrk_sample(servers[name], paths[key][name], args.conc, 1)
    for order in rotations(list(servers), args.reps):
        for key in rows:
            for name in order:
                sample = wrk_sample(servers[name], paths[key][name], args.conc, args.seconds)
                report["runs"][key][name].append(sample.__dict__)
        print(f"round done ({order[0]} first)", flush=True)
    return report


def workload(seed: int, sources: list[str], choices: list[str]) -> list[tuple[str, str]]:
    """The seeded request list: each source in 3-6 widths and 2-3 of the formats
    ``choices``, shuffled."""
    rng = random.Random(seed)
    requests = []
    for src in sources:
        widths = rng.sample([160, 240, 320, 480, 640, 800, 1024, 1280], rng.randint(3, 6))
        formats = rng.sample(choices, rng.randint(2, min(3, len(choices))))
        requests += [(src, query(f, w)) for w in widths for f in formats]
    rng.shuffle(requests)
    return requests


def one_pass(server: Server, paths: list[str], conc: int) -> dict[str, float]:
    """Every path of the list once, in order, ``conc`` at a time (a thread pool of
    urllib clients); the server tree's CPU per request and the requests per second."""
    from concurrent.futures import ThreadPoolExecutor

    def fetch(path: str) -> int:
        status, _headers, body = get(server.url + path)
        return status if body else 0

    before, started = cpu_seconds(server.refresh()), time.perf_counter()
    with ThreadPoolExecutor(conc) as pool:
        statuses = list(pool.map(fetch, paths))
    wall = time.perf_counter() - started
    used = cpu_seconds(server.pids) - before
    errors = sum(s != 200 for s in statuses)
    return {"rps": len(paths) / wall, "cpu_ms": used * 1000 / len(paths), "errors": errors}


def origin(
    servers: dict[str, Server], ids: dict[str, str], args: Any, restart: Any
) -> dict[str, Any]:
    """The workload list once per round on each server in turn (order rotated); the
    server keeping decoded originals is started afresh before each of its passes."""
    originals = [k for k in ids if k.startswith("origin_")]
    requests = workload(args.seed, originals, args.formats.split(","))
    runs: dict[str, list[dict[str, float]]] = {n: [] for n in servers}
    for order in rotations(list(servers), args.reps):
        for name in order:
            if name.endswith("-kept"):
                servers[name] = restart(servers[name], name)
            listed = [paths_for(servers, ids, s, q)[name] for s, q in requests]
            runs[name].append(one_pass(servers[name], listed, args.conc))
            print(f"origin {name}: {runs[name][-1]}", flush=True)
    return {"requests": len(requests), "sources": len(originals), "runs": runs}


def start(run: Path, files: dict[str, Path], args: Any) -> tuple[dict[str, Server], dict[str, str]]:
    data = run / "data"
    data.mkdir(parents=True)
    off = {"PIXELMILL_RENDER__INTERMEDIATE_CACHE_BYTES": "0"}
    first = pixelmill("pixelmill", data, 1, "none://", run, **COMMON, **off)
    ready(first)
    key = admin_key(first)
    ids = {name: upload(first, key, path) for name, path in files.items()}
    ids |= {f"@file:{name}": path.name for name, path in files.items()}
    servers = {"sharp": sharp_server(next(iter(files.values())).parent, run), "pixelmill": first}
    if args.baseline:  # the same server from another source tree, on the same data
        env = {**COMMON, **off, "PYTHONPATH": str(Path(args.baseline).resolve())}
        servers["pixelmill-base"] = pixelmill("pixelmill-base", data, 1, "none://", run, **env)
        ready(servers["pixelmill-base"])
    if not args.no_origin:
        servers["pixelmill-kept"] = kept_server(run, "pixelmill-kept")
        if args.baseline:  # the other tree keeping decodes too: a before/after of reuse
            servers[BASE_KEPT] = kept_server(run, BASE_KEPT, args.baseline)
    return servers, ids


def kept_server(run: Path, name: str, baseline: str | None = None) -> Server:
    """pixelmill keeping decoded originals (the default 128 MiB), started afresh; from
    the ``baseline`` tree's ``src`` when given."""
    env = {**COMMON, **({"PYTHONPATH": str(Path(baseline).resolve())} if baseline else {})}
    server = pixelmill(name, run / "data", 1, "none://", run, **env)
    ready(server)
    return server


def summary(report: dict[str, Any]) -> list[str]:
    """Markdown tables: per row medians and ratios, the geo-mean, the workload."""
    lines = [
        "| render | sharp req/s | CPU ms/req | pixelmill req/s | CPU ms/req | "
        "ratio (CPU) | ratio (req/s) | bytes sharp / ours |",
        "|---" * 8 + "|",
    ]
    cpu_ratios, rps_ratios = [], []
    for key, runs in report["matrix"]["runs"].items():
        s, p = runs["sharp"], runs["pixelmill"]
        s_rps, p_rps = median([r["rps"] for r in s]), median([r["rps"] for r in p])
        s_cpu, p_cpu = median([r["cpu_ms"] for r in s]), median([r["cpu_ms"] for r in p])
        cpu_ratios.append(s_cpu / p_cpu)
        rps_ratios.append(p_rps / s_rps)
        sizes = report["matrix"]["bytes"][key]
        lines.append(
            f"| {key} | {s_rps:.1f} | {s_cpu:.1f} | {p_rps:.1f} | {p_cpu:.1f} | "
            f"{cpu_ratios[-1]:.2f}x | {rps_ratios[-1]:.2f}x | "
            f"{sizes['sharp']} / {sizes['pixelmill']} |"
        )
    lines.append(
        f"| **geo-mean** | | | | | **{geomean(cpu_ratios):.2f}x** | "
        f"**{geomean(rps_ratios):.2f}x** | |"
    )
    lines += _baseline(report["matrix"]["runs"])
    if "origin" not in report:
        return lines
    o = report["origin"]
    lines += [
        "",
        f"Origin workload: {o['requests']} requests over {o['sources']} originals",
        "",
        "| server | req/s | CPU ms/req | vs sharp (CPU) | vs sharp (req/s) |",
        "|---|---|---|---|---|",
    ]
    s_rps = median([r["rps"] for r in o["runs"]["sharp"]])
    s_cpu = median([r["cpu_ms"] for r in o["runs"]["sharp"]])
    for name, runs in o["runs"].items():
        rps, cpu = median([r["rps"] for r in runs]), median([r["cpu_ms"] for r in runs])
        lines.append(
            f"| {name} | {rps:.1f} | {cpu:.1f} | {s_cpu / cpu:.2f}x | {rps / s_rps:.2f}x |"
        )
    return lines


def _baseline(runs: dict[str, dict[str, list[dict[str, float]]]]) -> list[str]:
    """With ``--baseline``: CPU per request of both pixelmill trees against sharp's."""
    if not runs or "pixelmill-base" not in next(iter(runs.values())):
        return []
    lines = [
        "",
        "| render | sharp CPU ms/req | base CPU ms/req | ratio base | this CPU ms/req | "
        "ratio this | this vs base |",
        "|---" * 7 + "|",
    ]
    for key, by_server in runs.items():
        s, b, p = (median([r["cpu_ms"] for r in by_server[n]]) for n in ("sharp", *BASE_PAIR))
        lines.append(
            f"| {key} | {s:.1f} | {b:.1f} | {s / b:.2f}x | {p:.1f} | {s / p:.2f}x | {b / p:.2f}x |"
        )
    return lines


BASE_PAIR = ("pixelmill-base", "pixelmill")
BASE_KEPT = "pixelmill-base-kept"


def main() -> None:
    p = parser(__doc__, "1 round, 2 s per cell")
    p.add_argument("--reps", type=int, default=3, help="interleaved rounds (median)")
    p.add_argument("--seconds", type=float, default=3.0, help="wrk seconds per matrix cell")
    p.add_argument("--conc", type=int, default=4, help="wrk connections (sharp's 4 in flight)")
    p.add_argument("--sources", type=int, default=20, help="originals in the origin workload")
    p.add_argument("--seed", type=int, default=19, help="seed of the workload list")
    p.add_argument("--formats", default="jpeg,webp,avif", help="workload output formats")
    p.add_argument("--no-matrix", action="store_true", help="the origin workload only")
    p.add_argument("--no-origin", action="store_true", help="the matrix only")
    p.add_argument(
        "--inputs", default=",".join(DEFAULT_INPUTS), help="matrix inputs: " + ",".join(INPUTS)
    )
    p.add_argument("--baseline", help="src folder of another tree, run as pixelmill-base")
    args = parse(p, {"reps": 1, "seconds": 2.0})
    started = time.monotonic()
    folder = WORK / "images"
    originals = 0 if args.no_origin else args.sources
    files = make_images(folder) | variants(folder, make_images(folder), originals)
    ensure_sharp()
    run = Path(tempfile.mkdtemp(prefix="sharp-peer-", dir=WORK))
    servers: dict[str, Server] = {}
    try:
        servers, ids = start(run, files, args)
        pair = {k: v for k, v in servers.items() if not k.endswith("-kept")}
        report: dict[str, Any] = {"matrix": {"runs": {}, "bytes": {}}}
        if not args.no_matrix:
            report["matrix"] = matrix(pair, ids, args)
        if not args.no_origin:
            workload_servers = {k: v for k, v in servers.items() if k != "pixelmill-base"}

            def restart(old: Server, name: str) -> Server:
                old.stop()
                return kept_server(run, name, args.baseline if name == BASE_KEPT else None)

            report["origin"] = origin(workload_servers, ids, args, restart)
            servers.update(workload_servers)  # the kept server restarted: stopped below
    finally:
        for server in reversed(list(servers.values())):
            server.stop()
        shutil.rmtree(run, ignore_errors=True)
    report |= {"args": vars(args), "elapsed_s": time.monotonic() - started}
    lines = summary(report)
    save("sharp-peer", report, [line for line in lines if "geo-mean" in line])
    print("\n".join(lines))
    print(json.dumps({"elapsed_s": round(report["elapsed_s"])}))


if __name__ == "__main__":
    with stopping_on_signals():
        main()
