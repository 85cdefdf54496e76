"""The slide viewer in a real browser: time to the first deep-zoom tile and to the first
overlay tile, on loopback, for a 2 MP image and a pyramidal whole-slide TIFF.

    .venv/bin/python benchmarks/web_viewer.py            # 2 MP image, 40,000 x 30,000 slide
    .venv/bin/python benchmarks/web_viewer.py --quick    # 2 MP image, 16,000 x 12,000 slide

A real ``pixelmill up`` (embedded) on a free port; Debian's Chromium driven by Playwright
(``PIXELMILL_CHROMIUM`` or ``chromium`` on PATH). The 2 MP image is analysed with the
``he-nuclei`` preset first, so its viewer opens with the contour overlay on top. The slide
(a tiled, JPEG-compressed pyramidal TIFF, far over the 268 MP render limit) is made once
and kept in the temp dir (``pixelmill-bench/``), so later runs skip making it. Each round
is a fresh browser context (empty browser cache) that logs in and opens ``/viewer/<id>``;
the page records ``performance.now()`` (ms since the navigation began) when OpenSeadragon
reports the first tile of the image and of the overlay, and when the view is first fully
loaded (every tile of the view at the resolution shown). The slide is opened whole and at
a full-resolution 1280 x 800 region in its middle (``?view=``). Then a 2048 x 2048 region
in its middle is analysed with the same preset (a pipeline job with ``region``: only that
part of level 0 is read) and the viewer opens on that region, its overlay placed there:
the first overlay tile is timed like the 2 MP image's. Round 1 meets a cold tile cache on
the server; later rounds a warm one: both are reported.
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
    env["PIXELMILL_SERVER__MAX_UPLOAD_BYTES"] = str(4 << 30)  # the slide
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


def slide_tiff(width: int, height: int) -> Path:
    """A pyramidal, tiled JPEG TIFF of ``width`` x ``height`` pixels at 0.25 µm per pixel,
    made once into the temp dir (libvips streams it: bounded memory and time)."""
    path = Path(tempfile.gettempdir()) / "pixelmill-bench" / f"slide-{width}x{height}.tif"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tile = pyvips.Image.new_from_buffer(he_png(512, 512), "")
    part = path.with_suffix(".part.tif")
    started = time.perf_counter()
    tile.replicate(width // 512 + 1, height // 512 + 1).crop(0, 0, width, height).copy(
        xres=4000.0, yres=4000.0
    ).tiffsave(str(part), tile=True, tile_width=256, tile_height=256, pyramid=True,
               compression="jpeg", Q=85, resunit="cm")  # fmt: skip
    part.rename(path)
    print(f"made {path.name}: {path.stat().st_size / 1e6:.0f} MB in "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    return path


def upload(url: str, key: str, body: bytes | Path, name: str) -> str:
    headers = {"Authorization": f"Bearer {key}", "X-Filename": name}
    if isinstance(body, Path):
        with body.open("rb") as fh:  # streamed as the raw body: a slide is big
            r = httpx.post(url + "/v1/images", content=fh, headers=headers, timeout=600)
    else:
        r = httpx.post(url + "/v1/images", content=body, headers=headers, timeout=600)
    r.raise_for_status()
    return str(r.json()["id"])


def analyse(url: str, key: str, image_id: str, region: dict[str, int] | None = None) -> float:
    """Run ``he-nuclei`` on the image (or on ``region`` of it); seconds to the job's end."""
    h = {"Authorization": f"Bearer {key}"}
    body: dict[str, Any] = {
        "inputs": [image_id],
        "pipeline": [{"op": "preset", "name": "he-nuclei"}],
    }
    if region is not None:
        body["region"] = region
    started = time.perf_counter()
    r = httpx.post(url + "/v1/jobs", json=body, headers=h)
    if r.status_code != 202:
        raise SystemExit(f"the he-nuclei job was refused: {r.text}")
    for _ in range(2400):
        state = httpx.get(f"{url}/v1/jobs/{r.json()['id']}", headers=h).json()["state"]
        if state in ("succeeded", "failed", "cancelled"):
            if state != "succeeded":
                raise SystemExit(f"the he-nuclei job {state}")
            return time.perf_counter() - started
        time.sleep(0.25)
    raise SystemExit("the he-nuclei job did not finish")


