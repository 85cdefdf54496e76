"""Attacks through POST /v1/datasets: archives small on the wire that expand into
gigabytes, content that lies about its format or size (issue 18, finding 5).

Each must be refused from the headers (413 too big, 422 bad content) with nothing
stored, and the server must go on serving."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from pixelmill.runtime.container import Container
from tests.ml_helpers import png
from tests.security import attacks

IMG = np.full((16, 16), 100, np.uint8)
MASK = np.zeros((16, 16), np.uint8)
MASK[4:10, 4:10] = 255


@pytest.fixture(scope="module")
def png_bomb() -> bytes:
    return attacks.png_bomb(20_000)


def upload(client: TestClient, auth: dict[str, str], data: bytes) -> dict:
    response = client.post("/v1/datasets", content=data, headers=auth)
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body = response.json()
    assert body["status"] == response.status_code
    return body


def assert_nothing_stored_and_still_serving(
    client: TestClient, auth: dict[str, str], container: Container
) -> None:
    assert client.get("/v1/datasets", headers=auth).json()["items"] == []
    assert not list(container.storage.list("datasets/"))
    good = attacks.zip_of({"images/a.png": png(IMG), "masks/a.png": png(MASK)})
    assert client.post("/v1/datasets", content=good, headers=auth).status_code == 201


def problem_of(body: dict, file: str) -> str:
    return {e["file"]: e["problem"] for e in body["files"]}[file]


def test_a_png_claiming_20000x20000_pixels_is_refused_before_it_is_decoded(
    client: TestClient, auth: dict[str, str], container: Container, png_bomb: bytes
) -> None:
    archive = attacks.zip_of({"images/bomb.png": png_bomb, "masks/bomb.png": png(MASK)})
    assert len(archive) < 2_000_000  # small on the wire, 400 MB of pixels

    body = upload(client, auth, archive)

    assert body["status"] == 413 and body["type"].endswith("/too-large")
    assert "20000x20000" in problem_of(body, "images/bomb.png")
    assert body["max_pixels"] == container.settings.render.max_pixels
    assert_nothing_stored_and_still_serving(client, auth, container)


def test_an_svg_named_png_is_refused_by_its_content(
    client: TestClient, auth: dict[str, str], container: Container
) -> None:
    archive = attacks.zip_of({"images/a.png": attacks.SVG, "masks/a.png": png(MASK)})

    body = upload(client, auth, archive)

    assert body["status"] == 422 and body["type"].endswith("/invalid-dataset")
    assert "not jpeg, png" in problem_of(body, "images/a.png")
    assert_nothing_stored_and_still_serving(client, auth, container)


def test_a_member_larger_than_the_upload_limit_is_refused_before_it_is_read(
    client: TestClient, auth: dict[str, str], container: Container
) -> None:
    limit = container.settings.server.max_upload_bytes
    archive = attacks.zip_with_big_member("images/big.png", limit + 1)
    assert len(archive) < limit // 100

    body = upload(client, auth, archive)

    assert body["status"] == 413 and body["max_bytes"] == limit
    assert f"{limit + 1} bytes uncompressed" in problem_of(body, "images/big.png")
    assert_nothing_stored_and_still_serving(client, auth, container)


def test_a_member_whose_header_understates_its_size_is_refused(
    client: TestClient, auth: dict[str, str], container: Container
) -> None:
    # the header says 100 bytes; the data inflates to 5 MB
    archive = attacks.lying_zip("images/a.png", png(IMG) + bytes(5_000_000), declared=100)

    body = upload(client, auth, archive)

    assert body["status"] == 422 and body["type"].endswith("/invalid-dataset")
    assert "corrupt zip member" in problem_of(body, "images/a.png")
    assert_nothing_stored_and_still_serving(client, auth, container)


def test_an_archive_with_too_many_members_is_refused_before_they_are_read(
    client: TestClient, auth: dict[str, str], container: Container
) -> None:
    body = upload(client, auth, attacks.many_members(20_001))

    assert body["status"] == 413
    assert "20001 files; at most 20000" in body["detail"]
    assert_nothing_stored_and_still_serving(client, auth, container)


MEASURE = r"""
import json, sys
from pathlib import Path
from pixelmill.errors import PixelmillError
from pixelmill.ml import datasets
def peak_kib():  # this process's own peak: ru_maxrss keeps the forking parent's
    return int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0])
before = peak_kib()
statuses = []
for path in sys.argv[1:]:
    try:
        datasets.parse(Path(path).read_bytes())
    except PixelmillError as exc:
        statuses.append(exc.status)
after = peak_kib()
print(json.dumps({"statuses": statuses, "grew_kib": after - before}))
"""


@pytest.mark.slow
def test_the_bombs_cost_megabytes_not_gigabytes(tmp_path: Path, png_bomb: bytes) -> None:
    """Run in a fresh process so its peak memory (max RSS) is the bombs' alone."""
    bombs = {
        "png.zip": attacks.zip_of({"images/bomb.png": png_bomb, "masks/bomb.png": png(MASK)}),
        "big.zip": attacks.zip_with_big_member("images/big.png", 300 * 1024 * 1024),
        "svg.zip": attacks.zip_of({"images/a.png": attacks.SVG, "masks/a.png": png(MASK)}),
    }
    for name, data in bombs.items():
        (tmp_path / name).write_bytes(data)
    warm = "import pixelmill.ml.datasets, pixelmill.imaging.probe\n"
    done = subprocess.run(
        [sys.executable, "-c", warm + MEASURE, *(str(tmp_path / n) for n in bombs)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["statuses"] == [413, 413, 422]
    # before the fix: 8.6 GB, 4.2 GB and 5.5 GB; Linux reports max RSS in KiB
    assert seen["grew_kib"] < 300 * 1024, seen
