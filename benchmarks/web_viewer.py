"""The slide viewer in a real browser: time to the first deep-zoom tile and to the first
overlay tile, on loopback, for a 2 MP image and a pyramidal whole-slide TIFF.

    .venv/bin/python benchmarks/web_viewer.py            # 2 MP image, 16,000 x 16,000 slide
    .venv/bin/python benchmarks/web_viewer.py --quick    # 2 MP image, 8,000 x 8,000 slide

A real ``pixelmill up`` (embedded) on a free port; Debian's Chromium driven by Playwright
(``PIXELMILL_CHROMIUM`` or ``chromium`` on PATH). The 2 MP image is analysed with the
``he-nuclei`` preset first, so its viewer opens with the contour overlay on top. Each
round is a fresh browser context (empty browser cache) that logs in and opens
``/viewer/<id>``; the page records ``performance.now()`` (ms since the navigation began)
when OpenSeadragon reports the first tile of the image and of the overlay. Round 1 meets
a cold render cache on the server; later rounds a warm one: both are reported.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyvips
from _harness import ROOT, parse, parser, save, table

PIXELMILL = str(Path(sys.executable).with_name("pixelmill"))
BUILT = ROOT / "src" / "pixelmill" / "services" / "web" / "static" / "index.html"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELMILL_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    proc = subprocess.Popen(
        [PIXELMILL, "up", "--port", str(port), "--data-dir", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("pixelmill up did not become healthy")


def he_png(width: int, height: int) -> bytes:
    """An H&E-like image: dark purple disks on pink, like the e2e test's."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    cy = (
        (yy // 40) * 40
        + 20
        + rng.integers(-3, 4, (height // 40 + 1, width // 40 + 1))[yy // 40, xx // 40]
    )
    cx = (xx // 40) * 40 + 20
    nucleus = (yy - cy) ** 2 + (xx - cx) ** 2 < 11**2
    rgb = np.where(nucleus[..., None], [95, 60, 150], [245, 180, 240]).astype(np.uint8)
    return bytes(pyvips.Image.new_from_array(rgb, interpretation="srgb").write_to_buffer(".png"))


def slide_tiff(side: int, path: Path) -> Path:
    """A pyramidal, tiled JPEG TIFF of ``side`` x ``side`` pixels at 0.25 µm per pixel."""
    tile = pyvips.Image.new_from_buffer(he_png(512, 512), "")
    reps = side // 512 + 1
    tile.replicate(reps, reps).crop(0, 0, side, side).copy(xres=4000.0, yres=4000.0).tiffsave(
        str(path), tile=True, pyramid=True, compression="jpeg", Q=85, resunit="cm"
    )
    return path


def upload(url: str, key: str, body: bytes, name: str) -> str:
    r = httpx.post(
        url + "/v1/images",
        files={"file": (name, body)},
        headers={"Authorization": f"Bearer {key}"},
        timeout=600,
    )
    r.raise_for_status()
    return str(r.json()["id"])


def analyse(url: str, key: str, image_id: str) -> None:
    h = {"Authorization": f"Bearer {key}"}
    job = httpx.post(
        url + "/v1/jobs",
        json={"inputs": [image_id], "pipeline": [{"op": "preset", "name": "he-nuclei"}]},
        headers=h,
    ).json()
    for _ in range(1200):
        state = httpx.get(f"{url}/v1/jobs/{job['id']}", headers=h).json()["state"]
        if state in ("succeeded", "failed", "cancelled"):
            if state != "succeeded":
                raise SystemExit(f"the he-nuclei job {state}")
            return
        time.sleep(0.25)
    raise SystemExit("the he-nuclei job did not finish")


def open_viewer(
    browser: Any, url: str, password: str, image_id: str, overlay: bool
) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.request.post(url + "/v1/auth/login", data={"username": "admin", "password": password})
        page.goto(f"{url}/viewer/{image_id}")
        view = page.locator(".deepzoom").first
        view.and_(page.locator("[data-first-tile-ms]")).wait_for(timeout=120_000)
        out = {"first_tile_ms": float(view.get_attribute("data-first-tile-ms") or "nan")}
        if overlay:
            view.and_(page.locator("[data-first-overlay-tile-ms]")).wait_for(timeout=120_000)
            out["overlay_tile_ms"] = float(
                view.get_attribute("data-first-overlay-tile-ms") or "nan"
            )
        return out
    finally:
        context.close()


def measure(
    browser: Any, url: str, password: str, image_id: str, overlay: bool, rounds: int
) -> dict[str, Any]:
    runs = [open_viewer(browser, url, password, image_id, overlay) for _ in range(rounds)]
    out: dict[str, Any] = {"runs": runs}
    for k in runs[0]:
        out[f"{k}_cold"] = runs[0][k]
        out[f"{k}_warm_median"] = statistics.median(r[k] for r in runs[1:]) if rounds > 1 else None
    return out


def main() -> None:
    p = parser(__doc__, "an 8,000 x 8,000 slide, 3 rounds")
    p.add_argument("--slide", type=int, default=16_000, help="side of the slide, pixels")
    p.add_argument("--rounds", type=int, default=5)
    args = parse(p, {"slide": 8_000, "rounds": 3})
    chromium = os.environ.get("PIXELMILL_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        raise SystemExit("no Chromium: apt-get install -y chromium")
    if not BUILT.is_file():
        raise SystemExit("the web UI is not built: make up (or npm ci && npm run build in web/)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        proc, url = start(data)
        try:
            key = (data / "admin-api-key").read_text().strip()
            password = (data / "admin-password").read_text().strip()
            small = upload(url, key, he_png(1632, 1224), "he-2mp.png")
            analyse(url, key, small)
            slide = upload(
                url, key, slide_tiff(args.slide, Path(tmp) / "slide.tif").read_bytes(), "slide.tif"
            )
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                results = {
                    "2mp": measure(browser, url, password, small, True, args.rounds),
                    "slide": measure(browser, url, password, slide, False, args.rounds),
                }
                browser.close()
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
    report(results, args.slide)


def report(results: dict[str, Any], side: int) -> None:
    def ms(v: float | None) -> str:
        return "—" if v is None else f"{v:.0f} ms"

    rows = [
        ("2 MP PNG (1632 x 1224), first tile", ms(results["2mp"]["first_tile_ms_cold"]), ms(results["2mp"]["first_tile_ms_warm_median"])),
        ("2 MP PNG, first overlay tile (he-nuclei)", ms(results["2mp"]["overlay_tile_ms_cold"]), ms(results["2mp"]["overlay_tile_ms_warm_median"])),
        (f"pyramidal TIFF {side:,} x {side:,}, first tile", ms(results["slide"]["first_tile_ms_cold"]), ms(results["slide"]["first_tile_ms_warm_median"])),
    ]  # fmt: skip
    print(table(("viewer, loopback", "cold render cache", "warm (median)"), rows, "lrr"))
    headline = [f"{r[0]}: {r[1]} cold, {r[2]} warm" for r in rows]
    save("web_viewer", {"slide_side": side, **results}, headline)


if __name__ == "__main__":
    main()
