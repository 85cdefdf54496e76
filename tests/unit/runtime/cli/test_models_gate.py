"""``pixelmill models promote --require-better-on`` and ``pixelmill models gate``: the
command line checks a gate's dataset as the API does, and a gate whose dataset was
deleted can be replaced or removed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pixelmill.ml import datasets, synthetic
from pixelmill.runtime.cli import main
from pixelmill.runtime.container import Container, build_container
from tests.conftest import make_settings
from tests.security import attacks

pytest.importorskip("onnx")

SPEC = {"task": "segmentation", "channels": 1}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data dir whose model "cells" has two versions, production at 1."""
    c = _open(tmp_path / "d")
    try:
        for _ in range(2):
            c.models.register(attacks.conv_model(1), name="cells", input_spec=SPEC, actor="t")
        c.models.promote("cells", 1, "production", actor="t")
    finally:
        c.close()
    return tmp_path / "d"


def _open(data_dir: Path) -> Container:
    return build_container(make_settings(data_dir.parent, data_dir=data_dir))


def _dataset(data_dir: Path) -> str:
    image, labels = synthetic.nuclei_labelled(7, 0)
    archive = datasets.build_archive([("n0", image, labels.astype(np.uint16))])
    c = _open(data_dir)
    try:
        return c.trainer.add_dataset(archive, name="held-out", actor="t")[0].id
    finally:
        c.close()


def _run(*args: str, data_dir: Path) -> tuple[int, str]:
    done = CliRunner().invoke(main, ["models", *args, "--data-dir", str(data_dir)])
    return done.exit_code, done.output


def _aliases(data_dir: Path) -> dict[str, int]:
    code, out = _run("show", "cells", data_dir=data_dir)
    assert code == 0, out
    return dict(json.loads(out)["aliases"])


@pytest.mark.parametrize("alias", ["production", "staging"])  # a holder, and none yet
def test_promote_refuses_a_gate_on_a_dataset_that_does_not_exist(
    data_dir: Path, alias: str
) -> None:
    code, out = _run(
        "promote", "cells", "2", "--alias", alias, "--require-better-on", "nope", data_dir=data_dir
    )
    assert code == 1, out
    assert "Not found: no dataset 'nope'" in out
    assert "Traceback" not in out
    assert _aliases(data_dir) == {"production": 1}  # nothing moved


def test_a_gate_whose_dataset_was_deleted_is_replaced_or_removed_from_the_command_line(
    data_dir: Path,
) -> None:
    # a gate on a dataset that is not there is refused, as by the API
    code, out = _run("gate", "cells", "--dataset", "nope", data_dir=data_dir)
    assert code == 1 and "no dataset 'nope'" in out, out
    # given production gated on a dataset that is then deleted
    held_out = _dataset(data_dir)
    code, out = _run("gate", "cells", "--dataset", held_out, data_dir=data_dir)
    assert code == 0, out
    assert json.loads(out)["dataset_id"] == held_out
    c = _open(data_dir)
    c.trainer.delete_dataset(held_out)
    c.close()
    # when version 2 is promoted: refused, saying why and what to do
    code, out = _run("promote", "cells", "2", data_dir=data_dir)
    assert code == 1, out
    assert "which no longer exists" in out
    assert "pixelmill models gate cells --alias production --remove" in out
    listed = _run("gate", "cells", data_dir=data_dir)[1]
    assert [g["dataset_id"] for g in json.loads(listed)] == [held_out]
    # then with the gate removed (audited), it goes through
    code, out = _run("gate", "cells", "--remove", data_dir=data_dir)
    assert code == 0 and "removed the gate on cells@production" in out
    assert json.loads(_run("gate", "cells", data_dir=data_dir)[1]) == []
    code, out = _run("promote", "cells", "2", data_dir=data_dir)
    assert code == 0, out
    assert _aliases(data_dir) == {"production": 2}
    code, out = _run("audit", "cells", data_dir=data_dir)
    assert "gate.set" in out and "gate.delete" in out
