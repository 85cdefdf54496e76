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

Results go to stdout as Markdown and to ``benchmarks/.work/render-results.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / ".work"
VENV_BIN = Path(sys.executable).parent
THUMBOR_VENV = WORK / "thumbor-venv"
THUMBOR_VERSION = "7.8.0"
CORES = os.cpu_count() or 1
CLK_TCK = os.sysconf("SC_CLK_TCK")

sys.path.insert(0, str(HERE))
from images import IMAGES, ensure  # noqa: E402


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


QUALITY = 82
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


# -- processes --------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc children lists)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for p in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLK_TCK


def status_kb(pid: int, name: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


def pss_kb(pid: int) -> int:
    """Proportional set size: shared pages split between the processes mapping them."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


class PssSampler:
    """The largest sum of PSS over a process tree, sampled every 0.1 s until stopped."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak_kb = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.is_set():
            self.peak_kb = max(self.peak_kb, sum(pss_kb(p) for p in tree(self.root)))
            time.sleep(0.1)

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return self.peak_kb


def role(pid: int, root: int) -> str:
    """What a process of a server tree is, from its command line."""
    with contextlib.suppress(OSError):
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        if pid == root:
            return "supervisor" if len(tree(root)) > 1 else "server"
        if b"resource_tracker" in cmd:
            return "tracker"
    return "worker"


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    pids: list[int] = field(default_factory=list)

    def refresh(self) -> list[int]:
        self.pids = tree(self.proc.pid)
        return self.pids

    def stop(self) -> None:
        pids = tree(self.proc.pid) if self.proc.poll() is None else self.pids
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.1)
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


SERVERS: list[Server] = []


def start(name: str, cmd: list[str], env: dict[str, str], log: Path, port: int) -> Server:
    out = log.open("wb")
    proc = subprocess.Popen(
        cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
    )
    server = Server(name, port, proc, log)
    SERVERS.append(server)
    return server


def wait_http(server: Server, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise SystemExit(f"{server.name} exited:\n{server.log.read_text()[-3000:]}")
        url = f"http://127.0.0.1:{server.port}{path}"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2):
            # uvicorn reports ready before all worker processes are; give them a moment
            time.sleep(1.0)
            server.refresh()
            return
        time.sleep(0.2)
    raise SystemExit(f"{server.name} did not answer on {path} within {timeout} s")


def pixelmill(name: str, data: Path, workers: int, cache: str, run: Path) -> Server:
    """``pixelmill up`` on a free port. Servers share the metadata DB and the objects of
    ``data`` but each has its own data dir (``up`` resets its metrics folder there)."""
    port = free_port()
    env = {
        "PIXELMILL_CACHE__URL": cache,
        "PIXELMILL_DATABASE__URL": f"sqlite:///{data / 'pixelmill.db'}",
        "PIXELMILL_STORAGE__URL": f"file://{data / 'objects'}",
        "PIXELMILL_OBSERVABILITY__LOG_LEVEL": "WARNING",
    }
    own = run / name
    cmd = [str(VENV_BIN / "pixelmill"), "up", "--data-dir", str(own), "--port", str(port)]
    cmd += ["--server-workers", str(workers)]
    return start(name, cmd, env, run / f"{name}.log", port)


def thumbor(name: str, images: Path, run: Path, processes: int) -> Server:
    port = free_port()
    conf = run / f"{name}.conf"
    conf.write_text(
        f"LOADER = 'thumbor.loaders.file_loader'\n"
        f"FILE_LOADER_ROOT_PATH = {str(images)!r}\n"
        "STORAGE = 'thumbor.storages.no_storage'\n"
        "RESULT_STORAGE = None\n"
        f"QUALITY = {QUALITY}\n"
        "PROGRESSIVE_JPEG = False\n"  # baseline JPEG, like pixelmill
        "MAX_PIXELS = 200e6\n"  # let the 100 MP memory test through
        "ALLOW_UNSAFE_URL = True\n"
    )
    cmd = [str(THUMBOR_VENV / "bin" / "thumbor"), "--ip", "127.0.0.1", "--port", str(port)]
    cmd += ["--processes", str(processes), "--conf", str(conf), "-l", "error"]
    return start(name, cmd, {}, run / f"{name}.log", port)


