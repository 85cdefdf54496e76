"""Instructions per request of tracing's own calls, counted by valgrind's callgrind.

What one traced render asks of tracing, with no render around it: the server span (as
the gateway's middleware opens and closes it), two stage spans, their encoding and their
export over OTLP/HTTP to a sink in another process (full batches of 512 only, as at a
few hundred requests a second). Run under callgrind twice (N and 5 N
requests after the same start-up), the difference per request is the calls' cost, in
instructions: a count the machine's load does not move, to compare two versions of the
tracing code (``PYTHONPATH`` picks the version)::

    PYTHONPATH=src .venv/bin/python benchmarks/tracing_calls.py            # about 4 min
    PYTHONPATH=/other/checkout/src .venv/bin/python benchmarks/tracing_calls.py

It prints the instructions per request with tracing off, on at sample ratio 1.0 and on
at 0.0. A render's instructions (``observability.py --instructions``) put them in scale.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

HERE = Path(__file__).resolve()


def requests(mode: str, count: int, endpoint: str) -> None:
    """The traced calls of ``count`` renders (in the process callgrind counts)."""
    from pixelmill.observability import tracing
    from pixelmill.services.gateway.middleware import _close_server_span

    if mode != "off":
        settings = types.SimpleNamespace(
            exporter="otlp",
            endpoint=endpoint,
            sample_ratio=float(mode),
            protocol="http/json",
            service_name="bench",
        )
        tracing.configure_tracing(settings)
    route = types.SimpleNamespace(path="/v1/images/{image_id}/render")

    def render(i: int) -> None:
        path = f"/v1/images/{i}/render"  # every request its own image, as in real traffic
        with tracing.http_server_span("GET", path, {}) as span:
            with tracing.stage("render.decode_ops", {"pixelmill.steps": 2}):
                pass
            with tracing.stage("render.encode", {"pixelmill.format": "jpeg"}):
                pass
            if span is not None:
                _close_server_span(span, {"method": "GET", "path": path, "route": route}, 200)

    for i in range(600 + count):  # 600: warm-up, and the exporter's first connection
        render(i)
        if i % 100 == 0:
            time.sleep(0.001)
    tracing.flush()


def counted(mode: str, count: int, endpoint: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable]
        cmd += [str(HERE), "--run", mode, str(count), endpoint]
        # batches leave when full, never by the clock, which valgrind slows 50-fold
        env = {**os.environ, "PYTHONHASHSEED": "0", "OTEL_BSP_SCHEDULE_DELAY": "3600000"}
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        found = re.search(rb"^(?:summary|totals): (\d+)", out.read_bytes(), re.MULTILINE)
        assert found is not None
        return int(found.group(1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=500, help="N (and 5 N)")
    p.add_argument("--modes", default="off,1.0,0.0", help="tracing off or sample ratios")
    p.add_argument("--run", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.run:
        mode, count, endpoint = args.run
        requests(mode, int(count), endpoint)
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink_script = str(HERE.parent / "_harness" / "otlp_sink.py")
    sink = subprocess.Popen([sys.executable, sink_script, "--port", str(port)])
    try:
        time.sleep(1)
        endpoint = f"http://127.0.0.1:{port}/v1/traces"
        for mode in args.modes.split(","):
            few = counted(mode, args.requests, endpoint)
            many = counted(mode, 5 * args.requests, endpoint)
            per = (many - few) / (4 * args.requests)
            print(f"tracing {mode:3}: {per / 1e3:7.1f} k instructions a request", flush=True)
    finally:
        sink.terminate()
        sink.wait()


if __name__ == "__main__":
    main()
