"""The ML command line: datasets, training with registration, registry moves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pixelmill.ml.synthetic import NucleiConfig, nuclei_sample
from pixelmill.runtime.cli import main
from tests.ml_helpers import png

pytestmark = pytest.mark.slow


def write_folder(root: Path, count: int = 6, *, drop_mask: int | None = None) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(count):
        image, mask = nuclei_sample(0, i, NucleiConfig(size=(64, 64)))
        (root / "images" / f"n{i}.png").write_bytes(png(image))
        if i != drop_mask:
            (root / "masks" / f"n{i}.png").write_bytes(png(mask))
    return root


def test_invalid_folder_names_the_file(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "bad", 3, drop_mask=1)
    result = CliRunner().invoke(
        main, ["datasets", "upload", str(folder), "--data-dir", str(tmp_path / "d")]
    )
    assert result.exit_code == 1
    assert "images/n1.png: has no mask" in result.output


def test_train_register_promote_rollback(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    folder = write_folder(tmp_path / "ds")
    data = ["--data-dir", str(tmp_path / "d")]
    runner = CliRunner()
    tiny = [
        "--epochs",
        "1",
        "--steps-per-epoch",
        "2",
        "--batch-size",
        "2",
        "--patch",
        "64",
        "--depth",
        "2",
        "--width",
        "4",
        "--threads",
        "1",
    ]
    card = tmp_path / "card.json"
    first = runner.invoke(
        main,
        [
            "train",
            str(folder),
            "--name",
            "cells",
            "--alias",
            "production",
            "--card",
            str(card),
            *tiny,
            *data,
        ],
    )
    assert first.exit_code == 0, first.output
    assert json.loads(card.read_text())["command"].startswith("pixelmill train")
    second = runner.invoke(main, ["train", str(folder), "--name", "cells", *tiny, *data])
    assert second.exit_code == 0, second.output
    assert runner.invoke(main, ["models", "promote", "cells", "2", *data]).exit_code == 0
    assert "production=2" in runner.invoke(main, ["models", "list", *data]).output
    refused = runner.invoke(main, ["models", "delete", "cells", "2", *data])
    assert refused.exit_code == 1 and "production" in refused.output
    back = runner.invoke(main, ["models", "rollback", "cells", *data])
    assert back.exit_code == 0 and json.loads(back.output)["version"] == 1
    audit = runner.invoke(main, ["models", "audit", "cells", *data]).output
    assert "rollback\tproduction\t2->1" in audit
    compared = json.loads(runner.invoke(main, ["models", "compare", "cells", *data]).output)
    assert compared["versions"] == [1, 2] and "dice" in compared["metrics"]
    shown = json.loads(runner.invoke(main, ["models", "show", "cells@production", *data]).output)
    assert shown["version"] == 1 and np.isfinite(shown["metrics"]["val_loss"])


def test_synthetic_tissue_is_a_graph_dataset_the_cli_trains(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    folder = tmp_path / "tissue"
    made = CliRunner().invoke(
        main, ["datasets", "synth-tissue", str(folder), "--count", "4", "--size", "96"]
    )
    assert made.exit_code == 0, made.output
    assert (folder / "cells.csv").read_text().startswith("image,label,class\n")
    card = tmp_path / "card.json"
    args = ["train", str(folder), "--name", "tissue", "--task", "graph", "--epochs", "2"]
    args += ["--width", "8", "--threads", "1", "--no-register", "--card", str(card)]
    args += ["--val-fraction", "0.25", "--data-dir", str(tmp_path / "d")]
    trained = CliRunner().invoke(main, args)
    assert trained.exit_code == 0, trained.output
    saved = json.loads(card.read_text())
    assert saved["input_spec"]["task"] == "graph" and saved["input_spec"]["classes"] == [
        "stroma",
        "tumour",
    ]
    assert {"accuracy", "f1"} <= set(saved["metrics"])


def test_synth_timelapse_writes_a_time_lapse_dataset(tmp_path: Path) -> None:
    from pixelmill.ml import datasets
    from pixelmill.runtime.cli._common import folder_to_zip

    folder = tmp_path / "tl"
    args = ["datasets", "synth-timelapse", str(folder), "--count", "2", "--frames", "3"]
    made = CliRunner().invoke(main, [*args, "--size", "32"])
    assert made.exit_code == 0, made.output
    parsed = datasets.parse(folder_to_zip(folder), task="timelapse")
    assert parsed.summary()["frames"] == [3] and parsed.summary()["shapes"] == [[32, 32]]
    assert all(item.labels is not None for item in parsed.items)  # instance label stacks
