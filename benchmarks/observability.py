"""Render throughput with observability on vs off, side by side in one run.

One command (about 2 minutes; ``--quick`` under 1)::

    PYTHONPATH=src .venv/bin/python benchmarks/observability.py      # or --quick

Two ``pixelmill up`` servers (one server process each, no result cache: every request
resizes and encodes; the original's decode is kept between requests as pixelmill does by
default, ``render.intermediate_cache_bytes``, unless ``--no-kept-decodes``: then every
request decodes it too) over the same images, all on 127.0.0.1:

* **off**: tracing off (``observability.tracing.exporter=none``, the default), log
  level WARNING, nobody scrapes ``/metrics``;
* **on** (``--on``, default ``tracing,logs,scrape``): requests traced
  (``exporter=otlp``, ``--protocol``, default http/json, ``--sample-ratio``, default
  1.0: every request; the server span,
  the render stages and DB statements) and exported over OTLP/HTTP to a local sink
  that answers like a collector; logs at INFO as JSON; ``/metrics`` scraped every
  ``--scrape-s`` (5) seconds during the run (Prometheus scrapes every 15-60 s).
  ``access`` adds an INFO access line per request.

Prometheus counters and histograms are recorded in both (they cannot be turned off:
``metrics_enabled=false`` only hides ``/metrics``). wrk runs against both in turn, the
order rotated per repetition; the report gives medians of req/s, p50, p99 and the
server's CPU ms per request, and the throughput overhead of ``on``. Results go to stdout
and ``benchmarks/.work/observability-results.json``; the numbers belong in
docs/benchmarks.md, "Observability overhead".
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import shutil
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _harness import (
    CORES,
    WORK,
    Server,
    callgrind,
    median,
    otlp_sink,
    parse,
    parser,
    rotations,
    save,
    stopping_on_signals,
    table,
    wait_http,
    wrk_sample,
)
from _harness.otlp_sink import Sink
from images import ensure
from render_servers import QUALITY, admin_key, pixelmill, ready, upload

ROWS = {
    "jpeg2_300x200": ("jpeg_2mp", f"w=300&h=200&format=jpeg&q={QUALITY}", "2.5 MP JPEG -> 300x200"),
    "jpeg12_300": ("jpeg_12mp", f"w=300&format=jpeg&q={QUALITY}", "12 MP JPEG -> 300 px"),
}


@contextlib.contextmanager
def scraping(server: Server, every_s: float) -> Iterator[None]:
    """GET ``/metrics`` of ``server`` every ``every_s`` while the block runs."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every_s):
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(server.url + "/metrics", timeout=5) as resp,
            ):
                resp.read()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def observed(args: Any, endpoint: str) -> dict[str, str]:
    """The settings of the "on" server."""
    extra: dict[str, str] = {}
    if "tracing" in args.on:
        extra["PIXELMILL_OBSERVABILITY__TRACING__EXPORTER"] = "otlp"
        extra["PIXELMILL_OBSERVABILITY__TRACING__ENDPOINT"] = endpoint
        extra["PIXELMILL_OBSERVABILITY__TRACING__SAMPLE_RATIO"] = str(args.sample_ratio)
        extra["PIXELMILL_OBSERVABILITY__TRACING__PROTOCOL"] = args.protocol
    if "logs" in args.on:
        extra["PIXELMILL_OBSERVABILITY__LOG_LEVEL"] = "INFO"
        extra["PIXELMILL_OBSERVABILITY__LOG_FORMAT"] = "json"
    if "access" in args.on:
        extra["PIXELMILL_OBSERVABILITY__ACCESS_LOG"] = "true"
    return extra