def open_viewer(
    browser: Any, url: str, password: str, path: str, overlay: bool, shot: Path | None = None
) -> dict[str, float]:
    """One fresh browser context opening ``path`` (``/viewer/<id>?...``): when the first
    tile of the image (and of the overlay) arrived, and when the view was fully loaded
    (then a screenshot to ``shot``, when given)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.request.post(url + "/v1/auth/login", data={"username": "admin", "password": password})
        page.goto(url + path)
        view = page.locator(".deepzoom").first
        marks = {"first_tile_ms": "data-first-tile-ms", "view_loaded_ms": "data-view-loaded-ms"}
        if overlay:
            marks["overlay_tile_ms"] = "data-first-overlay-tile-ms"
        out = {}
        for name, attribute in marks.items():
            view.and_(page.locator(f"[{attribute}]")).wait_for(timeout=180_000)
            out[name] = float(view.get_attribute(attribute) or "nan")
        if shot is not None:
            page.screenshot(path=str(shot))
        return out
    finally:
        context.close()


def measure(
    browser: Any,
    url: str,
    password: str,
    path: str,
    overlay: bool,
    rounds: int,
    shot: Path | None = None,
) -> dict[str, Any]:
    runs = [open_viewer(browser, url, password, path, overlay, shot) for _ in range(rounds)]
    out: dict[str, Any] = {"path": path, "runs": runs}
    for k in runs[0]:
        out[f"{k}_cold"] = runs[0][k]
        out[f"{k}_warm_median"] = statistics.median(r[k] for r in runs[1:]) if rounds > 1 else None
    return out


def main() -> None:
    p = parser(__doc__, "a 16,000 x 12,000 slide, 3 rounds")
    p.add_argument("--slide-width", type=int, default=40_000, help="pixels")
    p.add_argument("--slide-height", type=int, default=30_000, help="pixels")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--screenshot", type=Path, help="save the region overlay's view here (PNG)")
    args = parse(p, {"slide_width": 16_000, "slide_height": 12_000, "rounds": 3})
    chromium = os.environ.get("PIXELMILL_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        raise SystemExit("no Chromium: apt-get install -y chromium")
    if not BUILT.is_file():
        raise SystemExit("the web UI is not built: make up (or npm ci && npm run build in web/)")
    from playwright.sync_api import sync_playwright

    w, h = args.slide_width, args.slide_height
    slide_file = slide_tiff(w, h)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        proc, url = start(data)
        try:
            key = (data / "admin-api-key").read_text().strip()
            password = (data / "admin-password").read_text().strip()
            small = upload(url, key, he_png(1632, 1224), "he-2mp.png")
            analyse(url, key, small)
            started = time.perf_counter()
            slide = upload(url, key, slide_file, "slide.tif")
            upload_s = time.perf_counter() - started
            middle = f"{w // 2 - 640},{h // 2 - 400},1280,800"
            region = {"left": w // 2 - 1024, "top": h // 2 - 1024, "width": 2048, "height": 2048}
            region_s = analyse(url, key, slide, region)
            on_region = ",".join(str(region[k]) for k in ("left", "top", "width", "height"))
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                results = {
                    "2mp": measure(browser, url, password, f"/viewer/{small}", True, args.rounds),
                    "slide": measure(
                        browser, url, password, f"/viewer/{slide}", False, args.rounds
                    ),
                    "slide_region": measure(
                        browser, url, password, f"/viewer/{slide}?view={middle}", False, args.rounds
                    ),
                    "slide_overlay": measure(
                        browser,
                        url,
                        password,
                        f"/viewer/{slide}?view={on_region}",
                        True,
                        args.rounds,
                        args.screenshot,
                    ),
                }
                browser.close()
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
    results["slide_upload_s"] = upload_s
    results["slide_region_job_s"] = region_s
    results["slide_bytes"] = slide_file.stat().st_size
    report(results, w, h)


def report(results: dict[str, Any], width: int, height: int) -> None:
    def ms(v: float | None) -> str:
        return "—" if v is None else f"{v:.0f} ms"

    def row(label: str, which: str, key: str) -> tuple[str, str, str]:
        r = results[which]
        return label, ms(r[f"{key}_cold"]), ms(r[f"{key}_warm_median"])

    slide = f"pyramidal TIFF {width:,} x {height:,} ({width * height / 1e9:.1f} GP)"
    rows = [
        row("2 MP PNG (1632 x 1224), first tile", "2mp", "first_tile_ms"),
        row("2 MP PNG, first overlay tile (he-nuclei)", "2mp", "overlay_tile_ms"),
        row("2 MP PNG, view fully loaded", "2mp", "view_loaded_ms"),
        row(f"{slide}, whole, first tile", "slide", "first_tile_ms"),
        row(f"{slide}, whole, view fully loaded", "slide", "view_loaded_ms"),
        row("slide, 1280 x 800 at full resolution (middle), first tile", "slide_region", "first_tile_ms"),
        row("slide, 1280 x 800 at full resolution, view fully loaded", "slide_region", "view_loaded_ms"),
        row("slide, 2048 x 2048 region analysed (middle), first tile", "slide_overlay", "first_tile_ms"),
        row("slide, 2048 x 2048 region, first overlay tile (he-nuclei)", "slide_overlay", "overlay_tile_ms"),
        row("slide, 2048 x 2048 region with overlay, view fully loaded", "slide_overlay", "view_loaded_ms"),
    ]  # fmt: skip
    print(table(("viewer, loopback", "cold tile cache", "warm (median)"), rows, "lrr"))
    print(
        f"slide upload: {results['slide_bytes'] / 1e6:.0f} MB in {results['slide_upload_s']:.1f} s; "
        f"he-nuclei on its 2048 x 2048 region: {results['slide_region_job_s']:.1f} s (job)"
    )
    headline = [f"{r[0]}: {r[1]} cold, {r[2]} warm" for r in rows]
    save("web_viewer", {"slide_width": width, "slide_height": height, **results}, headline)


if __name__ == "__main__":
    main()
