"""``pixelmill datasets synth-nuclei``: the preset flags pick the generator's preset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner

from pixelmill.runtime.cli import main


def test_crowded_writes_the_crowded_presets_images_and_instance_labels(tmp_path: Path) -> None:
    import pyvips

    from pixelmill.ml.synthetic import NucleiConfig, nuclei_labelled

    out = tmp_path / "crowd"
    args = ["datasets", "synth-nuclei", str(out), "--count", "1", "--size", "96"]
    done = CliRunner().invoke(main, [*args, "--seed", "3", "--crowded", "--labels"])
    assert done.exit_code == 0, done.output
    image, labels = nuclei_labelled(3, 0, NucleiConfig.crowded((96, 96)))
    written = pyvips.Image.new_from_file(str(out / "masks" / "nuclei_00000.png")).numpy()
    assert np.array_equal(written, labels)
    shown = pyvips.Image.new_from_file(str(out / "images" / "nuclei_00000.png")).numpy()
    assert np.array_equal(shown, image)