def measure(
    args: Any, run: Path, image: Path, query: str, endpoint: str
) -> dict[str, list[dict[str, float]]]:
    data = run / "data"
    data.mkdir(parents=True)
    both: dict[str, str] = {}
    if not args.kept_decodes:  # every request decodes its original too
        both["PIXELMILL_RENDER__INTERMEDIATE_CACHE_BYTES"] = "0"
    off = pixelmill("off", data, 1, "none://", run, **both)
    ready(off)
    key = admin_key(off)
    path = f"/v1/images/{upload(off, key, image)}/render?{query}"
    on = pixelmill("on", data, 1, "none://", run, **both, **observed(args, endpoint))
    ready(on)
    servers = {"off": off, "on": on}
    for server in servers.values():  # every answer a JPEG, then warm up
        with urllib.request.urlopen(server.url + path, timeout=60) as resp:
            assert resp.status == 200 and resp.read(3) == b"\xff\xd8\xff", server.name
        wrk_sample(server, path, args.concurrency, 1)
    cells: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    for order in rotations(list(servers), args.reps):
        for name in order:
            scraped = name == "on" and "scrape" in args.on
            guard = scraping(on, args.scrape_s) if scraped else contextlib.nullcontext()
            with guard:
                sample = wrk_sample(servers[name], path, args.concurrency, args.seconds)
            if sample.errors:
                raise SystemExit(f"{name}: {sample.errors} of {sample.requests} requests failed")
            cells[name].append(sample.__dict__)
            print(f"{name:3} {sample.rps:8.1f} req/s  cpu {sample.cpu_ms:.2f} ms/req", flush=True)
    for server in servers.values():
        server.stop()
    return cells


def instructions(args: Any, run: Path, image: Path, query: str, endpoint: str) -> dict[str, float]:
    """Instructions per request (``--instructions N``): each server under callgrind, a
    warm-up, then N requests at ``--concurrency``. Nothing runs by the clock on the on
    side, which valgrind slows about 50-fold (it would weigh 50 times what it does
    natively): no scrapes, and spans leave in full batches of 512 only, as they do at a
    few hundred requests a second (``OTEL_BSP_SCHEDULE_DELAY`` of an hour; pick N with
    3 N a multiple of 512, e.g. 512, so the batches sent are the requests' own)."""
    data = run / "data"
    data.mkdir(parents=True)
    both: dict[str, str] = {}
    if not args.kept_decodes:
        both["PIXELMILL_RENDER__INTERMEDIATE_CACHE_BYTES"] = "0"
    plain = pixelmill("plain", data, 1, "none://", run, **both)
    ready(plain)
    path = f"/v1/images/{upload(plain, admin_key(plain), image)}/render?{query}"
    plain.stop()
    per_request: dict[str, float] = {}
    hour = {"OTEL_BSP_SCHEDULE_DELAY": "3600000"}
    for name, extra in (("off", {}), ("on", observed(args, endpoint) | hour)):
        server = pixelmill(
            name,
            data,
            1,
            "none://",
            run,
            prefix=tuple(callgrind.prefix(run, name)),
            **both,
            **extra,
        )
        wait_http(server, "/healthz", timeout=900, settle=5)
        get_many(server, path, 4 * args.concurrency, args.concurrency)
        callgrind.zero(server)
        exports = Sink.exports
        get_many(server, path, args.instructions, args.concurrency)
        time.sleep(6)  # a batch being sent gets there
        per_request[name] = callgrind.total(server, run) / args.instructions
        print(f"{name}: {Sink.exports - exports} OTLP exports while counted", flush=True)
        if args.dumps:  # kept for callgrind_annotate
            args.dumps.mkdir(parents=True, exist_ok=True)
            for dump in run.glob(f"callgrind.{name}.*.*"):
                shutil.copy(dump, args.dumps / dump.name)
        print(f"{name:3} {per_request[name] / 1e6:.3f} M instructions a request", flush=True)
        server.stop()
    return per_request