def ensure_thumbor() -> None:
    if (THUMBOR_VENV / "bin" / "thumbor").exists():
        return
    print(f"installing thumbor=={THUMBOR_VERSION} into {THUMBOR_VENV} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(THUMBOR_VENV)], check=True)
    pip = [str(THUMBOR_VENV / "bin" / "pip"), "install", "-q"]
    subprocess.run([*pip, f"thumbor=={THUMBOR_VERSION}"], check=True)


# -- load -------------------------------------------------------------------------------
@dataclass
class Sample:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float  # server CPU per request
    errors: int
    requests: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(server: Server, path: str, conc: int, seconds: float) -> Sample:
    url = f"http://127.0.0.1:{server.port}{path}"
    cmd = [
        "wrk",
        "-t1",
        f"-c{conc}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "--latency",
        url,
    ]
    before = cpu_seconds(server.pids)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    used = cpu_seconds(server.pids) - before
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(g) for g in m.groups())
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    return Sample(
        rps=float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=_ms(latency["50"]),
        p99_ms=_ms(latency["99"]),
        cpu_ms=used * 1000 / max(requests, 1),
        errors=errors,
        requests=requests,
    )


def get(url: str) -> tuple[int, Any, bytes]:
    """Status, headers (case-insensitive) and body of a GET."""
    with urllib.request.urlopen(url, timeout=120) as resp:
        return resp.status, resp.headers, resp.read()


