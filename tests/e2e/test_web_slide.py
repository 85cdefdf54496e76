"""A whole slide analysed a region at a time from the viewer, in a real Chromium against
a real ``pixelmill up`` whose pixel limit makes a 6 MP pyramidal TIFF a slide: "Analyse
this region" on the view runs he-nuclei there, the overlay comes up on that region, and
a click on a nucleus shows its measurements in the slide's pixels."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import pyvips

from pixelmill.services.web import ui
from tests.e2e.test_up import Server, _free_port
from tests.e2e.test_web import _keep_error, _missing, browser, shoot

pytest.importorskip("playwright", reason="pytest-playwright is in the test extra")
from playwright.sync_api import Browser, BrowserContext, Locator, expect

__all__ = ["browser"]  # the module's Chromium fixture, shared with test_web

PITCH = 40  # a nucleus centred at (40 i + 20, 40 j + 20) of the slide


def slide_tiff(path: Path, width: int = 3000, height: int = 2000) -> Path:
    """A tiled pyramidal TIFF of H&E-like nuclei on a 40-px grid (lossless)."""
    yy, xx = np.mgrid[0:height, 0:width]
    inside = (yy % PITCH - 20) ** 2 + (xx % PITCH - 20) ** 2 < 100
    rgb = np.where(inside[..., None], [95, 60, 150], [245, 180, 240]).astype(np.uint8)
    image = pyvips.Image.new_from_array(rgb, interpretation="srgb")
    image.tiffsave(str(path), tile=True, pyramid=True, compression="deflate")
    return path


def centre(locator: Locator) -> tuple[float, float]:
    """Where the element's centre is on the screen now."""
    box = locator.bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


@pytest.fixture(scope="module")
def slide_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not ui.built():
        _missing("the web UI is not built: make test builds it (npm ci && npm run build)")
    data = tmp_path_factory.mktemp("web-slide") / "data"
    server = Server(data, _free_port(), settings={"PIXELMILL_RENDER__MAX_PIXELS": "1000000"})
    server.data_dir = data  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.mark.slow
def test_analyse_a_region_of_a_slide_from_the_viewer(
    slide_server: Server,
    browser: Browser,
    tmp_path: Path,
    traced_context: Callable[..., BrowserContext],
) -> None:
    data: Path = slide_server.data_dir  # type: ignore[attr-defined]
    key = {"Authorization": f"Bearer {(data / 'admin-api-key').read_text().strip()}"}
    url = slide_server.url
    body = slide_tiff(tmp_path / "slide.tif").read_bytes()
    named = {**key, "X-Filename": "slide.tif"}
    slide = httpx.post(f"{url}/v1/images", content=body, headers=named).json()["id"]
    sid = httpx.post(f"{url}/v1/studies", json={"name": "Slides"}, headers=key).json()["id"]
    linked = httpx.post(f"{url}/v1/studies/{sid}/images", json={"image_id": slide}, headers=key)
    assert linked.status_code == 201, linked.text

    context = traced_context(browser, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: _keep_error(m, errors))
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    password = (data / "admin-password").read_text().strip()
    page.request.post(f"{url}/v1/auth/login", data={"username": "admin", "password": password})
    # the view centred on the nucleus at (1420, 900); the whole slide is over the limit
    page.goto(f"{url}/viewer/{slide}?study={sid}&view=1020,600,800,600")
    viewer = page.locator(".deepzoom").first
    expect(viewer).not_to_have_attribute("data-tiles-loaded", "0")
    expect(page.get_by_text("No analysis result for this image yet.")).to_be_visible()

    # a drawn rectangle (selected once drawn) is the region offered...
    page.get_by_role("button", name="Rectangle", exact=True).click()
    # clicking the tool scrolls it into view, which may take the viewer's top off screen:
    # bring the whole viewer back before drawing on it
    viewer.evaluate("e => e.scrollIntoView({block: 'start'})")
    cx, cy = centre(viewer)
    page.mouse.move(cx - 300, cy - 200)
    page.mouse.down()
    page.mouse.move(cx - 150, cy - 80, steps=5)
    page.mouse.up()
    drawn = page.get_by_role("list", name="Annotations of this image")
    expect(drawn.get_by_role("button", name="unclassified · rectangle")).to_be_visible()
    listed = page.request.get(f"{url}/v1/studies/{sid}/images/{slide}/annotations").json()
    x0, y0, x1, y1 = listed["features"][0]["pixelmill"]["bbox"]
    left, top = math.floor(x0), math.floor(y0)
    size = f"{math.ceil(x1) - left:,} \u00d7 {math.ceil(y1) - top:,} px at {left:,}, {top:,}"
    page.get_by_role("button", name="Analyse this region").click()
    offered = page.get_by_role("dialog", name=f"Analyse a region: {size}")
    offered.get_by_role("button", name="Close").click()
    # ... and with nothing selected, the view: run he-nuclei there
    page.get_by_role("button", name="Pan", exact=True).click()
    cx, cy = centre(viewer)
    page.mouse.click(cx + 200, cy + 150)  # away from the rectangle: nothing selected
    page.get_by_role("button", name="Analyse this region").click()
    dialog = page.get_by_role("dialog", name=re.compile(r"Analyse a region: [\d,]+ \u00d7 600 px"))
    dialog.get_by_label("Analysis", exact=True).select_option("preset:he-nuclei")
    dialog.get_by_role("button", name="Run", exact=True).click()
    expect(dialog.locator(".run-status .job-status")).to_have_attribute(
        "data-state", "succeeded", timeout=120_000
    )
    dialog.get_by_role("button", name="Show the overlay").click()
    expect(page.get_by_label("Result")).to_contain_text(
        re.compile(r"he-nuclei · region \d+ \u00d7 600")
    )
    expect(viewer).to_have_attribute("data-first-overlay-tile-ms", re.compile(r"\d+"))

    # a click at the view's centre picks that nucleus: its numbers are the slide's
    page.mouse.click(*centre(viewer))
    panel = page.get_by_role("region", name=re.compile(r"Object \d+"))
    expect(panel.locator("div", has_text="centroid_col")).to_contain_text("1420")
    expect(panel.locator("div", has_text="centroid_row")).to_contain_text("900")
    # zoomed out, the overlay covers the region analysed and nothing around it
    page.get_by_role("button", name="Zoom out").first.click()
    page.get_by_role("button", name="Zoom out").first.click()
    page.get_by_label("Opacity").fill("0.9")
    page.wait_for_timeout(1500)  # the zoom animation and the coarser tiles
    shoot(page, "viewer-slide-region")
    context.close()
    assert errors == [], "\n".join(errors)
