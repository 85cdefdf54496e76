"""``pixelmill models grant``: an operator gives a user a level on a model, or takes it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pixelmill.runtime.cli import main
from pixelmill.runtime.container import build_container
from tests.conftest import make_settings
from tests.security import attacks

pytest.importorskip("onnx")


def test_an_operator_grants_and_revokes_a_level(tmp_path: Path) -> None:
    container = build_container(make_settings(tmp_path))
    bob = container.users.create("bob", site_role="member").id
    container.models.register(
        attacks.conv_model(1), name="tumour", input_spec={"task": "segmentation", "channels": 1}
    )
    container.close()
    data = ["--data-dir", str(tmp_path / "data")]
    runner = CliRunner()
    granted = runner.invoke(main, ["models", "grant", "tumour", "bob", "edit", *data])
    assert granted.exit_code == 0, granted.output
    assert '"level": "edit"' in granted.output
    container = build_container(make_settings(tmp_path))
    assert container.models.permissions.level("tumour", bob) == "edit"
    container.close()
    revoked = runner.invoke(main, ["models", "grant", "tumour", "bob", "none", *data])
    assert revoked.exit_code == 0, revoked.output
    unknown = runner.invoke(main, ["models", "grant", "tumour", "mallory", "read", *data])
    assert unknown.exit_code != 0 and "mallory" in unknown.output
    container = build_container(make_settings(tmp_path))
    assert container.models.permissions.level("tumour", bob) is None
    container.close()
