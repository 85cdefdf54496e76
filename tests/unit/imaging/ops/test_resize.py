"""resize: an enlarging cut (cover, min sizes, fill-down with ``enlarge``) scales only the
window it shows. A thin source covering a box used to be enlarged whole first: a 4 x
20000 PNG covering 400 x 300 made a 400 x 2,000,000 intermediate (2.4 GB, 22 s)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pyvips

from pixelmill.imaging import pipeline
from pixelmill.imaging.render import parse_render, to_steps

BLUE, RED, GREEN = (0, 0, 255), (255, 0, 0), (0, 255, 0)


def _thin_png(path: Path) -> Path:
    """4 x 20000: blue, with red rows 9990-10009 (the middle) and green rows 0-19 (the
    top); a render showing the middle of it is red, the top green."""
    pixels = np.zeros((20000, 4, 3), np.uint8)
    pixels[:] = BLUE
    pixels[9990:10010] = RED
    pixels[:20] = GREEN
    pyvips.Image.new_from_array(pixels, interpretation="srgb").pngsave(str(path))
    return path


def _render(source: Path, query: dict[str, str]) -> pyvips.Image:
    params = parse_render({"enlarge": "true", **query}, max_side=8192)
    return pipeline.run(source, to_steps(params, max_side=8192)).copy_memory()


def _colour(image: pyvips.Image) -> tuple[int, ...]:
    middle = image.crop(image.width // 4, image.height // 4, image.width // 2, image.height // 2)
    return tuple(round(v) for v in np.asarray(middle).reshape(-1, image.bands).mean(axis=0))


@pytest.mark.parametrize(
    ("query", "colour"),
    [
        ({}, RED),  # cover, centre: the middle rows
        ({"gravity": "north"}, GREEN),
        ({"fp": "0.5,0.0005"}, GREEN),  # a focal point at the top
        ({"min-w": "500"}, RED),  # the explicit-scale path (min sizes)
        ({"fit": "fill-down"}, RED),
        # offsets are output pixels: 1000 of them are 10 source rows at x100
        ({"gravity": "north", "offset": "0,1000"}, GREEN),
        ({"gravity": "north", "offset": "0,2500"}, BLUE),
    ],
)
def test_an_enlarged_cover_shows_the_window_its_gravity_names(
    tmp_path: Path, query: dict[str, str], colour: tuple[int, int, int]
) -> None:
    query = {"w": "400", "h": "300", **query}
    out = _render(_thin_png(tmp_path / "thin.png"), query)
    assert (out.width, out.height) == (400, 300)
    assert _colour(out) == pytest.approx(colour, abs=3)


def test_an_enlarged_cover_of_a_thin_image_costs_what_its_output_costs(tmp_path: Path) -> None:
    # given a 4 x 20000 PNG, 240 kB of pixels
    source = _thin_png(tmp_path / "thin.png")
    # when it is rendered to cover 400 x 300 (x100), smartly and by offsets, in a child
    # process whose peak memory is its own
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from pixelmill.imaging import pipeline
        from pixelmill.imaging.render import parse_render, to_steps
        for extra in ({{}}, {{"gravity": "attention"}}, {{"min-w": "500"}}):
            q = {{"w": "400", "h": "300", "enlarge": "true", **extra}}
            p = parse_render(q, max_side=8192)
            out = pipeline.run(Path({str(source)!r}), to_steps(p, max_side=8192)).copy_memory()
            assert (out.width, out.height) == (400, 300), (out.width, out.height)
        # this process's own peak (VmHWM: ru_maxrss keeps the forking parent's peak)
        status = open("/proc/self/status").read().split("VmHWM:")[1]
        print(int(status.split()[0]) // 1024)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    # then it never held the 400 x 2,000,000 enlargement (2.4 GB): its peak is that of
    # a Python with libvips loaded (~90 MB here), far below 1 GB
    assert int(done.stdout.decode().split()[-1]) < 1024


@pytest.mark.parametrize("query", [{"w": "800", "h": "800"}, {"w": "900", "h": "500"}])
def test_an_enlarged_cover_of_a_photo_is_the_cut_of_its_enlargement(
    tmp_path: Path, query: Any
) -> None:
    # given a 267 x 200 picture (smooth gradients and an edge)
    yy, xx = np.mgrid[0:200, 0:267]
    pixels = np.stack([xx * 255 // 266, yy * 255 // 199, ((xx // 40 + yy // 40) % 2) * 200], -1)
    path = tmp_path / "photo.png"
    pyvips.Image.new_from_array(pixels.astype(np.uint8), interpretation="srgb").pngsave(str(path))
    # when it covers a larger box, cut first and enlarged after
    out = np.asarray(_render(path, query)).astype(int)
    # then it matches libvips' enlargement of the whole picture, cut at the centre, to
    # within half a source pixel of where the window starts (one byte on average)
    w, h = int(query["w"]), int(query["h"])
    whole = pyvips.Image.new_from_file(str(path)).thumbnail_image(
        w, height=h, crop="centre", size="both"
    )
    expected = np.asarray(whole).astype(int)
    shifts = [
        np.abs(out[8 + dy : h - 8 + dy, 8 + dx : w - 8 + dx] - expected[8 : h - 8, 8 : w - 8])
        for dy in range(-3, 4)
        for dx in range(-3, 4)
    ]
    assert min(float(d.mean()) for d in shifts) < 1.0
