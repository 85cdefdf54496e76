"""The web workspace in a real Chromium against a real ``pixelmill up``: log in, create a
study, upload (one bad file among good ones), see the files, run the nuclei preset and
watch it finish, open the viewer (tiles load, overlay, opacity, side by side), no console
errors, axe-core finds no serious or critical violation. Screenshots go into docs/."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import pyvips

from pixelmill.services.web import ui
from tests.e2e.test_up import Server, _free_port
from tests.unit.imaging.analysis import synthetic as syn

pytest.importorskip("playwright", reason="pytest-playwright is in the test extra")
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    expect,
    sync_playwright,
)

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = os.environ.get("PIXELMILL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def _missing(what: str) -> None:
    """Skip locally with the reason; in CI (CI=true) a missing prerequisite fails."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} (CI=true: the browser tests must run)")
    pytest.skip(what)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium (Playwright's own download is never used), for this module only:
    Playwright's event loop stops with it, so no later test finds a loop still running
    in the main thread (pytest-playwright's session-wide browser would keep one)."""
    if not Path(CHROMIUM).is_file():
        _missing(f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


class WebServer(Server):
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        super().__init__(data_dir, _free_port())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    if not ui.built():
        _missing("the web UI is not built: make test builds it (npm ci && npm run build)")
    server = WebServer(tmp_path_factory.mktemp("web") / "data")
    yield server
    server.stop()


def he_image(seed: int, suffix: str, shape: tuple[int, int] = (600, 800)) -> bytes:
    """An H&E-like image: hematoxylin nuclei on an eosin background; as TIFF, at
    0.5 µm per pixel (2000 pixels per mm in its resolution tags)."""
    scene = syn.blobs(shape, seed=seed)
    rgb = syn.brightfield(
        {
            "hematoxylin": np.where(scene.truth > 0, 0.6, 0.0),
            "eosin": np.full(shape, 0.15),
        }
    )
    image = pyvips.Image.new_from_array(rgb, interpretation="srgb")
    if suffix == ".tif":
        image = image.copy(xres=2000.0, yres=2000.0)
        return bytes(image.write_to_buffer(".tif", resunit="cm"))
    return bytes(image.write_to_buffer(suffix))


def axe_violations(page: Page) -> list[str]:
    """Serious and critical axe-core violations on the page (axe from the npm lockfile,
    evaluated by DevTools, so the page's CSP stays strict)."""
    if not AXE.is_file():
        _missing(f"axe-core is not installed ({AXE}): npm ci in web/")
    page.evaluate(AXE.read_text() + "\n;0")
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


@pytest.mark.slow
def test_log_in_create_upload_analyse_and_view(
    server: WebServer,
    browser: Browser,
    tmp_path: Path,
    traced_context: Callable[..., BrowserContext],
) -> None:
    password = (server.data_dir / "admin-password").read_text().strip()
    context = traced_context(browser, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: _keep_error(m, errors))
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))

    # a deep link to a client route asks for a login first, then goes there
    page.goto(server.url + "/studies")
    expect(page).to_have_url(re.compile(r"/login\?next=/studies"))
    assert axe_violations(page) == []
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("password")  # the problem's detail
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(server.url + "/studies")
    expect(page.get_by_text("No studies yet")).to_be_visible()

    # create a study: its page opens on the Files tab
    page.get_by_role("button", name="New study").click()
    page.get_by_label("Name").fill("Liver cohort A")
    page.get_by_role("button", name="Create study").click()
    expect(page.get_by_role("heading", name="Liver cohort A")).to_be_visible()
    expect(page.get_by_role("tab", name="Files")).to_have_attribute("aria-selected", "true")
    expect(page).to_have_title("Liver cohort A · Study · pixelmill")  # the tab names it

    # add a patient: a pseudonymous code, attributes from the allow-list
    page.get_by_role("tab", name="Patients").click()
    expect(page.get_by_text("No patients yet")).to_be_visible()
    page.get_by_label("Sex", exact=True).select_option("female")
    page.get_by_label("Age band").select_option("60-69")
    page.get_by_label("Arm", exact=True).fill("A")
    page.get_by_label("External id").fill("MRN-000123")
    page.get_by_role("button", name="Add patient").click()
    patient = page.get_by_role("row", name=re.compile("S-0001"))
    expect(patient).to_contain_text("60-69")
    expect(patient).to_contain_text("on file")  # the external id is kept as a keyed hash only
    assert "MRN-000123" not in page.content()
    page.get_by_role("tab", name="Files").click()

    # upload two images and one file that is not an image: the bad one fails alone
    files = []
    for i, suffix in enumerate((".tif", ".png")):
        path = tmp_path / f"slide-{i + 1}{suffix}"
        path.write_bytes(he_image(i + 1, suffix))
        files.append(str(path))
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"these are not pixels")
    page.set_input_files("#upload-input", [*files, str(bad)])
    uploads = page.get_by_role("list", name="Uploads")
    expect(uploads.locator("li[data-state=done]")).to_have_count(2)
    expect(uploads.locator("li[data-state=failed]")).to_contain_text(re.compile(r"\w+"))
    rows = page.locator("table.files tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="slide-1.tif")).to_contain_text("0.5 µm")  # from the TIFF
    page.get_by_label("Patient of slide-1.tif").select_option(label="S-0001")
    expect(page.get_by_label("Patient of slide-1.tif")).to_have_value(re.compile(r"\w+"))
    expect(page.locator(".study-header")).to_contain_text("1 patients")
    expect(page.get_by_role("link", name="slide-1.tif")).to_be_visible()
    expect(page.get_by_alt_text("Thumbnail of slide-1.tif")).to_have_js_property("complete", True)
    assert page.get_by_alt_text("Thumbnail of slide-1.tif").evaluate("i => i.naturalWidth") > 0
    assert axe_violations(page) == []
    shoot(page, "study-files")

    # run the nuclei preset on both: the dialog's form is generated from the preset's JSON
    # Schema; a bad value is named and blocks the run; it finishes live (SSE)
    page.get_by_label("Select all on this page").check()
    page.get_by_role("button", name="Run on 2 selected").click()
    dialog = page.get_by_role("dialog", name="Run an analysis on 2 images")
    dialog.get_by_label("Analysis", exact=True).select_option("preset:he-nuclei")
    min_area = dialog.get_by_label("Min area", exact=True)
    expect(min_area).to_have_value("40")  # the preset's value, not the op's default
    expect(dialog.get_by_label("Method", exact=True)).to_have_value("otsu")
    min_area.fill("0")
    expect(dialog.get_by_text("Must be at least 1.")).to_be_visible()
    expect(dialog.get_by_role("button", name="Run", exact=True)).to_be_disabled()
    min_area.fill("40")
    dialog.get_by_role("button", name="Run", exact=True).click()
    expect(dialog.locator(".run-status .job-status")).to_have_attribute(
        "data-state", "succeeded", timeout=120_000
    )
    expect(dialog.get_by_role("table", name="Results").locator("tbody tr")).to_have_count(2)
    assert axe_violations(page) == []
    shoot(page, "run-dialog")
    dialog.get_by_role("button", name="Close").click()

    # the Analyses tab: per-image summaries and a histogram of a measurement
    page.get_by_role("tab", name="Analyses").click()
    expect(page.get_by_role("row", name=re.compile(r"he-nuclei\s+done"))).to_be_visible()
    results = page.locator("table.results tbody tr")
    expect(results).to_have_count(2)
    expect(results.first).to_contain_text(re.compile(r"succeeded\s*\d+"))
    expect(page.get_by_role("img", name=re.compile("Histogram of area_px"))).to_be_visible()
    # box plots by the patients' arm: slide-1 belongs to S-0001 (arm A), slide-2 to nobody
    expect(page.get_by_role("img", name="Box plot of area_px by arm")).to_be_visible()
    expect(page.locator("figcaption", has_text="A: n ")).to_have_count(1)
    page.get_by_role("img", name="Box plot of area_px by arm").scroll_into_view_if_needed()
    shoot(page, "study-boxplot")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download all measurements (CSV)").click()
    table_csv = Path(download.value.path()).read_text()
    assert "area_px" in table_csv.splitlines()[0] and len(table_csv.splitlines()) == 601
    assert axe_violations(page) == []
    shoot(page, "study-analyses")

    # the viewer: tiles load, the result is an overlay with opacity, and side by side
    row = page.get_by_role("row", name=re.compile("slide-1.tif"))
    row.get_by_role("link", name="View overlay").click()
    expect(page).to_have_url(re.compile(r"/viewer/"))
    viewer = page.locator(".deepzoom").first
    expect(viewer).not_to_have_attribute("data-tiles-loaded", "0")
    expect(page.get_by_label("Result")).to_be_visible()
    expect(page.get_by_role("img", name=re.compile(r"Scale bar: \d+ µm"))).to_be_visible()
    expect(page.get_by_label("Show overlay")).to_be_checked()
    page.get_by_label("Opacity").fill("0.3")
    expect(page.locator("output[for=overlay-opacity]")).to_have_text("30%")
    # click a nucleus (the image is fitted, centred; nuclei sit on a 40 px grid from 20)
    expect(page.get_by_text("Click an object")).to_be_visible()
    box = viewer.bounding_box()
    assert box is not None
    scale = min(box["width"] / 800, box["height"] / 600)
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.click(cx + 20 * scale, cy)  # image point (420, 300): a nucleus centre
    panel = page.get_by_role("region", name=re.compile(r"Object \d+"))
    expect(panel).to_contain_text("area_px")
    page.get_by_label("Opacity").fill("0.9")
    # promote the picked nucleus: it becomes an editable annotation, in the list
    with page.expect_response(lambda r: r.url.endswith("/promote")) as promoted:
        panel.get_by_role("button", name="Promote 1 to annotations").click()
    assert promoted.value.status == 201, promoted.value.text()
    drawn = page.get_by_role("list", name="Annotations of this image")
    item = drawn.locator("li", has=page.get_by_role("button", name="unclassified · polygon"))
    expect(item).to_contain_text("import")

    # draw a rectangle of class "tumor"; after a reload it is still there
    page.get_by_role("button", name="Rectangle", exact=True).click()
    page.get_by_label("Class", exact=True).fill("tumor")
    box = viewer.bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 120, cy - 90)
    page.mouse.down()
    page.mouse.move(cx - 40, cy - 30, steps=6)
    page.mouse.up()
    expect(drawn.get_by_role("button", name="tumor · rectangle")).to_be_visible()
    # draw a polygon: click vertices, double-click the last one
    page.get_by_role("button", name="Polygon", exact=True).click()
    page.mouse.click(cx + 60, cy - 100)
    page.mouse.click(cx + 160, cy - 100)
    page.mouse.dblclick(cx + 110, cy - 20)
    polygon = drawn.get_by_role("button", name="tumor · polygon")
    expect(polygon).to_be_visible()
    # select it, drag a vertex, pull a new vertex out of an edge: each saved (If-Match)
    page.get_by_role("button", name="Pan", exact=True).click()
    page.mouse.click(cx + 110, cy - 70)
    vertices = page.locator(".handles circle.vertex")
    expect(vertices).to_have_count(3)
    _drag(page, vertices.nth(0), -30, -20)
    moved = [vertices.nth(0).get_attribute(a) for a in ("cx", "cy")]  # image pixels
    _drag(page, page.locator(".handles circle.mid").nth(0), 0, -30)
    expect(vertices).to_have_count(4)
    page.reload()
    expect(polygon).to_be_visible()
    expect(page.locator(".deepzoom g[data-annotation]")).to_have_count(3)
    polygon.click()  # selects it and goes to it
    expect(vertices).to_have_count(4)  # the edited polygon is back
    assert [vertices.nth(0).get_attribute(a) for a in ("cx", "cy")] == moved
    page.get_by_label("Opacity").fill("0.9")
    assert axe_violations(page) == []
    shoot(page, "viewer-overlay")
    page.get_by_role("button", name="Side by side").click()
    expect(page.locator(".deepzoom")).to_have_count(2)
    expect(page.locator(".deepzoom").nth(1)).not_to_have_attribute("data-tiles-loaded", "0")
    page.get_by_role("button", name="Zoom in").first.click()
    shoot(page, "viewer-side-by-side")
    # what is seen is in the address (no navigation): a bookmark opens on it again
    expect(page).to_have_title("slide-1.tif · Viewer · pixelmill")
    expect(page).to_have_url(re.compile(r"view=\d+,\d+,\d+,\d+.*overlay=\w+|overlay=\w+.*view="))
    overlay = re.search(r"overlay=(\w+)", page.url)
    assert overlay is not None
    page.goto(page.url)
    expect(page.locator(".deepzoom")).to_have_count(2)  # side by side, the same result
    expect(page.get_by_label("Result", exact=True)).to_have_value(overlay[1])
    page.get_by_label("Comment on this view").fill("Check the cluster at the top left")
    page.get_by_role("button", name="Pin comment").click()
    expect(page.get_by_role("status")).to_contain_text("pinned")
    study_url = page.get_by_role("link", name="Back to study").get_attribute("href")
    # the image's annotations as a QuPath GeoJSON file: export, then import it again
    with page.expect_download() as exported:
        page.get_by_role("link", name="Export GeoJSON").click()
    geojson = Path(exported.value.path())
    assert len(json.loads(geojson.read_text())["features"]) == 3
    page.get_by_role("button", name="Overlay", exact=True).click()
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Import GeoJSON…").click()
    chooser.value.set_files(str(geojson))
    expect(page.get_by_role("status").filter(has_text="Imported")).to_have_text(
        "Imported 3 annotations."
    )
    export_url = page.get_by_role("link", name="Export GeoJSON").get_attribute("href")
    assert len(page.request.get(f"{server.url}{export_url}").json()["features"]) == 6
    bad = tmp_path / "notes.geojson"
    bad.write_text("not GeoJSON")
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Import GeoJSON…").click()
    with page.expect_response(lambda r: r.url.endswith("/annotations/import")) as refused:
        chooser.value.set_files(str(bad))
    assert refused.value.status in (400, 422)
    expect(page.get_by_role("alert")).to_contain_text(re.compile(r"\w"))  # the problem's detail
    # the refusal was the scenario's own: Chromium logs it as a failed resource
    errors[:] = [e for e in errors if "/annotations/import" not in e]

    # the dashboard: the study card with its counts, the job in recent jobs
    page.get_by_role("link", name="Dashboard").click()
    card = page.locator(".study-card", has_text="Liver cohort A")
    expect(card.locator("dd").nth(1)).to_have_text("2")  # images
    expect(page.locator("table .job-status[data-state=succeeded]")).to_have_count(1)
    assert axe_violations(page) == []
    shoot(page, "dashboard")

    # the Images page: the uploads; what the analysis made on its own list
    page.get_by_role("link", name="Images", exact=True).click()
    expect(page.locator("table tbody tr")).to_have_count(2)
    expect(page.get_by_role("link", name="slide-1.tif")).to_be_visible()
    page.get_by_role("button", name="Job results").click()
    expect(
        page.get_by_role("table", name="Images your jobs made").locator("tbody tr")
    ).to_have_count(2)
    expect(page.get_by_role("link", name="slide-1.tif")).to_have_count(0)

    # the registry: the shipped nuclei model, its versions and aliases
    page.get_by_role("link", name="Models").click()
    page.get_by_role("button", name="nuclei").click()
    expect(page.get_by_role("heading", name="nuclei", exact=True)).to_be_visible()
    versions = page.get_by_role("table", name="Versions of nuclei")
    expect(versions.get_by_role("row", name=re.compile(r"^v1 .*production"))).to_be_visible()
    # its model card (what the registry keeps), lineage, drift; the training form's fields
    # come from the training spec's schema
    card = page.get_by_role("article", name="Model card — nuclei v1")
    expect(card).to_contain_text("U-Net")
    expect(card.get_by_role("list", name="Lineage")).to_contain_text("Dataset")
    expect(card.get_by_role("table", name="Metrics")).to_contain_text("dice")
    expect(page.get_by_role("img", name="Drift of nuclei over time")).to_be_visible()
    page.get_by_role("button", name="Train a model").click()
    expect(page.get_by_label("Epochs", exact=True)).to_have_value("20")
    assert axe_violations(page) == []
    shoot(page, "models")

    # a second user, a viewer of the study, sees the discussion as unread and cannot run
    page.get_by_role("link", name="Admin").click()
    page.get_by_label("Username").fill("rita")
    page.get_by_role("button", name="Create user").click()
    notice = page.get_by_role("status").filter(has_text="Initial password for rita")
    rita_password = notice.inner_text().rsplit(": ", 1)[1].strip()
    # the audit log in the app: the wrong password at the start is a security event
    page.get_by_label("Security events only").check()
    audit = page.get_by_role("table", name="Audit log, newest first")
    expect(audit.locator("tr[data-security=false]")).to_have_count(0)
    expect(audit).to_contain_text("login.failed")
    # each event names what it acted on, linking to its page
    page.get_by_label("Security events only").uncheck()
    page.get_by_label("Action", exact=True).fill("study.create")
    expect(audit.get_by_role("link", name="Liver cohort A")).to_have_attribute(
        "href", re.compile(r"^/studies/\w+$")
    )
    # an archived study is hidden from the list until asked for, then opens read-only
    csrf = next(c["value"] for c in context.cookies() if c["name"] == "pm_csrf")
    pilot = page.request.post(
        f"{server.url}/v1/studies", data={"name": "Pilot 2019"}, headers={"X-CSRF-Token": csrf}
    ).json()["id"]
    archived = page.request.post(
        f"{server.url}/v1/studies/{pilot}/status",
        data={"status": "archived"},
        headers={"X-CSRF-Token": csrf},
    )
    assert archived.ok, archived.text()
    page.get_by_role("link", name="Studies", exact=True).click()
    expect(page.get_by_role("link", name="Liver cohort A")).to_be_visible()
    expect(page.get_by_role("link", name="Pilot 2019")).to_have_count(0)
    page.get_by_label("Show archived").check()
    expect(page.get_by_role("row", name=re.compile("Pilot 2019"))).to_contain_text("read-only")
    page.get_by_role("link", name="Pilot 2019").click()
    expect(page.get_by_role("note")).to_contain_text("archived: read-only")
    page.goto(f"{server.url}{study_url}?tab=members")
    page.get_by_label("Username").fill("rita")
    page.get_by_label("Role", exact=True).select_option("viewer")
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_role("cell", name=re.compile("@rita"))).to_be_visible()
    page.get_by_role("tab", name="Messages").click()
    page.get_by_label("Title", exact=True).fill("Segmentation quality")
    page.get_by_label("Message", exact=True).fill("Nuclei look well separated.")
    page.get_by_role("button", name="Start thread").click()
    expect(page.get_by_role("list", name="Messages")).to_contain_text("well separated")
    page.get_by_role("button", name=re.compile("Administrator")).click()
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login"))
    context.close()

    rita = traced_context(browser, viewport={"width": 1280, "height": 800})
    page = rita.new_page()
    page.on("console", lambda m: _keep_error(m, errors))
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.goto(server.url + "/")
    page.get_by_label("Username").fill("rita")
    page.get_by_label("Password").fill(rita_password)
    page.get_by_role("button", name="Log in").click()
    card = page.locator(".study-card", has_text="Liver cohort A")
    expect(card.locator("dd").nth(3)).to_have_text("2")  # unread: the thread and the pin
    expect(page.get_by_role("link", name=re.compile("Messages"))).to_contain_text("2")
    page.get_by_role("link", name="Liver cohort A").click()
    expect(page.locator("table.files tbody tr")).to_have_count(2)
    expect(page.get_by_role("button", name=re.compile("Run on"))).to_have_count(0)
    expect(page.locator("#upload-input")).to_have_count(0)
    csrf = next(c["value"] for c in rita.cookies() if c["name"] == "pm_csrf")
    study_id = page.url.split("/studies/")[1].split("?")[0]
    refused = page.request.post(
        f"{server.url}/v1/studies/{study_id}/images",
        data={"image_id": "anything"},
        headers={"X-CSRF-Token": csrf},
    )
    assert refused.status == 403, refused.text()
    page.get_by_role("tab", name="Messages").click()
    thread = page.get_by_role("button", name="Segmentation quality")
    page.locator(".thread-list li", has=thread).get_by_label("1 unread").wait_for()
    thread.click()
    expect(page.get_by_role("list", name="Messages")).to_contain_text("well separated")
    expect(page.locator(".thread-list li", has=thread).locator(".unread")).to_have_count(0)
    # the study page is live (SSE): a message posted elsewhere shows up without a reload
    expect(page.get_by_role("status").filter(has_text="live")).to_have_text("● live")
    threads = page.request.get(f"{server.url}/v1/studies/{study_id}/threads").json()["items"]
    thread_id = next(t["id"] for t in threads if t["title"] == "Segmentation quality")
    posted = page.request.post(
        f"{server.url}/v1/studies/{study_id}/threads/{thread_id}/messages",
        data={"body": "Agreed, from another window."},
        headers={"X-CSRF-Token": csrf},
    )
    assert posted.status == 201, posted.text()
    expect(page.get_by_role("list", name="Messages")).to_contain_text("another window")
    assert axe_violations(page) == []
    shoot(page, "study-messages")
    # the pinned comment opens the viewer on the view it was pinned to
    page.get_by_role("link", name="on an image").click()
    expect(page).to_have_url(re.compile(r"view=\d+,\d+,\d+,\d+"))
    expect(page.locator(".deepzoom").first).not_to_have_attribute("data-tiles-loaded", "0")
    rita.close()
    assert errors == [], "\n".join(errors)


def _centre(handle: Locator) -> tuple[float, float]:
    box = handle.bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def _drag(page: Page, handle: Locator, dx: float, dy: float) -> None:
    """Drags an editing handle by (dx, dy) screen pixels and waits for the save."""
    x, y = _centre(handle)
    with page.expect_response(lambda r: r.request.method == "PATCH") as saved:
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + dx, y + dy, steps=5)
        page.mouse.up()
    assert saved.value.status == 200, saved.value.text()


def _keep_error(message: ConsoleMessage, errors: list[str]) -> None:
    # the scenario's own failures (a wrong password, a file that is not an image) are
    # logged by Chromium as failed resources: expected; anything else is an error
    expected = ("status of 401 (Unauthorized)", "status of 415 (Unsupported Media Type)")
    if message.type == "error" and not any(e in message.text for e in expected):
        errors.append(f"{message.text} at {message.location}")
