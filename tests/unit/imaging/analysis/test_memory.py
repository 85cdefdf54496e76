"""Peak memory per pixel of the analysis presets on a large region, as a job runs them.

Each case runs in a fresh process (``benchmarks/region_memory.py --child``: the region
read as a ``pipeline`` job reads it, the preset's steps, its artifacts stored, the
output encoded) whose peak is its own (``VmHWM``; ``ru_maxrss`` would carry the forking
parent's). A worker sizes its memory from this figure: ``render.max_pixels`` lets a
region hold 268 MP, so every byte a pixel is a quarter of a gigabyte there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks.region_memory import PRESETS, image_file

SCRIPT = Path(__file__).resolve().parents[4] / "benchmarks" / "region_memory.py"
SIDE = 3000  # 9 MP: large enough that the per-pixel costs outweigh the fixed ones

#: bytes a pixel above the process's size after its imports; the old code took 69
#: (nuclei-fluorescence), 58 (he-nuclei) and 78 (ihc-dab-area) here, and 46-76 on a
#: 36 MP region; it now takes about 27, 38 and 22
BOUND = {"nuclei-fluorescence": 45, "he-nuclei": 48, "ihc-dab-area": 45}


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(BOUND))
def test_a_preset_on_a_large_region_needs_a_bounded_number_of_bytes_a_pixel(
    tmp_path: Path, preset: str
) -> None:
    # given a 3000 x 3000 region of the preset's modality (grey fluorescence, H&E or
    # IHC RGB) with about 10,000 nuclei
    path = image_file(PRESETS[preset], SIDE, tmp_path)
    # when a job runs the preset on it, in a process of its own
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--child", preset, str(path), "-"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    # then it found the nuclei and stored its outputs...
    if preset != "ihc-dab-area":
        assert seen["objects"] > 5000, seen
    assert seen["output_bytes"] > 0
    # ...holding at most the bound's bytes for each pixel of the region at its peak
    per_pixel = (seen["peak_kb"] - seen["baseline_kb"]) * 1024 / seen["pixels"]
    assert per_pixel < BOUND[preset], f"{per_pixel:.1f} B/px: {seen}"