def get_many(server: Server, path: str, count: int, concurrency: int) -> None:
    """``count`` GETs of ``path``, ``concurrency`` keep-alive connections at a time; every
    answer must be a 200 JPEG."""

    def client(share: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
        for _ in range(share):
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200 and body[:3] == b"\xff\xd8\xff", (resp.status, body[:200])
        conn.close()

    shares = [count // concurrency + (i < count % concurrency) for i in range(concurrency)]
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(client, shares))


def summary(cells: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    keys = ("rps", "p50_ms", "p99_ms", "cpu_ms", "errors")
    return {name: {k: median([s[k] for s in runs]) for k in keys} for name, runs in cells.items()}


def main() -> None:
    p = parser(__doc__, "2 reps of 2 s")
    p.add_argument("--reps", type=int, default=6, help="runs per side (median)")
    p.add_argument("--seconds", type=float, default=5.0, help="wrk duration per run")
    p.add_argument("--concurrency", type=int, default=8, help="wrk connections")
    p.add_argument("--on", default="tracing,logs,scrape", help="what 'on' turns on (comma list)")
    p.add_argument("--sample-ratio", type=float, default=1.0, help="traces recorded (0..1)")
    p.add_argument(
        "--protocol", default="http/json", choices=("http/json", "http/protobuf"), help="OTLP"
    )
    p.add_argument(
        "--kept-decodes",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the decoded-originals cache (on by default in pixelmill; off: every request "
        "decodes its original)",
    )
    p.add_argument("--scrape-s", type=float, default=5.0, help="seconds between scrapes")
    p.add_argument("--row", default="jpeg2_300x200", choices=sorted(ROWS), help="the render")
    p.add_argument(
        "--instructions",
        type=int,
        default=0,
        metavar="N",
        help="count instructions of N requests per side under valgrind instead of timing",
    )
    p.add_argument("--dumps", type=Path, help="with --instructions: keep callgrind's dumps here")
    args = parse(p, {"reps": 2, "seconds": 2.0})
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get update && apt-get install -y wrk")
    name, query, title = ROWS[args.row]
    image = ensure(WORK / "images", {name})[name]
    run = Path(tempfile.mkdtemp(prefix="observability-", dir=WORK))
    started = time.monotonic()
    try:
        with otlp_sink.running() as endpoint:
            if args.instructions:
                return count(args, run, image, query, endpoint, title, started)
            cells = measure(args, run, image, query, endpoint)
    finally:
        shutil.rmtree(run, ignore_errors=True)
    med = summary(cells)
    overhead = {
        "rps_pct": 100 * (1 - med["on"]["rps"] / med["off"]["rps"]),
        "cpu_pct": 100 * (med["on"]["cpu_ms"] / med["off"]["cpu_ms"] - 1),
    }
    report = {"row": title, "medians": med, "runs": cells, "overhead": overhead}
    report |= {"exports": Sink.exports, "export_bytes": Sink.received}
    report |= {"reps": args.reps, "seconds": args.seconds, "concurrency": args.concurrency}
    report |= {"on": args.on, "sample_ratio": args.sample_ratio, "scrape_s": args.scrape_s}
    report |= {"protocol": args.protocol, "kept_decodes": args.kept_decodes}
    report |= {"cores": CORES, "elapsed_s": time.monotonic() - started}
    headline = [
        f"observability on ({args.on}, ratio {args.sample_ratio}, {args.protocol}) vs off "
        f"({title}{'' if args.kept_decodes else ', every decode'}, c={args.concurrency}): "
        f"throughput {-overhead['rps_pct']:+.1f} %, CPU/request {overhead['cpu_pct']:+.1f} %"
    ]
    save("observability", report, headline)
    rows = [
        (name, f"{m['rps']:.1f}", f"{m['p50_ms']:.1f}", f"{m['p99_ms']:.1f}", f"{m['cpu_ms']:.2f}")
        for name, m in med.items()
    ]
    print(table(["observability", "req/s", "p50 ms", "p99 ms", "CPU ms/req"], rows, "lrrrr"))
    print(headline[0])
    print(f"OTLP exports received: {Sink.exports} ({Sink.received} bytes)")


def count(
    args: Any, run: Path, image: Path, query: str, endpoint: str, title: str, started: float
) -> None:
    """The ``--instructions`` run and its report."""
    per_request = instructions(args, run, image, query, endpoint)
    pct = 100 * (per_request["on"] / per_request["off"] - 1)
    headline = [
        f"observability on ({args.on} without scrapes, ratio {args.sample_ratio}, "
        f"{args.protocol}) vs off ({title}, c={args.concurrency}, {args.instructions} "
        f"requests under callgrind): instructions/request {pct:+.1f} %"
    ]
    report = {"row": title, "instructions_per_request": per_request, "overhead_pct": pct}
    report |= {"requests": args.instructions, "concurrency": args.concurrency, "on": args.on}
    report |= {"sample_ratio": args.sample_ratio, "protocol": args.protocol}
    report |= {"exports": Sink.exports, "export_bytes": Sink.received}
    report |= {"kept_decodes": args.kept_decodes, "elapsed_s": time.monotonic() - started}
    save("observability-instructions", report, headline)
    print(headline[0])
    print(f"OTLP exports received: {Sink.exports} ({Sink.received} bytes)")


if __name__ == "__main__":
    with stopping_on_signals():
        main()
