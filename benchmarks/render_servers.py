"""The servers of the render benchmark: ``pixelmill up`` in its layouts and thumbor (the
peer, installed from PyPI into ``benchmarks/.work/thumbor-venv``), uploads, a check that
both answer the same render, and the memory test (idle and peak RSS while rendering a
100 MP JPEG to a thumbnail)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from _harness import (
    CORES,
    VENV_BIN,
    WORK,
    PssSampler,
    Server,
    free_port,
    start_server,
    status_kb,
    tree,
    wait_http,
    wrk_sample,
)
from images import IMAGES

THUMBOR_VENV = WORK / "thumbor-venv"
THUMBOR = THUMBOR_VENV / "bin" / "thumbor"
THUMBOR_VERSION = "7.8.0"
QUALITY = 82


def pixelmill(
    name: str,
    data: Path,
    workers: int,
    cache: str,
    run: Path,
    *,
    prefix: tuple[str, ...] = (),
    **extra: str,
) -> Server:
    """``pixelmill up`` on a free port. Servers share the metadata DB and the objects of
    ``data`` but each has its own data dir (``up`` resets its metrics folder there);
    ``extra``: more ``PIXELMILL_*`` variables (they win over these); ``prefix``: a command
    it runs under (valgrind)."""
    port = free_port()
    env = {
        "PIXELMILL_CACHE__URL": cache,
        "PIXELMILL_DATABASE__URL": f"sqlite:///{data / 'pixelmill.db'}",
        "PIXELMILL_STORAGE__URL": f"file://{data / 'objects'}",
        "PIXELMILL_OBSERVABILITY__LOG_LEVEL": "WARNING",
        # throughput is measured from one client: its request budget would cap it
        "PIXELMILL_RATELIMIT__ENABLED": "false",
        # wrk sends no key: renders of this benchmark's images are public by opt-in, as a
        # CDN origin serving anonymous renders would run (the same work for thumbor)
        "PIXELMILL_SECURITY__PUBLIC_READ": "true",
    } | extra
    cmd = [
        *prefix,
        str(VENV_BIN / "pixelmill"),
        "up",
        "--data-dir",
        str(run / name),
        "--port",
        str(port),
    ]
    cmd += ["--server-workers", str(workers)]
    return start_server(name, cmd, run / f"{name}.log", port=port, env=env)


def thumbor(name: str, images: Path, run: Path, processes: int) -> Server:
    """thumbor with ``processes`` processes, file loader, no storage, no result storage."""
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
    cmd = [str(THUMBOR), "--ip", "127.0.0.1", "--port", str(port)]
    cmd += ["--processes", str(processes), "--conf", str(conf), "-l", "error"]
    return start_server(name, cmd, run / f"{name}.log", port=port)


def ready(server: Server) -> None:
    """Wait for a server of either kind; uvicorn reports ready before all its worker
    processes are, so give them a second."""
    path = "/healthcheck" if server.name.endswith("thumbor") else "/healthz"
    wait_http(server, path, settle=1.0)


def ensure_thumbor() -> None:
    """Install thumbor into its own virtualenv once (its dependencies clash with ours)."""
    if THUMBOR.exists():
        return
    print(f"installing thumbor=={THUMBOR_VERSION} into {THUMBOR_VENV} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(THUMBOR_VENV)], check=True)
    pip = [str(THUMBOR_VENV / "bin" / "pip"), "install", "-q"]
    subprocess.run([*pip, f"thumbor=={THUMBOR_VERSION}"], check=True)


def get(url: str) -> tuple[int, Any, bytes]:
    """Status, headers (case-insensitive) and body of a GET."""
    with urllib.request.urlopen(url, timeout=120) as resp:
        return resp.status, resp.headers, resp.read()


def admin_key(server: Server) -> str:
    """The admin key of the first ``pixelmill up`` on a data dir (from the file its
    output names)."""
    log = server.log.read_text()
    found = re.search(r"Created the admin API key in (\S+) ", log)
    if found is not None:
        return Path(found.group(1)).read_text().strip()
    # versions before 2026-12 printed the key itself (benchmarking an older commit)
    printed = re.search(r"PIXELMILL_API_KEY=(\S+)", log)
    if printed is None:
        raise SystemExit(f"no admin key (or key file) in {server.log}")
    return printed.group(1)


def upload(server: Server, key: str, path: Path) -> str:
    request = urllib.request.Request(
        f"{server.url}/v1/images",
        data=path.read_bytes(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/octet-stream"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=300) as resp:
        return str(json.loads(resp.read())["id"])


def verify(urls: dict[str, str], mime: str, size: tuple[int, int]) -> dict[str, int]:
    """Fetch each system's output once: same format and size, or stop; body bytes."""
    import pyvips

    sizes = {}
    for system, url in urls.items():
        status, headers, body = get(url)
        image = pyvips.Image.new_from_buffer(body, "")
        got = (image.width, image.height)
        if status != 200 or headers.get("Content-Type") != mime or got != size:
            raise SystemExit(
                f"{system}: {status} {headers.get('Content-Type')} {got}, "
                f"expected {mime} {size} ({url})"
            )
        if system.endswith("miss") and headers.get("X-Cache") != "MISS":
            raise SystemExit(f"{system} answered {headers.get('X-Cache')} on {url}")
        sizes[system] = len(body)
    return sizes


def role(pid: int, root: int) -> str:
    """What a process of a server tree is, from its command line."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "worker"
    if pid == root:
        return "supervisor" if len(tree(root)) > 1 else "server"
    return "tracker" if b"resource_tracker" in cmd else "worker"


def memory(run: Path, data: Path, image_id: str, images: Path) -> dict[str, Any]:
    """Idle RSS, then peak RSS of each server tree while rendering 100 MP thumbnails."""
    name = IMAGES["jpeg_100mp"].filename
    ours = f"/v1/images/{image_id}/render?w=300&format=jpeg&q={QUALITY}"
    return {
        "pixelmill (1 process)": _memory(pixelmill("mem-1", data, 1, "none://", run), ours),
        "pixelmill (2 workers)": _memory(pixelmill("mem-2", data, 2, "none://", run), ours),
        "thumbor": _memory(thumbor("mem-thumbor", images, run, CORES), f"/unsafe/300x0/{name}"),
    }


def _memory(server: Server, url_path: str) -> dict[str, Any]:
    try:
        ready(server)
        time.sleep(2)
        root = server.proc.pid
        pids = server.refresh()
        idle_by: dict[str, int] = {}
        for p in pids:
            idle_by[role(p, root)] = idle_by.get(role(p, root), 0) + status_kb(p, "VmRSS")
        sampler = PssSampler(root)
        try:
            for _ in range(3):
                get(server.url + url_path)
            sample = wrk_sample(server, url_path, 4, 4)
        finally:
            pss_peak = sampler.stop()
        peaks = {p: status_kb(p, "VmHWM") for p in server.refresh()}
        peak_by: dict[str, list[float]] = {}
        for p, kb in peaks.items():
            peak_by.setdefault(role(p, root), []).append(kb / 1024)
        return {
            "idle_rss_mb": sum(idle_by.values()) / 1024,
            "idle_rss_by_role_mb": {k: v / 1024 for k, v in idle_by.items()},
            "peak_rss_tree_mb": sum(peaks.values()) / 1024,
            "peak_rss_largest_process_mb": max(peaks.values()) / 1024,
            "peak_rss_by_role_mb": peak_by,
            "peak_pss_tree_mb": pss_peak / 1024,
            "processes": len(peaks),
            "rps_100mp_c4": sample.rps,
            "errors": sample.errors,
        }
    finally:
        server.stop()
