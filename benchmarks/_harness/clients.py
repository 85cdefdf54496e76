"""What the benchmarks do as a client of pixelmill: small test images, a job written
straight through the repository, a Server-Sent Events reader, wrk runs.

The tests have their own few-line versions of some of these (``tests/jobs_helpers.py``,
``tests/helpers.py``): the benchmarks do not depend on the test suite, nor it on the
benchmarks for something this small."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .procs import Server, cpu_seconds


def small_png(width: int, height: int, seed: int = 0) -> bytes:
    """A deterministic 8-bit sRGB PNG (gradients + noise), as an upload."""
    import numpy as np
    import pyvips

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 / max(width - 1, 1), yy * 255 / max(height - 1, 1), (xx + yy) % 256])
    pixels = np.clip(base.transpose(1, 2, 0) + rng.normal(0, 12, (height, width, 3)), 0, 255)
    image = pyvips.Image.new_from_array(pixels.astype(np.uint8), interpretation="srgb")
    return bytes(image.write_to_buffer(".png"))


def make_job(repo: Any, **extra: object) -> str:
    """A queued one-task pipeline job created straight through the ``JobRepository``
    (no HTTP, no broker: nothing will run it); ``extra`` overrides the row's fields."""
    from pixelmill.backends.metadata.jobs import new_job_id

    job_id = new_job_id()
    row = {"id": job_id, "kind": "pipeline", "queue": "transform", "priority": 0}
    row |= {"params": {}, "inputs": [], "owner": "", "time_limit_s": 60.0, "max_retries": 3}
    repo.create(row | extra, [(0, None)], images=())
    return job_id


def sse_events(lines: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """``(event type, decoded data)`` of each event of a Server-Sent Events stream."""
    import orjson

    kind = ""
    for line in lines:
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            yield kind, orjson.loads(line[6:])


@dataclass
class WrkSample:
    """One wrk run: requests per second, latency, the server's CPU per request."""

    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float
    errors: int
    requests: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(
    url: str,
    *,
    conc: int,
    seconds: float,
    threads: int = 1,
    script: Path | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """wrk's report of ``seconds`` (whole, at least 1) at ``conc`` connections."""
    cmd = ["wrk", f"-t{threads}", f"-c{conc}", f"-d{max(1, round(seconds))}s", "--timeout", "30s"]
    cmd += ["--latency", *(["-s", str(script)] if script else []), url]
    return subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout


def wrk_sample(server: Server, path: str, conc: int, seconds: float) -> WrkSample:
    """GETs of ``path`` on ``server``, with the CPU its process tree spent meanwhile."""
    before = cpu_seconds(server.pids)
    out = wrk(server.url + path, conc=conc, seconds=seconds)
    used = cpu_seconds(server.pids) - before
    requests = int(_find(r"(\d+) requests in", out))
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(g) for g in m.groups())
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    return WrkSample(
        rps=float(_find(r"Requests/sec:\s+([0-9.]+)", out)),
        p50_ms=_ms(latency["50"]),
        p99_ms=_ms(latency["99"]),
        cpu_ms=used * 1000 / max(requests, 1),
        errors=errors,
        requests=requests,
    )


def _find(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise ValueError(f"wrk output without {pattern!r}:\n{text}")
    return match.group(1)