def upload(server: Server, key: str, path: Path) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/v1/images",
        data=path.read_bytes(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/octet-stream"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=300) as resp:
        return str(json.loads(resp.read())["id"])


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / CLK_TCK, sum(fields) / CLK_TCK


# -- the run ----------------------------------------------------------------------------
def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def geomean(values: list[float]) -> float:
    values = [v for v in values if v > 0 and math.isfinite(v)]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else math.nan


def verify(row: Row, urls: dict[str, str], ids: dict[str, str]) -> dict[str, int]:
    """Fetch each system's output once: same format and size, or stop."""
    import pyvips

    sizes = {}
    for system, url in urls.items():
        status, headers, body = get(url)
        image = pyvips.Image.new_from_buffer(body, "")
        got = (image.width, image.height)
        if status != 200 or headers.get("Content-Type") != row.mime or got != row.size:
            raise SystemExit(
                f"{system} {row.key}: {status} {headers.get('Content-Type')} {got}, "
                f"expected {row.mime} {row.size} ({url})"
            )
        if system.endswith("miss") and headers.get("X-Cache") != "MISS":
            raise SystemExit(f"{system} answered {headers.get('X-Cache')} on {url}")
        sizes[system] = len(body)
    return sizes


def floor(path: Path, batches: int, *, only: str = "") -> dict[str, float]:
    extra = [only] if only else []
    out = subprocess.run(
        [sys.executable, str(HERE / "floor.py"), str(path), str(batches), *extra],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def memory(run: Path, data: Path, image_id: str, images: Path) -> dict[str, Any]:
    """Idle RSS, then peak RSS of each server tree while rendering 100 MP thumbnails."""
    result: dict[str, Any] = {}
    name = IMAGES["jpeg_100mp"].filename
    for label, make, path in (
        ("pixelmill (1 process)", lambda: pixelmill("mem-1", data, 1, "none://", run), None),
        ("pixelmill (2 workers)", lambda: pixelmill("mem-2", data, 2, "none://", run), None),
        ("thumbor", lambda: thumbor("mem-thumbor", images, run, CORES), f"/unsafe/300x0/{name}"),
    ):
        server = make()
        try:
            wait_http(server, "/healthz" if path is None else "/healthcheck")
            time.sleep(2)
            pids = server.refresh()
            idle = sum(status_kb(p, "VmRSS") for p in pids)
            idle_by = {role(p, server.proc.pid): 0 for p in pids}
            for p in pids:
                idle_by[role(p, server.proc.pid)] += status_kb(p, "VmRSS")
            url_path = path or f"/v1/images/{image_id}/render?w=300&format=jpeg&q={QUALITY}"
            sampler = PssSampler(server.proc.pid)
            try:
                for _ in range(3):
                    get(f"http://127.0.0.1:{server.port}{url_path}")
                sample = wrk(server, url_path, 4, 4)
            finally:
                pss_peak = sampler.stop()
            pids = server.refresh()
            peaks = {p: status_kb(p, "VmHWM") for p in pids}
            peak_by: dict[str, list[float]] = {}
            for p, kb in peaks.items():
                peak_by.setdefault(role(p, server.proc.pid), []).append(kb / 1024)
            result[label] = {
                "idle_rss_mb": idle / 1024,
                "idle_rss_by_role_mb": {k: v / 1024 for k, v in idle_by.items()},
                "peak_rss_tree_mb": sum(peaks.values()) / 1024,
                "peak_rss_largest_process_mb": max(peaks.values()) / 1024,
                "peak_rss_by_role_mb": peak_by,
                "peak_pss_tree_mb": pss_peak / 1024,
                "processes": len(pids),
                "rps_100mp_c4": sample.rps,
                "errors": sample.errors,
            }
        finally:
            server.stop()
            SERVERS.remove(server)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 repetition of 2 s (~3 min)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per cell (median)")
    parser.add_argument("--seconds", type=float, default=4.0, help="wrk duration per run")
    parser.add_argument("--rows", default="", help="comma-separated row keys (default all)")
    parser.add_argument("--no-memory", action="store_true", help="skip the 100 MP memory test")
    args = parser.parse_args()
    if args.quick:
        args.reps, args.seconds = 1, 2.0
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get update && apt-get install -y wrk")
    rows = [r for r in ROWS if not args.rows or r.key in args.rows.split(",")]

    started = time.monotonic()
    load_before = os.getloadavg()
    paths = ensure(WORK / "images")
    ensure_thumbor()
    run = Path(tempfile.mkdtemp(prefix="render-", dir=WORK))
    data = run / "data"
    try:
        # the first server creates the data dir and the admin key, then takes the uploads
        data.mkdir(parents=True)
        first = pixelmill("pm-1-hit", data, 1, "memory://", run)
        wait_http(first, "/healthz")
        key = re.search(r"PIXELMILL_API_KEY=(\S+)", first.log.read_text())
        if key is None:
            raise SystemExit(f"no admin key in {first.log}")
        ids = {name: upload(first, key.group(1), path) for name, path in paths.items()}
        servers = {"pm-1-hit": first}
        servers["pm-1-miss"] = pixelmill("pm-1-miss", data, 1, "none://", run)
        servers["pm-2-hit"] = pixelmill("pm-2-hit", data, 2, "memory://", run)
        servers["pm-2-miss"] = pixelmill("pm-2-miss", data, 2, "none://", run)
        servers["thumbor"] = thumbor("thumbor", WORK / "images", run, CORES)
        for name, server in servers.items():
            wait_http(server, "/healthcheck" if name == "thumbor" else "/healthz")

        floors = [floor(paths["jpeg_12mp"], 3 if args.quick else 5)]
        pairs: dict[str, list[dict[str, float]]] = {}
        results: dict[str, dict[int, dict[str, list[Sample]]]] = {}
        sizes: dict[str, dict[str, int]] = {}
        busy0 = machine_busy()
        ours_cpu0 = sum(cpu_seconds(s.pids) for s in servers.values())
        order = list(servers)
        for row in rows:
            image_file = IMAGES[row.image].filename
            paths_by = {
                name: (
                    f"{row.thumbor}/{image_file}"
                    if name == "thumbor"
                    else f"/v1/images/{ids[row.image]}/render?{row.pixelmill}"
                )
                for name in servers
            }
            sizes[row.key] = verify(
                row,
                {n: f"http://127.0.0.1:{servers[n].port}{p}" for n, p in paths_by.items()},
                ids,
            )
            for name in order:  # warm up: caches, worker imports, branch predictors
                wrk(servers[name], paths_by[name], 8, 1)
            results[row.key] = {}
            for conc in (8, 32):
                cells: dict[str, list[Sample]] = {name: [] for name in order}
                for rep in range(args.reps):
                    rotated = order[rep % len(order) :] + order[: rep % len(order)]
                    for name in rotated:
                        sample = wrk(servers[name], paths_by[name], conc, args.seconds)
                        cells[name].append(sample)
                results[row.key][conc] = cells
                line = "  ".join(
                    f"{n} {median([s.rps for s in c]):7.1f}/s" for n, c in cells.items()
                )
                print(f"{row.key:16} c={conc:<3} {line}", flush=True)
            if row.key == "jpeg12_300":
                floors.append(floor(paths["jpeg_12mp"], 3 if args.quick else 5))
                pairs = paired_floor(servers, paths_by, paths["jpeg_12mp"], args)
        busy1 = machine_busy()
        ours_cpu1 = sum(cpu_seconds(s.pids) for s in servers.values())
        for server in list(servers.values()):
            server.stop()
            SERVERS.remove(server)

        mem = {} if args.no_memory else memory(run, data, ids["jpeg_100mp"], WORK / "images")
        floors.append(floor(paths["jpeg_12mp"], 3 if args.quick else 5))
        elapsed = time.monotonic() - started
        report = {
            "cores": CORES,
            "reps": args.reps,
            "seconds": args.seconds,
            "elapsed_s": elapsed,
            "load_before": load_before,
            "load_after": os.getloadavg(),
            "machine_busy_cores": (busy1[0] - busy0[0]) / ((busy1[1] - busy0[1]) / CORES),
            "servers_busy_cores": (ours_cpu1 - ours_cpu0) / ((busy1[1] - busy0[1]) / CORES),
            "floor_ms": {k: median([f[k] for f in floors]) for k in floors[0]},
            "floor_pairs": pairs,
            "sizes": sizes,
            "memory": mem,
            "results": {
                row: {
                    str(conc): {
                        name: [s.__dict__ for s in samples] for name, samples in cells.items()
                    }
                    for conc, cells in by_conc.items()
                }
                for row, by_conc in results.items()
            },
        }
        (WORK / "render-results.json").write_text(json.dumps(report, indent=1))
        print(markdown(report, rows))
    finally:
        for server in SERVERS:
            server.stop()
        shutil.rmtree(run, ignore_errors=True)


FLOOR_METHOD = "OpenCV IMREAD_REDUCED_COLOR_8 + INTER_AREA"


def paired_floor(
    servers: dict[str, Server], paths_by: dict[str, str], image: Path, args: Any
) -> dict[str, list[dict[str, float]]]:
    """Each wrk run (c=8) on the 12 MP miss servers between two floor batches; the ratio
    floor CPU ms / server CPU ms per request, run by run (the same load for both)."""
    pairs: dict[str, list[dict[str, float]]] = {"pm-1-miss": [], "pm-2-miss": []}
    before = floor(image, 3, only=FLOOR_METHOD)[FLOOR_METHOD]
    for rep in range(args.reps * 2):
        for name in list(pairs)[:: 1 if rep % 2 == 0 else -1]:
            sample = wrk(servers[name], paths_by[name], 8, args.seconds)
            after = floor(image, 3, only=FLOOR_METHOD)[FLOOR_METHOD]
            pairs[name].append(
                {
                    "floor_ms": (before + after) / 2,
                    "cpu_ms": sample.cpu_ms,
                    "rps": sample.rps,
                    "ratio": (before + after) / 2 / sample.cpu_ms,
                }
            )
            before = after
    for name, runs in pairs.items():
        print(f"floor pairs {name}: ratio {median([r['ratio'] for r in runs]):.3f}", flush=True)
    return pairs


# -- report -----------------------------------------------------------------------------
def _cell(samples: list[dict[str, float]]) -> dict[str, float]:
    return {k: median([s[k] for s in samples]) for k in ("rps", "p50_ms", "p99_ms", "cpu_ms")}


def markdown(report: dict[str, Any], rows: list[Row]) -> str:
    out: list[str] = []
    res = report["results"]
    for layout, label in (("1", "one process"), ("2", "2 workers")):
        out.append(
            f"\n**pixelmill ({label}) vs thumbor 7.8.0 ({report['cores']} processes)** — medians "
            f"of {report['reps']} runs x {report['seconds']:.0f} s; req/s, latency ms, "
            "server CPU ms per request\n"
        )
        out.append(
            "| render | cache | c | pixelmill req/s | p50 | p99 | CPU ms/req "
            "| thumbor req/s | p50 | p99 | CPU ms/req | ratio |"
        )
        out.append("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        ratios: dict[str, list[float]] = {"miss": [], "hit": []}
        for row in rows:
            for conc in ("8", "32"):
                t = _cell(res[row.key][conc]["thumbor"])
                for cache in ("miss", "hit"):
                    p = _cell(res[row.key][conc][f"pm-{layout}-{cache}"])
                    ratio = p["rps"] / t["rps"]
                    ratios[cache].append(ratio)
                    out.append(
                        f"| {row.title} | {cache} | {conc} | {p['rps']:.1f} | {p['p50_ms']:.0f} "
                        f"| {p['p99_ms']:.0f} | {p['cpu_ms']:.1f} | {t['rps']:.1f} "
                        f"| {t['p50_ms']:.0f} | {t['p99_ms']:.0f} | {t['cpu_ms']:.1f} "
                        f"| {ratio:.2f}x |"
                    )
        everything = ratios["miss"] + ratios["hit"]
        out.append(
            f"\nGeometric mean pixelmill/thumbor: **{geomean(everything):.2f}x** over all rows "
            f"(misses only {geomean(ratios['miss']):.2f}x, hits {geomean(ratios['hit']):.2f}x); "
            f"lowest row {min(everything):.2f}x."
        )
    out.append("\n**One process vs 2 workers** (req/s medians, ratio 2 workers / 1 process)\n")
    out.append("| render | cache | c | 1 process | 2 workers | ratio |")
    out.append("|---|---|--:|--:|--:|--:|")
    for row in rows:
        for conc in ("8", "32"):
            for cache in ("miss", "hit"):
                one = _cell(res[row.key][conc][f"pm-1-{cache}"])["rps"]
                two = _cell(res[row.key][conc][f"pm-2-{cache}"])["rps"]
                out.append(
                    f"| {row.title} | {cache} | {conc} | {one:.1f} | {two:.1f} | {two / one:.2f}x |"
                )
    floors = report["floor_ms"]
    best = min((v, k) for k, v in floors.items() if not k.startswith("pixelmill"))
    out.append("\n**Floor: 12 MP JPEG → 300 px JPEG, single thread, CPU ms per image**\n")
    out.append("| method | CPU ms |")
    out.append("|---|--:|")
    for k, v in sorted(floors.items(), key=lambda kv: kv[1]):
        out.append(f"| {k} | {v:.1f} |")
    if "jpeg12_300" in res:
        out.append(
            f"\nFloor = {best[1]}: {best[0]:.1f} ms → {1000 / best[0]:.1f} images/s per core.\n"
        )
        out.append(
            "| pixelmill, cache misses | c | req/s | per core (wall) | per CPU-second | ratio to floor (CPU) | ratio (wall) |"
        )
        out.append("|---|--:|--:|--:|--:|--:|--:|")
        for layout in ("1", "2"):
            for conc in ("8", "32"):
                p = _cell(res["jpeg12_300"][conc][f"pm-{layout}-miss"])
                per_cpu = 1000 / p["cpu_ms"]
                per_core = p["rps"] / report["cores"]
                floor_rate = 1000 / best[0]
                out.append(
                    f"| {'1 process' if layout == '1' else '2 workers'} | {conc} | {p['rps']:.1f} "
                    f"| {per_core:.1f} | {per_cpu:.1f} | {per_cpu / floor_rate:.2f} "
                    f"| {per_core / floor_rate:.2f} |"
                )
    if report.get("floor_pairs"):
        out.append(
            "\n**Floor ratio, paired** (each wrk run, c=8, between two single-thread floor "
            "batches; medians of the runs)\n"
        )
        out.append(
            "| pixelmill, cache misses | runs | floor CPU ms | server CPU ms/req | req/s | ratio |"
        )
        out.append("|---|--:|--:|--:|--:|--:|")
        for name, runs in report["floor_pairs"].items():
            label = "1 process" if name == "pm-1-miss" else "2 workers"
            out.append(
                f"| {label} | {len(runs)} | {median([r['floor_ms'] for r in runs]):.1f} "
                f"| {median([r['cpu_ms'] for r in runs]):.1f} | {median([r['rps'] for r in runs]):.1f} "
                f"| {median([r['ratio'] for r in runs]):.2f} "
                f"({min(r['ratio'] for r in runs):.2f}-{max(r['ratio'] for r in runs):.2f}) |"
            )
    if report["memory"]:
        out.append(
            "\n**Memory** (MB; RSS peak = sum of each process's VmHWM; PSS peak = the largest "
            "sum of PSS over the tree, sampled every 0.1 s: shared pages counted once)\n"
        )
        out.append(
            "| server | processes | idle RSS | peak RSS, 100 MP JPEG → 300 px (3 + c=4 for 4 s) "
            "| peak PSS | largest process | per process: idle → peak |"
        )
        out.append("|---|--:|--:|--:|--:|--:|---|")
        for label, m in report["memory"].items():
            roles = ", ".join(
                f"{r} {m.get('idle_rss_by_role_mb', {}).get(r, 0):.0f} → "
                + "/".join(f"{v:.0f}" for v in peaks)
                for r, peaks in m.get("peak_rss_by_role_mb", {}).items()
            )
            out.append(
                f"| {label} | {m['processes']} | {m['idle_rss_mb']:.0f} | {m['peak_rss_tree_mb']:.0f} "
                f"| {m.get('peak_pss_tree_mb', 0):.0f} | {m['peak_rss_largest_process_mb']:.0f} | {roles} |"
            )
    out.append(
        f"\nMachine: {report['cores']} cores shared with other engineers. Load average "
        f"{report['load_before'][0]:.1f} before, {report['load_after'][0]:.1f} after; during "
        f"the matrix the machine was busy {report['machine_busy_cores']:.2f} cores on "
        f"average, of which the servers under test used {report['servers_busy_cores']:.2f} "
        f"(wrk and other people's work the rest). Run took {report['elapsed_s'] / 60:.1f} min."
    )
    return "\n".join(out)


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    def handler(signum: int, _frame: Any) -> None:
        for server in SERVERS:
            server.stop()
        raise SystemExit(128 + signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


if __name__ == "__main__":
    with _stop_on_signals():
        main()
