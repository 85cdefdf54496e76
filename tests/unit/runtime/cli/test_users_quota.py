"""``pixelmill users quota``: an admin at the shell reads and sets a user's quotas."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from pixelmill.runtime.cli import main


def test_an_admin_sets_a_users_quotas_from_the_shell(tmp_path: Path) -> None:
    runner, data = CliRunner(), ["--data-dir", str(tmp_path / "data")]
    assert runner.invoke(main, ["users", "add", "bob", *data]).exit_code == 0

    first = runner.invoke(main, ["users", "quota", "bob", "--stored-bytes", "2G", *data])
    then = runner.invoke(main, ["users", "quota", "bob", "--max-epochs", "0", *data])

    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["limits"]["stored_bytes"] == 2 * 1024**3
    shown = json.loads(then.output)  # the stored-bytes override stays
    assert shown["limits"]["stored_bytes"] == 2 * 1024**3 and shown["limits"]["max_epochs"] is None
    assert shown["override"]["max_epochs"] == 0 and shown["usage"]["stored_bytes"] == 0
    runner.invoke(main, ["users", "quota", "bob", "--reset", *data])
    shown_again = runner.invoke(main, ["users", "quota", "bob", *data])  # no option: show
    assert json.loads(shown_again.output)["override"] is None


def test_a_size_that_is_not_one_is_refused_with_the_accepted_forms(tmp_path: Path) -> None:
    runner, data = CliRunner(), ["--data-dir", str(tmp_path / "data")]

    result = runner.invoke(main, ["users", "quota", "bob", "--stored-bytes", "lots", *data])

    assert result.exit_code == 2
    assert "K/M/G/T or 'default'" in result.output
